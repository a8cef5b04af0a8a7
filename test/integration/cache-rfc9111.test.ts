// RFC 9111 / 9110 / 9213 conformance through a real Sluice and the test backend, which
// returns exactly the headers each test names: invalidation after unsafe methods, 304s
// with Content-Length, case-insensitive directives, strict Expires and Age, targeted
// cache-control fields, interim responses, statuses with explicit freshness,
// must-understand, heuristic freshness and extension methods.
import { afterEach, describe, expect, it } from 'vitest';
import { request as undiciRequest } from 'undici';
import type { TestBackend } from '../../src/testing/backend.js';
import { backend, backendYaml, get, sluice, type RunningSluice } from '../helpers/harness.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

const ROUTES = `
routes:
  - name: echo
    match: { path: /api/echo }
    cache: { ttl: 30s }
  - name: heuristic
    match: { path: /api/live/heuristic-* }
    cache: { heuristic: 10% }
  - name: heuristic-capped
    match: { path: /api/live/capped-* }
    cache: { heuristic: 10%, heuristic_max: 1m }
  - name: passthrough
    match: { path: /api/items/plain-* }
    cache: { enabled: false }
    coalesce: { enabled: false }
`;

async function setup(extra = ''): Promise<{ be: TestBackend; gw: RunningSluice }> {
  const be = await backend({ slots: 4, latencyMs: 5 });
  cleanups.push(() => be.close());
  const gw = await sluice(backendYaml(be, 4) + extra + ROUTES);
  cleanups.push(() => gw.close());
  return { be, gw };
}

const calls = (be: TestBackend, path: string) => be.stats().by_path[path] ?? 0;
const cacheStatus = (r: { headers: Record<string, unknown> }) => String(r.headers['cache-status']);
const q = (value: string) => encodeURIComponent(value);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Two GETs in a row; true when the second was answered from the cache. */
async function reused(url: string, headers: Record<string, string> = {}): Promise<boolean> {
  await get(url, { headers });
  return /^sluice; hit/.test(cacheStatus(await get(url, { headers })));
}

describe('invalidation after unsafe methods (RFC 9111 §4.4)', () => {
  it('a successful POST, PUT, DELETE or PATCH drops the stored GET of its URI', async () => {
    const { be, gw } = await setup();
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const url = `${gw.url}/api/echo?doc=${method}`;
      expect(await reused(url)).toBe(true);
      expect((await get(url, { method, body: method === 'DELETE' ? undefined : 'x' })).status).toBe(200);
      expect(cacheStatus(await get(url))).toMatch(/fwd=miss/);
    }
    expect(calls(be, '/api/echo')).toBe(12);
  });

  it('also drops same-origin Location and Content-Location targets, not other origins, and not after a failure', async () => {
    const { be, gw } = await setup();
    const item = (id: string) => `${gw.url}/api/items/${id}`;
    for (const id of ['loc', 'cl', 'far', 'failed']) expect(await reused(item(id))).toBe(true);
    await get(`${gw.url}/api/echo?header=${q('Location: /api/items/loc')}`, { method: 'POST', body: 'x' });
    await get(`${gw.url}/api/echo?header=${q(`Content-Location: ${gw.url}/api/items/cl`)}`, { method: 'POST', body: 'x', headers: { host: new URL(gw.url).host } });
    await get(`${gw.url}/api/echo?header=${q('Location: http://elsewhere.example/api/items/far')}`, { method: 'POST', body: 'x' });
    await get(`${gw.url}/api/echo?status=500&header=${q('Location: /api/items/failed')}`, { method: 'POST', body: 'x' });
    expect(cacheStatus(await get(item('loc')))).toMatch(/fwd=miss/);
    expect(cacheStatus(await get(item('cl')))).toMatch(/fwd=miss/);
    expect(cacheStatus(await get(item('far')))).toMatch(/hit/);
    expect(cacheStatus(await get(item('failed')))).toMatch(/hit/);
    expect(calls(be, '/api/items/loc')).toBe(2);
    expect(calls(be, '/api/items/far')).toBe(1);
  });

  it('drops every variant of the URI, whatever the order of its query', async () => {
    const { gw } = await setup();
    const url = `${gw.url}/api/echo?vary=Accept-Language&v=1`;
    for (const lang of ['en', 'fr']) expect(await reused(url, { 'accept-language': lang })).toBe(true);
    // Another URI's success changes nothing; a failure (405 from the backend) neither.
    await get(`${gw.url}/api/echo?v=2`, { method: 'POST', body: 'x' });
    await get(`${gw.url}/api/items/1`, { method: 'PUT', body: 'x' });
    expect(cacheStatus(await get(url, { headers: { 'accept-language': 'en' } }))).toMatch(/hit/);
    await get(`${gw.url}/api/echo?v=1&vary=Accept-Language`, { method: 'PUT', body: 'x' });
    for (const lang of ['en', 'fr']) expect(cacheStatus(await get(url, { headers: { 'accept-language': lang } }))).toMatch(/fwd=miss/);
  });
});

describe('backend 304 and 204 with Content-Length', () => {
  it('revalidates with a 304 that carries Content-Length instead of answering 502', async () => {
    const { be, gw } = await setup();
    const url = `${gw.url}/api/items/cl304?cache_control=max-age=1&content_length_on_304=1`;
    const first = await get(url);
    await sleep(1100);
    const revalidated = await get(url);
    expect(revalidated.status).toBe(200);
    expect(revalidated.body.equals(first.body)).toBe(true);
    expect(revalidated.headers['content-length']).toBe(String(first.body.length));
    expect(cacheStatus(revalidated)).toBe('sluice; fwd=stale; fwd-status=304; stored');
    expect(calls(be, '/api/items/cl304')).toBe(2);
  });

  it('passes a backend 304 with Content-Length through on a route without a read path', async () => {
    const { gw } = await setup();
    const url = `${gw.url}/api/items/plain-1?content_length_on_304=1`;
    const etag = String((await get(url)).headers['etag']);
    const conditional = await get(url, { headers: { 'if-none-match': etag } });
    expect(conditional.status).toBe(304);
    expect(conditional.headers['etag']).toBe(etag);
  });
});

describe('directives (RFC 9111 §5.2)', () => {
  it('reads directive names case-insensitively, in responses and requests', async () => {
    const { be, gw } = await setup();
    expect(await reused(`${gw.url}/api/live/case-1?cache_control=${q('MaX-AgE=3600')}`)).toBe(true);
    expect(await reused(`${gw.url}/api/items/case-2?cache_control=${q('No-CaChE, max-age=3600')}`)).toBe(false);
    expect(calls(be, '/api/items/case-2')).toBe(2);
    expect(await reused(`${gw.url}/api/live/case-3?cache_control=${q('max-age=3600, PRIVATE')}`)).toBe(false);
    expect(await reused(`${gw.url}/api/live/case-4?cache_control=${q('No-Store, max-age=3600')}`)).toBe(false);
    const stored = `${gw.url}/api/live/case-1?cache_control=${q('MaX-AgE=3600')}`;
    expect(cacheStatus(await get(stored, { headers: { 'cache-control': 'NO-CACHE' } }))).toMatch(/^sluice; fwd=request/);
  });

  it('treats an invalid max-age as stale and takes the first of repeated directives', async () => {
    const { gw } = await setup();
    expect(await reused(`${gw.url}/api/live/ma-1?cache_control=${q('max-age=3600a')}`)).toBe(false);
    expect(await reused(`${gw.url}/api/live/ma-2?cache_control=${q('max-age=-1')}`)).toBe(false);
    expect(await reused(`${gw.url}/api/live/ma-3?cache_control=${q('max-age="3600"')}`)).toBe(true);
    expect(await reused(`${gw.url}/api/live/ma-4?cache_control=${q('max-age=3600, max-age=0')}`)).toBe(true);
  });
});

describe('Expires and Age (RFC 9111 §5.1, §5.3)', () => {
  it('counts an invalid Expires as already expired and understands all three HTTP-date forms', async () => {
    const { gw } = await setup();
    const invalid = [
      'Thu, 01 Dec 2094 16:00:00 PST', 'Thu 01 Dec 2094 16:00:00 GMT', 'Thu,  01 Dec 2094 16:00:00 GMT',
      'Thu, 01-Dec-2094 16:00:00 GMT', 'Thu, 01 Dec 2094 6:00:00 GMT', '0', 'soon',
    ];
    for (const [i, expires] of invalid.entries()) {
      expect(await reused(`${gw.url}/api/live/exp-bad-${i}?cache_control=&expires=${q(expires)}`), expires).toBe(false);
    }
    const year = new Date().getUTCFullYear() + 10;
    const valid = [
      `Sat, 01 Dec ${year} 16:00:00 GMT`, `Saturday, 01-Dec-${String(year).slice(2)} 16:00:00 GMT`, `Sat Dec  1 16:00:00 ${year}`,
      `SAT, 01 dec ${year} 16:00:00 gmt`,
    ];
    for (const [i, expires] of valid.entries()) {
      expect(await reused(`${gw.url}/api/live/exp-ok-${i}?cache_control=&expires=${q(expires)}`), expires).toBe(true);
    }
    // Two Expires fields, each valid: the value is invalid (RFC 9111 §4.2.1).
    const twice = `header=${q(`Expires: ${valid[0]}`)}&header=${q(`Expires: ${valid[0]}`)}`;
    expect(await reused(`${gw.url}/api/live/exp-twice?cache_control=&${twice}`)).toBe(false);
  });

  it('ignores an Age that is not a non-negative integer, and reads only the first member of a list', async () => {
    const { gw } = await setup();
    expect(await reused(`${gw.url}/api/live/age-1?cache_control=max-age=1&header=${q('Age: 1.5')}`)).toBe(true);
    expect(await reused(`${gw.url}/api/live/age-2?cache_control=max-age=1&header=${q('Age: 1')}`)).toBe(false);
    expect(await reused(`${gw.url}/api/live/age-3?cache_control=max-age=3600&header=${q('Age: 7200, 0')}`)).toBe(false);
    expect(await reused(`${gw.url}/api/live/age-4?cache_control=max-age=3600&header=${q('Age: 7200')}&header=${q('Age: 0')}`)).toBe(false);
    expect(await reused(`${gw.url}/api/live/age-5?cache_control=max-age=3600&header=${q('Age: 0, 7200')}`)).toBe(true);
  });
});

describe('targeted cache-control fields (RFC 9213)', () => {
  it('obeys CDN-Cache-Control over Cache-Control and Sluice-Cache-Control over both; only its own field is kept from clients', async () => {
    const { gw } = await setup();
    const cdnOnly = `${gw.url}/api/live/cdn-1?cache_control=no-store&cdn_cache_control=max-age=60`;
    expect(await reused(cdnOnly)).toBe(true);
    const served = await get(cdnOnly);
    expect(served.headers['cache-control']).toBe('no-store');
    // Addressed to every CDN on the path: one in front of Sluice still needs it.
    expect(served.headers['cdn-cache-control']).toBe('max-age=60');
    expect(await reused(`${gw.url}/api/live/cdn-2?cache_control=max-age=60&cdn_cache_control=no-store`)).toBe(false);
    const ours = `${gw.url}/api/live/cdn-3?cache_control=no-store&cdn_cache_control=no-store&sluice_cache_control=max-age=60`;
    expect(await reused(ours)).toBe(true);
    const first = await get(`${gw.url}/api/live/cdn-4?cache_control=no-store&sluice_cache_control=no-store`);
    expect(first.headers['sluice-cache-control']).toBeUndefined();
    expect(first.headers['cache-control']).toBe('no-store');
  });

  it('ignores an invalid or empty targeted field and falls back to Cache-Control', async () => {
    const { gw } = await setup();
    expect(await reused(`${gw.url}/api/live/cdn-5?cache_control=no-store&cdn_cache_control=${q('MAX-AGE=60')}`)).toBe(false);
    expect(await reused(`${gw.url}/api/live/cdn-6?cache_control=max-age=60&cdn_cache_control=`)).toBe(true);
    expect(await reused(`${gw.url}/api/live/cdn-7?cache_control=no-store&cdn_cache_control=${q('max-age="60"')}`)).toBe(false);
  });

  it('takes its own targeted field name from cache.targeted_fields', async () => {
    const { gw } = await setup('cache: { targeted_fields: [Edge-Cache-Control] }\n');
    expect(await reused(`${gw.url}/api/live/edge-1?cache_control=no-store&header=${q('Edge-Cache-Control: max-age=60')}`)).toBe(true);
    expect((await get(`${gw.url}/api/live/edge-1?cache_control=no-store&header=${q('Edge-Cache-Control: max-age=60')}`)).headers['edge-cache-control']).toBeUndefined();
    expect(await reused(`${gw.url}/api/live/edge-2?cache_control=no-store&cdn_cache_control=max-age=60`)).toBe(false);
  });
});

describe('interim responses (RFC 9110 §15.2)', () => {
  it('passes 103 Early Hints and 102 to the client and never stores them', async () => {
    const { gw } = await setup();
    const url = `${gw.url}/api/items/hints?interim=103&interim=102&ms=50`;
    const seen: Array<{ statusCode: number; headers: Record<string, unknown> }> = [];
    const first = await undiciRequest(url, { onInfo: (info) => seen.push(info) });
    expect(first.statusCode).toBe(200);
    await first.body.text();
    expect(seen.map((i) => i.statusCode)).toEqual([103, 102]);
    expect(seen[0]!.headers['link']).toBe('</static/app.css>; rel=preload; as=style');
    const later: number[] = [];
    const second = await undiciRequest(url, { onInfo: (info) => later.push(info.statusCode) });
    expect(second.statusCode).toBe(200);
    expect(String(second.headers['cache-status'])).toMatch(/hit/);
    await second.body.text();
    expect(later).toEqual([]);
  });
});

describe('statuses (RFC 9111 §3, §5.2.2.3)', () => {
  it('reuses any final status the backend gave explicit freshness', async () => {
    const { be, gw } = await setup();
    for (const status of [203, 299, 400, 404, 410, 500, 502, 503, 504, 599]) {
      const url = `${gw.url}/api/live/st-${status}?status=${status}&cache_control=max-age=60`;
      const first = await get(url);
      const second = await get(url);
      expect([first.status, second.status], String(status)).toEqual([status, status]);
      expect(cacheStatus(second), String(status)).toMatch(/^sluice; hit/);
      expect(calls(be, `/api/live/st-${status}`)).toBe(1);
    }
  });

  it('honours must-understand: no-store is ignored for a status Sluice understands, and an unknown status is not stored', async () => {
    const { gw } = await setup();
    expect(await reused(`${gw.url}/api/live/mu-1?cache_control=${q('must-understand, no-store, max-age=60')}`)).toBe(true);
    expect(await reused(`${gw.url}/api/live/mu-2?status=299&cache_control=${q('must-understand, max-age=60')}`)).toBe(false);
    expect(await reused(`${gw.url}/api/live/mu-3?status=404&cache_control=${q('must-understand, no-store, max-age=60')}`)).toBe(true);
  });
});

describe('heuristic freshness (RFC 9111 §4.2.2)', () => {
  it('is off by default, and a route can make a share of the time since Last-Modified fresh, capped', async () => {
    const { gw } = await setup();
    expect(await reused(`${gw.url}/api/live/none-1?cache_control=&last_modified=1`)).toBe(false);
    await get(`${gw.url}/api/live/heuristic-1?cache_control=&last_modified=1`);
    const hit = await get(`${gw.url}/api/live/heuristic-1?cache_control=&last_modified=1`);
    expect(cacheStatus(hit)).toMatch(/^sluice; hit; ttl=(86399|86400)$/);
    await get(`${gw.url}/api/live/capped-1?cache_control=&last_modified=1`);
    expect(cacheStatus(await get(`${gw.url}/api/live/capped-1?cache_control=&last_modified=1`))).toMatch(/^sluice; hit; ttl=(59|60)$/);
    // Not for statuses that are not heuristically cacheable unless marked public, and never without Last-Modified.
    expect(await reused(`${gw.url}/api/live/heuristic-2?cache_control=&last_modified=1&status=500`)).toBe(false);
    expect(await reused(`${gw.url}/api/live/heuristic-4?cache_control=public&last_modified=1&status=599`)).toBe(true);
    expect(await reused(`${gw.url}/api/live/heuristic-3?cache_control=`)).toBe(false);
  });
});

describe('extension methods (RFC 9110 §9.1)', () => {
  it('passes M-SEARCH and PROPFIND through on a route that allows any method, and invalidates on their success', async () => {
    const { be, gw } = await setup();
    const url = `${gw.url}/api/echo?ext=1`;
    expect(await reused(url)).toBe(true);
    const search = await get(url, { method: 'M-SEARCH' });
    expect(search.status).toBe(200);
    expect(JSON.parse(search.text).method).toBe('M-SEARCH');
    expect(cacheStatus(await get(url))).toMatch(/fwd=miss/);
    expect(JSON.parse((await get(`${gw.url}/api/echo`, { method: 'PROPFIND' })).text).method).toBe('PROPFIND');
    expect((await get(`${gw.url}/api/echo`, { method: 'TRACE' })).status).toBe(405);
    expect(calls(be, '/api/echo')).toBe(4);
  });
});

describe('request directives (RFC 9111 §5.2.1)', () => {
  it('answers only-if-cached from the cache or with 504, never from the backend', async () => {
    const { be, gw } = await setup();
    const url = `${gw.url}/api/items/oic-1`;
    const miss = await get(url, { headers: { 'cache-control': 'only-if-cached' } });
    expect(miss.status).toBe(504);
    expect(miss.headers['x-sluice-error']).toBe('not_cached');
    expect(calls(be, '/api/items/oic-1')).toBe(0);
    await get(url);
    const hit = await get(url, { headers: { 'cache-control': 'only-if-cached' } });
    expect(hit.status).toBe(200);
    expect(cacheStatus(hit)).toMatch(/hit/);
    expect((await get(url, { headers: { 'cache-control': 'only-if-cached', cookie: 'a=1' } })).status).toBe(504);
    expect(calls(be, '/api/items/oic-1')).toBe(1);
  });
});
