// The shared cache never serves one user's answer to another, and no client can put a
// variant the backend never produced under another request's key: credentials keep a
// request out of the cache unless the route keys on them, keys come from what is forwarded
// (after Connection-named headers are dropped), and a client's no-cache cannot overwrite.
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { TestBackend } from '../../src/testing/backend.js';
import { backend, backendYaml, get, json, sluice, type RunningSluice } from '../helpers/harness.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

const ROUTES = `
routes:
  - name: per-cookie
    match: { path: /api/items/keyed-* }
    cache: { key_headers: [Cookie] }
  - name: assets
    match: { path: /api/items/asset-* }
    cache: { ignore_cookies: true }
  - name: refreshable
    match: { path: /api/live/refresh-* }
    cache: { allow_client_refresh: true }
  - name: echo
    match: { path: /api/echo }
    cache: { ttl: 30s }
  - name: api
    match: { path: /api/* }
`;

async function setup(): Promise<{ be: TestBackend; gw: RunningSluice }> {
  const be = await backend({ slots: 4, latencyMs: 5 });
  cleanups.push(() => be.close());
  const gw = await sluice(backendYaml(be, 4) + ROUTES);
  cleanups.push(() => gw.close());
  return { be, gw };
}

const calls = (be: TestBackend, path: string) => be.stats().by_path[path] ?? 0;
const cacheStatus = (r: { headers: Record<string, unknown> }) => String(r.headers['cache-status']);

/** One request written by hand, so headers a client library refuses (Connection: host) reach Sluice as sent. */
async function raw(url: string, head: string): Promise<{ status: number; body: string }> {
  const { port } = new URL(url);
  const socket = connect(Number(port), '127.0.0.1');
  socket.write(`${head.trim().split('\n').map((l) => l.trim()).join('\r\n')}\r\nConnection: close\r\n\r\n`);
  let data = '';
  for await (const chunk of socket) data += (chunk as Buffer).toString('latin1');
  const [headPart = '', ...rest] = data.split('\r\n\r\n');
  return { status: Number(headPart.split(' ')[1]), body: rest.join('\r\n\r\n') };
}

describe('credentials and the shared cache', () => {
  it('never stores or serves a response to a request with Cookie or Authorization on a route that does not key on them', async () => {
    const { be, gw } = await setup();
    for (const path of ['/api/echo?who=1', '/api/items/42?cache_control=public,max-age=60']) {
      const alice = await get(`${gw.url}${path}`, { headers: { cookie: 'session=user-a-secret' } });
      expect(cacheStatus(alice)).toBe('sluice; fwd=bypass; fwd-status=200');
      const anonymous = await get(`${gw.url}${path}`);
      expect(cacheStatus(anonymous)).toMatch(/fwd=miss/);
      expect(anonymous.text).not.toContain('user-a-secret');
      const bob = await get(`${gw.url}${path}`, { headers: { cookie: 'session=user-b' } });
      expect(bob.text).not.toContain('user-a-secret');
      const bearer = await get(`${gw.url}${path}`, { headers: { authorization: 'Bearer alice-token' } });
      expect(cacheStatus(bearer)).toMatch(/^sluice; fwd=bypass/);
      // A credentialed request does not read the anonymous entry either.
      expect(await get(`${gw.url}${path}`).then(cacheStatus)).toMatch(/hit/);
    }
    expect(calls(be, '/api/echo')).toBe(4);
    expect(calls(be, '/api/items/42')).toBe(4);
  });

  it('keys on Cookie where the route says so: each cookie gets its own entry', async () => {
    const { be, gw } = await setup();
    const path = `${gw.url}/api/items/keyed-1?cache_control=public,max-age=60&vary=Cookie`;
    const a1 = await get(path, { headers: { cookie: 'session=a' } });
    const a2 = await get(path, { headers: { cookie: 'session=a' } });
    expect(cacheStatus(a2)).toMatch(/hit/);
    expect(a2.text).toBe(a1.text);
    const b = await get(path, { headers: { cookie: 'session=b' } });
    expect(cacheStatus(b)).toMatch(/fwd=miss/);
    expect(JSON.parse(b.text).vary.Cookie).toBe('session=b');
    expect(cacheStatus(await get(path))).toMatch(/fwd=miss/);
    expect(calls(be, '/api/items/keyed-1')).toBe(3);
  });

  it('with ignore_cookies, shares one answer and never forwards the cookie it ignores', async () => {
    const { be, gw } = await setup();
    const path = `${gw.url}/api/items/asset-1?vary=Cookie`;
    const a = await get(path, { headers: { cookie: 'session=user-a-secret' } });
    expect(JSON.parse(a.text).vary.Cookie).toBeNull();
    const b = await get(path, { headers: { cookie: 'session=b' } });
    expect(cacheStatus(b)).toMatch(/hit/);
    expect(b.text).toBe(a.text);
    expect(calls(be, '/api/items/asset-1')).toBe(1);
  });
});

describe('keys come from what is forwarded', () => {
  it('Connection: Accept-Language cannot store a variant under the selecting value the backend never saw', async () => {
    const { be, gw } = await setup();
    const target = '/api/items/lang-1?vary=Accept-Language';
    const attack = await raw(gw.url, `GET ${target} HTTP/1.1\nHost: shop.example\nAccept-Language: fr\nConnection: Accept-Language`);
    expect(attack.status).toBe(200);
    expect(JSON.parse(attack.body).vary['Accept-Language']).toBeNull();
    const victim = await get(`${gw.url}${target}`, { headers: { host: 'shop.example', 'accept-language': 'fr' } });
    expect(JSON.parse(victim.text).vary['Accept-Language']).toBe('fr');
    expect(calls(be, '/api/items/lang-1')).toBe(2);
  });

  it('Connection: host cannot store an answer for another host under the victim host', async () => {
    const { be, gw } = await setup();
    const attack = await raw(gw.url, 'GET /api/echo?page=home HTTP/1.1\nHost: victim.example\nConnection: host');
    expect(attack.status).toBe(200);
    expect(JSON.parse(attack.body).headers.host).not.toBe('victim.example');
    const victim = await json(`${gw.url}/api/echo?page=home`, { headers: { host: 'victim.example' } });
    expect(victim.headers.host).toBe('victim.example');
    expect(calls(be, '/api/echo')).toBe(2);
  });
});

describe('a client no-cache', () => {
  it('is answered from a revalidation and never overwrites the stored answer with an unkeyed variant', async () => {
    const { be, gw } = await setup();
    const path = `${gw.url}/api/echo?page=2`;
    const original = await get(path);
    const attack = await get(path, { headers: { 'cache-control': 'no-cache', 'x-poison': 'evil' } });
    expect(attack.text).toContain('evil');
    expect(cacheStatus(attack)).toBe('sluice; fwd=request; fwd-status=200');
    const victim = await get(path);
    expect(cacheStatus(victim)).toMatch(/hit/);
    expect(victim.text).toBe(original.text);
    expect(calls(be, '/api/echo')).toBe(2);
  });

  it('revalidates with the stored validators: a 304 serves the stored body', async () => {
    const { be, gw } = await setup();
    const path = `${gw.url}/api/items/nc-1?cache_control=max-age=60`;
    const original = await get(path);
    const reload = await get(path, { headers: { 'cache-control': 'no-cache' } });
    expect(reload.status).toBe(200);
    expect(reload.text).toBe(original.text);
    expect(cacheStatus(reload)).toBe('sluice; fwd=request; fwd-status=304; stored');
    expect(calls(be, '/api/items/nc-1')).toBe(2);
  });

  it('replaces an entry that is stale anyway, as any request would', async () => {
    const { be, gw } = await setup();
    const path = `${gw.url}/api/live/stale-1?cache_control=max-age=1`;
    const first = JSON.parse((await get(path)).text).counter;
    await new Promise((r) => setTimeout(r, 1100));
    const reload = await get(path, { headers: { 'cache-control': 'no-cache' } });
    expect(cacheStatus(reload)).toBe('sluice; fwd=request; fwd-status=200; stored');
    const after = await get(path);
    expect(cacheStatus(after)).toMatch(/hit/);
    expect(JSON.parse(after.text).counter).not.toBe(first);
    expect(calls(be, '/api/live/stale-1')).toBe(2);
  });

  it('replaces the stored answer where the route sets allow_client_refresh', async () => {
    const { be, gw } = await setup();
    const path = `${gw.url}/api/live/refresh-1?cache_control=max-age=60`;
    const first = JSON.parse((await get(path)).text).counter;
    const refreshed = await get(path, { headers: { 'cache-control': 'no-cache' } });
    expect(cacheStatus(refreshed)).toBe('sluice; fwd=request; fwd-status=200; stored');
    const after = await get(path);
    expect(cacheStatus(after)).toMatch(/hit/);
    expect(JSON.parse(after.text).counter).toBe(JSON.parse(refreshed.text).counter);
    expect(JSON.parse(after.text).counter).not.toBe(first);
    expect(calls(be, '/api/live/refresh-1')).toBe(2);
  });
});
