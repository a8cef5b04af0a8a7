// The response cache with real Sluice and the real test backend: RFC 9111 freshness,
// variants, what must never be stored, stale-while-revalidate, stale-if-error, 304
// revalidation, conditionals from clients, negative caching, purging and the byte bound.
import type { IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { compileConfig } from '../../src/config/compile.js';
import { PRIORITY_CLASSES } from '../../src/config/schema.js';
import { parseConfigText } from '../../src/config/load.js';
import type { RequestObserver } from '../../src/pipeline/deps.js';
import { startTestBackend, type TestBackend } from '../../src/testing/backend.js';
import { backend, backendYaml, client, get, json, sluice, until, type RunningSluice } from '../helpers/harness.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

const ROUTES = `
routes:
  - name: swr
    match: { path: /api/live/swr-* }
    cache: { stale_while_revalidate: 30s }
  - name: sie
    match: { path: /api/items/sie-* }
    cache: { stale_if_error: 60s }
  - name: cookies
    match: { path: /api/items/cookie-ok-* }
    cache: { allow_set_cookie: true }
  - name: errors
    match: { path: /api/live/err-* }
    cache: { error_ttl: 10s }
  - name: ttl
    match: { path: /api/echo }
    cache: { ttl: 30s }
  - name: plain
    match: { path: /api/live/plain-* }
    cache: { enabled: false }
    coalesce: { enabled: false }
  - name: keyed-auth
    match: { path: /api/items/auth-* }
    cache: { key_headers: [Authorization] }
  - name: api
    match: { path: /api/* }
`;

async function setup(extra = '', observers: RequestObserver[] = [], onRequest?: (req: IncomingMessage) => void): Promise<{ be: TestBackend; gw: RunningSluice }> {
  const be = await backend({ slots: 4, latencyMs: 20, onRequest });
  cleanups.push(() => be.close());
  const gw = observers.length > 0 ? await sluiceWith(backendYaml(be, 4) + extra + ROUTES, observers) : await sluice(backendYaml(be, 4) + extra + ROUTES);
  cleanups.push(() => gw.close());
  return { be, gw };
}

/** Like the harness's sluice(), with observers that record what Sluice sent to the backend. */
async function sluiceWith(yaml: string, observers: RequestObserver[]): Promise<RunningSluice> {
  const text = `listen: { host: 127.0.0.1, port: 0 }\nadmin: { host: 127.0.0.1, port: 0 }\nlogging: { level: silent, access_log: false }\n${yaml}`;
  const app = createApp(compileConfig(parseConfigText(text, 'test.yaml', {})), observers);
  const { port, adminPort } = await app.listen();
  return { app, url: `http://127.0.0.1:${port}`, adminUrl: `http://127.0.0.1:${adminPort}`, close: async () => { await app.shutdown(1000); } };
}

const calls = (be: TestBackend, path: string) => be.stats().by_path[path] ?? 0;
const cacheStatus = (r: { headers: Record<string, unknown> }) => String(r.headers['cache-status']);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('freshness', () => {
  it('answers a second GET within max-age from the cache, with Age, and HEAD from the same entry', async () => {
    const { be, gw } = await setup();
    const first = await get(`${gw.url}/api/items/1`);
    expect(cacheStatus(first)).toBe('sluice; fwd=miss; fwd-status=200; stored');
    const second = await get(`${gw.url}/api/items/1`);
    expect(second.body.equals(first.body)).toBe(true);
    expect(cacheStatus(second)).toMatch(/^sluice; hit; ttl=[0-5]$/);
    expect(Number(second.headers['age'])).toBeGreaterThanOrEqual(0);
    expect(second.headers['etag']).toBe(first.headers['etag']);
    expect(String(second.headers['server-timing'])).toContain('cache;desc=hit');
    const head = await get(`${gw.url}/api/items/1`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    expect(cacheStatus(head)).toMatch(/hit/);
    expect(calls(be, '/api/items/1')).toBe(1);
  });

  it('treats query parameter order as the same resource', async () => {
    const { be, gw } = await setup();
    await get(`${gw.url}/api/items/q?a=1&b=2`);
    expect(cacheStatus(await get(`${gw.url}/api/items/q?b=2&a=1`))).toMatch(/hit/);
    expect(calls(be, '/api/items/q')).toBe(1);
  });

  it('keeps Vary variants apart', async () => {
    const { be, gw } = await setup();
    const path = `${gw.url}/api/items/2?vary=Accept-Language`;
    const lang = async (l: string) => JSON.parse((await get(path, { headers: { 'accept-language': l } })).text).vary['Accept-Language'];
    expect(await lang('en')).toBe('en');
    expect(await lang('fr')).toBe('fr');
    expect(await lang('en')).toBe('en');
    expect(await lang('fr')).toBe('fr');
    expect(calls(be, '/api/items/2')).toBe(2);
  });

  it('never stores no-store, private or Set-Cookie responses, or anything the backend did not mark fresh', async () => {
    const { be, gw } = await setup();
    for (const path of ['/api/live/ns', '/api/items/p?cache_control=private,max-age=60', '/api/items/sc?set_cookie=1', '/api/live/nf?cache_control=']) {
      const a = await get(`${gw.url}${path}`);
      const b = await get(`${gw.url}${path}`);
      expect(cacheStatus(a)).toBe('sluice; fwd=miss; fwd-status=200');
      expect(cacheStatus(b)).toBe('sluice; fwd=miss; fwd-status=200');
    }
    expect(calls(be, '/api/live/ns')).toBe(2);
    expect(calls(be, '/api/items/p')).toBe(2);
    expect(calls(be, '/api/items/sc')).toBe(2);
    expect(calls(be, '/api/live/nf')).toBe(2);
    expect((await json(`${gw.adminUrl}/status`)).cache.entries).toBe(0);
  });

  it('stores Set-Cookie responses where the route allows it, without the cookie', async () => {
    const { be, gw } = await setup();
    const first = await get(`${gw.url}/api/items/cookie-ok-1?set_cookie=1`);
    expect(first.headers['set-cookie']).toBeDefined();
    const second = await get(`${gw.url}/api/items/cookie-ok-1?set_cookie=1`);
    expect(cacheStatus(second)).toMatch(/hit/);
    expect(second.headers['set-cookie']).toBeUndefined();
    expect(calls(be, '/api/items/cookie-ok-1')).toBe(1);
  });

  it('stores answers to Authorization requests only where the route keys on it, and only when the response allows it', async () => {
    const { be, gw } = await setup();
    const auth = { authorization: 'Bearer alice' };
    for (let i = 0; i < 2; i++) await get(`${gw.url}/api/items/auth-1?cache_control=max-age=60`, { headers: auth });
    for (let i = 0; i < 2; i++) await get(`${gw.url}/api/items/auth-2?cache_control=public,max-age=60`, { headers: auth });
    expect(calls(be, '/api/items/auth-1')).toBe(2);
    expect(calls(be, '/api/items/auth-2')).toBe(1);
    // A route that does not key on Authorization keeps such requests out of the cache entirely.
    for (let i = 0; i < 2; i++) await get(`${gw.url}/api/items/a2?cache_control=public,max-age=60`, { headers: auth });
    expect(calls(be, '/api/items/a2')).toBe(2);
  });

  it('uses the route ttl when the backend sends no freshness', async () => {
    const { be, gw } = await setup();
    await get(`${gw.url}/api/echo?x=1`);
    const again = await get(`${gw.url}/api/echo?x=1`);
    expect(cacheStatus(again)).toMatch(/^sluice; hit; ttl=(29|30)$/);
    expect(calls(be, '/api/echo')).toBe(1);
  });

  it('bypasses the cache for Cache-Control: no-cache, and sends no Cache-Status where the route has neither cache nor coalescing', async () => {
    const { be, gw } = await setup();
    await get(`${gw.url}/api/items/nc`);
    const reload = await get(`${gw.url}/api/items/nc`, { headers: { 'cache-control': 'no-cache' } });
    expect(cacheStatus(reload)).toMatch(/^sluice; fwd=request; fwd-status=/);
    expect(calls(be, '/api/items/nc')).toBe(2);
    const plain = await get(`${gw.url}/api/live/plain-1`);
    expect(plain.headers['cache-status']).toBeUndefined();
  });
});

describe('stale answers', () => {
  it('serves the stale copy at once to 200 concurrent requests and refreshes exactly once', async () => {
    const { be, gw } = await setup();
    // The refresh takes a second, so every one of the 200 arrives while it runs.
    const path = '/api/live/swr-1?cache_control=max-age=1&ms=1000';
    const original = await get(`${gw.url}${path}`);
    expect(cacheStatus(original)).toMatch(/stored/);
    await sleep(1200);
    const agent = client(300);
    cleanups.push(() => agent.close());
    const pending = Array.from({ length: 200 }, () => get(`${gw.url}${path}`, { dispatcher: agent }));
    // The one refresh holds a slot at the lowest priority, with no client of its own.
    const refreshes = () => gw.app.queue.inflightEntries().filter((e) => e.info.requestId.endsWith(':refresh'));
    await until(() => refreshes().length === 1, 2000, 'the background refresh');
    expect(refreshes()[0]!.priorityRank).toBe(PRIORITY_CLASSES.indexOf('background'));
    const results = await Promise.all(pending);
    for (const r of results) {
      expect(r.text).toBe(original.text);
      expect(cacheStatus(r)).toMatch(/^sluice; hit; ttl=-\d+; detail=stale-while-revalidate$/);
      expect(String(r.headers['server-timing'])).toContain('upstream;dur=0');
    }
    await until(async () => (await json(`${gw.adminUrl}/status`)).cache.refreshing === 0 && calls(be, '/api/live/swr-1') === 2, 5000, 'the refresh');
    await sleep(100);
    expect(calls(be, '/api/live/swr-1')).toBe(2);
    const refreshed = await get(`${gw.url}${path}`);
    expect(cacheStatus(refreshed)).toMatch(/^sluice; hit; ttl=[01]$/);
    expect(JSON.parse(refreshed.text).counter).toBeGreaterThan(JSON.parse(original.text).counter);
  });

  it('serves the stale copy when the backend is down or answers 5xx (stale-if-error)', async () => {
    const { be, gw } = await setup();
    const path = '/api/items/sie-1?cache_control=max-age=1';
    const original = await get(`${gw.url}${path}`);
    await sleep(1200);
    const port = be.port;
    await be.close();
    const down = await get(`${gw.url}${path}`);
    expect(down.status).toBe(200);
    expect(down.text).toBe(original.text);
    expect(cacheStatus(down)).toMatch(/^sluice; fwd=stale; ttl=-\d+; detail=stale-if-error$/);
    expect(String(down.headers['server-timing'])).toContain('cache;desc=error-stale');
    // The backend is back but failing: a 5xx is replaced by the stale copy too.
    const failing = await startTestBackend({ port, slots: 4, latencyMs: 10, reportLatencyMs: 10, errorRate: 1 });
    cleanups.push(() => failing.close());
    const erroring = await get(`${gw.url}${path}`);
    expect(erroring.status).toBe(200);
    expect(erroring.text).toBe(original.text);
    expect(cacheStatus(erroring)).toMatch(/^sluice; fwd=stale; fwd-status=500; ttl=-\d+; detail=stale-if-error$/);
    expect(failing.stats().by_path['/api/items/sie-1']).toBe(1);
    expect((await json(`${gw.adminUrl}/status`)).cache.error_stale).toBe(2);
  });

  it('revalidates an expired entry with If-None-Match; a 304 refreshes it without a body transfer', async () => {
    const sent: Array<{ ifNoneMatch: unknown }> = [];
    const answered: number[] = [];
    const recorder: RequestObserver = {
      afterUpstream: (_ctx, outcome) => { if (outcome.status !== undefined) answered.push(outcome.status); },
    };
    const { be, gw } = await setup('', [recorder], (req) => { if (req.url?.startsWith('/api/')) sent.push({ ifNoneMatch: req.headers['if-none-match'] }); });
    const path = '/api/items/reval?cache_control=max-age=1';
    const original = await get(`${gw.url}${path}`);
    await sleep(1200);
    const revalidated = await get(`${gw.url}${path}`);
    expect(sent.map((s) => s.ifNoneMatch)).toEqual([undefined, original.headers['etag']]);
    expect(answered).toEqual([200, 304]);
    expect(revalidated.status).toBe(200);
    expect(revalidated.body.equals(original.body)).toBe(true);
    expect(cacheStatus(revalidated)).toBe('sluice; fwd=stale; fwd-status=304; stored');
    expect(String(revalidated.headers['server-timing'])).toContain('cache;desc=revalidated');
    expect(cacheStatus(await get(`${gw.url}${path}`))).toMatch(/hit/);
    expect(calls(be, '/api/items/reval')).toBe(2);
  });
});

describe('conditionals, errors, purging, bounds', () => {
  it('answers a client If-None-Match with 304 from the cache', async () => {
    const { be, gw } = await setup();
    const first = await get(`${gw.url}/api/items/c1`);
    const conditional = await get(`${gw.url}/api/items/c1`, { headers: { 'if-none-match': String(first.headers['etag']) } });
    expect(conditional.status).toBe(304);
    expect(conditional.body.length).toBe(0);
    expect(conditional.headers['etag']).toBe(first.headers['etag']);
    expect(cacheStatus(conditional)).toMatch(/hit/);
    const mismatch = await get(`${gw.url}/api/items/c1`, { headers: { 'if-none-match': '"other"' } });
    expect(mismatch.status).toBe(200);
    expect(calls(be, '/api/items/c1')).toBe(1);
  });

  it('remembers a backend 5xx for the route error_ttl', async () => {
    const { be, gw } = await setup();
    const first = await get(`${gw.url}/api/live/err-1?status=503`);
    const second = await get(`${gw.url}/api/live/err-1?status=503`);
    expect([first.status, second.status]).toEqual([503, 503]);
    expect(second.text).toBe(first.text);
    expect(cacheStatus(second)).toMatch(/^sluice; hit; ttl=(9|10); detail=error-ttl$/);
    // A remembered failure is its own outcome, not a hit, in Server-Timing and in /status.
    expect(String(second.headers['server-timing'])).toContain('cache;desc=error-cached');
    const counts = (await json(`${gw.adminUrl}/status`)).cache;
    expect([counts.error_cached, counts.hits]).toEqual([1, 0]);
    expect(calls(be, '/api/live/err-1')).toBe(1);
    // Routes without error_ttl keep asking.
    await get(`${gw.url}/api/live/other?status=503`);
    await get(`${gw.url}/api/live/other?status=503`);
    expect(calls(be, '/api/live/other')).toBe(2);
  });

  it('purges by glob and everything on the admin server', async () => {
    const { be, gw } = await setup();
    for (const p of ['/api/items/p1', '/api/items/p2', '/api/echo?k=1']) await get(`${gw.url}${p}`);
    const purge = async (query: string) => json(`${gw.adminUrl}/cache${query}`, { method: 'DELETE' });
    expect(await purge('?path=/api/items/p1')).toEqual({ purged: 1, path: '/api/items/p1' });
    expect(cacheStatus(await get(`${gw.url}/api/items/p2`))).toMatch(/hit/);
    expect(cacheStatus(await get(`${gw.url}/api/items/p1`))).toMatch(/fwd=miss/);
    expect((await purge('?path=/api/items/*')).purged).toBe(2);
    expect((await purge('')).purged).toBe(1);
    expect((await json(`${gw.adminUrl}/status`)).cache).toMatchObject({ entries: 0, bytes: 0 });
    expect(calls(be, '/api/items/p1')).toBe(2);
  });

  it('stays within cache.max_bytes by evicting, however much is stored', async () => {
    const { be, gw } = await setup('cache: { max_bytes: 1MiB }\n');
    for (let i = 0; i < 30; i++) await get(`${gw.url}/api/items/big-${i}?bytes=100000&cache_control=max-age=60`);
    const stats = (await json(`${gw.adminUrl}/status`)).cache;
    expect(stats.bytes).toBeLessThanOrEqual(1024 * 1024);
    expect(stats.entries).toBeLessThanOrEqual(10);
    expect(stats.evictions).toBeGreaterThanOrEqual(20);
    expect(cacheStatus(await get(`${gw.url}/api/items/big-29?bytes=100000&cache_control=max-age=60`))).toMatch(/hit/);
    expect(cacheStatus(await get(`${gw.url}/api/items/big-0?bytes=100000&cache_control=max-age=60`))).toMatch(/fwd=miss/);
    expect(calls(be, '/api/items/big-0')).toBe(2);
  });

  it('reports entries, bytes, hit/miss/stale counts and followers saved in /status', async () => {
    const { gw } = await setup();
    await get(`${gw.url}/api/items/s1`);
    await get(`${gw.url}/api/items/s1`);
    const status = await json(`${gw.adminUrl}/status`);
    expect(status.cache).toMatchObject({ entries: 1, hits: 1, misses: 1, stale: 0, stored: 1 });
    expect(status.cache.bytes).toBeGreaterThan(0);
    expect(status.coalesce).toMatchObject({ flights: 0, followers_saved: 0 });
  });
});
