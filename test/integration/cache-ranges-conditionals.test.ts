// Byte ranges (RFC 9110 §14), conditionals (§13, RFC 9111 §4.3.2) and Vary normalisation
// (RFC 9111 §4.1) through a real Sluice and the test backend: ranges are cut from one
// complete stored answer, If-Modified-Since falls back to Date, and equivalent selecting
// header values share a variant.
import { afterEach, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { compileConfig } from '../../src/config/compile.js';
import { parseConfigText } from '../../src/config/load.js';
import { filler } from '../../src/testing/backend-http.js';
import type { TestBackend } from '../../src/testing/backend.js';
import { backend, backendYaml, client, get, type RunningSluice } from '../helpers/harness.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

const ROUTES = `
routes:
  - name: passthrough
    match: { path: /api/echo }
    cache: { enabled: false }
  - name: spill
    match: { path: /api/items/spill-* }
`;

async function setup(extra = ''): Promise<{ be: TestBackend; gw: RunningSluice; sent: Array<Record<string, unknown>> }> {
  // What the backend itself received, API paths only (not its own /stats).
  const sent: Array<Record<string, unknown>> = [];
  const be = await backend({ slots: 4, latencyMs: 5, onRequest: (req) => { if (req.url?.startsWith('/api/')) sent.push({ ...req.headers }); } });
  cleanups.push(() => be.close());
  const text = `listen: { host: 127.0.0.1, port: 0 }\nadmin: { host: 127.0.0.1, port: 0 }\nlogging: { level: silent, access_log: false }\njobs: { store: memory }\n${backendYaml(be, 4)}${extra}${ROUTES}`;
  const app = createApp(compileConfig(parseConfigText(text, 'test.yaml', {})));
  const { port } = await app.listen();
  cleanups.push(async () => { await app.shutdown(1000); });
  return { be, gw: { app, url: `http://127.0.0.1:${port}`, adminUrl: '', close: async () => {} }, sent };
}

const calls = (be: TestBackend, path: string) => be.stats().by_path[path] ?? 0;
const cacheStatus = (r: { headers: Record<string, unknown> }) => String(r.headers['cache-status']);

describe('ranges from a complete answer', () => {
  it('serves single, suffix and open-ended ranges with 206, and 416 when unsatisfiable, from one backend call', async () => {
    const { be, gw, sent } = await setup();
    const url = `${gw.url}/api/items/r-1?bytes=1000&cache_control=max-age=60`;
    const bytes = filler(1000);
    const cases: Array<[string, number, string | undefined, Buffer]> = [
      ['bytes=0-99', 206, 'bytes 0-99/1000', bytes.subarray(0, 100)],
      ['bytes=-100', 206, 'bytes 900-999/1000', bytes.subarray(900)],
      ['bytes=990-', 206, 'bytes 990-999/1000', bytes.subarray(990)],
      ['bytes=500-5000', 206, 'bytes 500-999/1000', bytes.subarray(500)],
      ['bytes=1000-', 416, 'bytes */1000', Buffer.alloc(0)],
      ['bytes=0-1,5-6', 200, undefined, bytes],
      ['items=0-1', 200, undefined, bytes],
    ];
    for (const [range, status, contentRange, body] of cases) {
      const r = await get(url, { headers: { range } });
      expect(r.status, range).toBe(status);
      expect(r.headers['content-range'], range).toBe(contentRange);
      expect(r.body.equals(body), range).toBe(true);
      expect(r.headers['content-length'], range).toBe(String(body.length));
    }
    expect(calls(be, '/api/items/r-1')).toBe(1);
    expect(sent[0]!['range']).toBeUndefined();
    expect(cacheStatus(await get(url))).toMatch(/hit/);
  });

  it('applies If-Range: a matching strong ETag or Last-Modified gets the range, anything else the whole answer', async () => {
    const { gw } = await setup();
    const url = `${gw.url}/api/items/r-2?bytes=100&last_modified=1`;
    const full = await get(url);
    const etag = String(full.headers['etag']);
    const ranged = (ifRange: string) => get(url, { headers: { range: 'bytes=0-9', 'if-range': ifRange } }).then((r) => r.status);
    expect(await ranged(etag)).toBe(206);
    expect(await ranged('"something-else"')).toBe(200);
    expect(await ranged(`W/${etag}`)).toBe(200);
    expect(await ranged(String(full.headers['last-modified']))).toBe(206);
    expect(await ranged('Tue, 02 Jan 2024 00:00:00 GMT')).toBe(200);
  });

  it('cuts ranges from a body spilled to disk, and coalesced requests for different ranges make one call', async () => {
    const { be, gw } = await setup('limits: { memory_buffer: 1KiB }\n');
    const agent = client(20);
    cleanups.push(() => agent.close());
    const url = `${gw.url}/api/items/spill-1?bytes=50000&ms=200&cache_control=max-age=60`;
    const bytes = filler(50000);
    const ranges = [[0, 9], [1000, 1999], [49990, 49999], [25000, 25000]] as const;
    const results = await Promise.all(ranges.map(([a, b]) => get(url, { dispatcher: agent, headers: { range: `bytes=${a}-${b}` } })));
    results.forEach((r, i) => {
      const [a, b] = ranges[i]!;
      expect(r.status).toBe(206);
      expect(r.body.equals(bytes.subarray(a, b + 1))).toBe(true);
    });
    expect(calls(be, '/api/items/spill-1')).toBe(1);
  });

  it('stores a 206 that holds the whole representation as the 200 it is; another 206 passes unstored', async () => {
    const { be, gw } = await setup();
    const whole = `${gw.url}/api/items/r-4?bytes=100&status=206&cache_control=max-age=60&header=${encodeURIComponent('Content-Range: bytes 0-99/100')}`;
    const first = await get(whole, { headers: { range: 'bytes=10-19' } });
    expect(first.status).toBe(206);
    expect(first.headers['content-range']).toBe('bytes 10-19/100');
    expect(first.body.equals(filler(100).subarray(10, 20))).toBe(true);
    const full = await get(whole);
    expect(full.status).toBe(200);
    expect(full.headers['content-range']).toBeUndefined();
    expect(cacheStatus(full)).toMatch(/hit/);
    expect(calls(be, '/api/items/r-4')).toBe(1);
    const partial = `${gw.url}/api/items/r-5?bytes=10&status=206&cache_control=max-age=60&header=${encodeURIComponent('Content-Range: bytes 0-9/100')}`;
    for (let i = 0; i < 2; i++) {
      const r = await get(partial);
      expect(r.status).toBe(206);
      expect(r.headers['content-range']).toBe('bytes 0-9/100');
    }
    expect(calls(be, '/api/items/r-5')).toBe(2);
  });

  it('leaves ranges to the backend where the route does not cache, and ignores Range on HEAD', async () => {
    const { be, gw } = await setup();
    const echoed = JSON.parse((await get(`${gw.url}/api/echo`, { headers: { range: 'bytes=0-1' } })).text);
    expect(echoed.headers.range).toBe('bytes=0-1');
    const head = await get(`${gw.url}/api/items/r-3?bytes=100`, { method: 'HEAD', headers: { range: 'bytes=0-9' } });
    expect(head.status).toBe(200);
    expect(calls(be, '/api/items/r-3')).toBe(1);
  });
});

describe('conditionals', () => {
  it('answers If-Modified-Since from the stored Date when there is no Last-Modified', async () => {
    const { be, gw } = await setup();
    const url = `${gw.url}/api/live/ims-1?cache_control=max-age=60`;
    const first = await get(url);
    const date = String(first.headers['date']);
    const since = (value: string) => get(url, { headers: { 'if-modified-since': value } });
    const notModified = await since(date);
    expect(notModified.status).toBe(304);
    expect(notModified.body.length).toBe(0);
    expect((await since(new Date(Date.parse(date) + 3600_000).toUTCString())).status).toBe(304);
    expect((await since(new Date(Date.parse(date) - 3600_000).toUTCString())).status).toBe(200);
    expect((await since('yesterday')).status).toBe(200);
    expect(calls(be, '/api/live/ims-1')).toBe(1);
  });
});

describe('Vary normalisation', () => {
  it('does not split variants on the order, case or spacing of Accept-Language, nor on spacing elsewhere', async () => {
    const { be, gw } = await setup();
    const lang = `${gw.url}/api/items/v-1?vary=Accept-Language`;
    await get(lang, { headers: { 'accept-language': 'en-US, fr;q=0.5' } });
    for (const variant of ['fr;q=0.5,en-US', 'EN-us,  FR;q=0.5', ' en-US ,fr ; q=0.5']) {
      expect(cacheStatus(await get(lang, { headers: { 'accept-language': variant } })), variant).toMatch(/hit/);
    }
    expect(cacheStatus(await get(lang, { headers: { 'accept-language': 'de' } }))).toMatch(/fwd=miss/);
    expect(calls(be, '/api/items/v-1')).toBe(2);

    const edition = `${gw.url}/api/items/v-2?vary=X-Edition`;
    await get(edition, { headers: { 'x-edition': 'north,2024' } });
    expect(cacheStatus(await get(edition, { headers: { 'x-edition': ' north , 2024 ' } }))).toMatch(/hit/);
    expect(cacheStatus(await get(edition, { headers: { 'x-edition': 'North,2024' } }))).toMatch(/fwd=miss/);
  });
});
