// Real server on port 0, real sockets. Every wait below is "until the backend reports
// state X" (polling /stats), never a sleep, so the assertions hold on a slow machine.
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { type TestBackend, type TestBackendOptions, type TestBackendStats, startTestBackend } from '../../src/testing/backend.js';

const running: TestBackend[] = [];
const agent = new Agent({ connections: null, pipelining: 1 });

afterEach(async () => {
  await Promise.all(running.splice(0).map((b) => b.close()));
});

async function backend(opts: Partial<TestBackendOptions> = {}): Promise<TestBackend> {
  const b = await startTestBackend({ slots: 5, latencyMs: 0, reportLatencyMs: 0, ...opts });
  running.push(b);
  return b;
}

async function get(b: TestBackend, path: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' | 'POST' | 'PUT' = 'GET', body?: Buffer | string) {
  const res = await request(`${b.url}${path}`, { method, headers, body, dispatcher: agent });
  const buf = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, buf, json: () => JSON.parse(buf.toString()) as Record<string, any> };
}

async function until(b: TestBackend, cond: (s: TestBackendStats) => boolean): Promise<TestBackendStats> {
  for (;;) {
    const s = b.stats();
    if (cond(s)) return s;
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A POST /api/upload whose body we finish later: it holds one slot as a slow uploader. */
function slowUpload(b: TestBackend): { finish(): Promise<Record<string, any>>; abort(): void } {
  const req = http.request(`${b.url}/api/upload`, { method: 'POST', agent: false, headers: { 'content-type': 'application/octet-stream' } });
  const response = new Promise<Record<string, any>>((resolve, reject) => {
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString())));
    });
    req.on('error', reject);
  });
  response.catch(() => {});
  req.flushHeaders();
  req.write('first part;');
  return {
    finish: () => {
      req.end('second part');
      return response;
    },
    abort: () => req.destroy(),
  };
}

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('slot model', () => {
  it('never runs more than `slots` requests; the rest wait and all run', async () => {
    const b = await backend({ slots: 5 });
    const uploads = Array.from({ length: 30 }, () => slowUpload(b));
    const s = await until(b, (x) => x.inflight_now + x.backlog_now === 30);
    expect(s.inflight_now).toBe(5);
    expect(s.backlog_now).toBe(25);
    const results = await Promise.all(uploads.map((u) => u.finish()));
    expect(results.every((r) => r.bytes === 'first part;second part'.length)).toBe(true);
    const end = b.stats();
    expect(end).toMatchObject({ inflight_now: 0, inflight_max: 5, total: 30, abandoned: 0, backlog_now: 0, backlog_max: 25 });
    expect(end.by_path).toEqual({ '/api/upload': 30 });
  });

  it('a burst of 30 GETs to a 5-slot backend all succeed, never above 5 at once', async () => {
    const b = await backend({ slots: 5, latencyMs: 20 });
    const res = await Promise.all(Array.from({ length: 30 }, (_, i) => get(b, `/api/items/${i}`)));
    expect(res.map((r) => r.status)).toEqual(Array(30).fill(200));
    const s = b.stats();
    expect(s.inflight_max).toBeLessThanOrEqual(5);
    expect(s.total).toBe(30);
  });

  it('grants slots in arrival order (FIFO)', async () => {
    const b = await backend({ slots: 1 });
    const gate = slowUpload(b);
    await until(b, (s) => s.inflight_now === 1);
    const pending = [];
    for (const [i, id] of ['a', 'b', 'c', 'd'].entries()) {
      pending.push(get(b, `/api/live/${id}`));
      await until(b, (s) => s.backlog_now === i + 1);
    }
    await gate.finish();
    const bodies = (await Promise.all(pending)).map((r) => r.json());
    expect(bodies.map((x) => [x.id, x.counter])).toEqual([['a', 1], ['b', 2], ['c', 3], ['d', 4]]);
  });

  it('runs a request whose client left while it waited, and counts it as abandoned', async () => {
    const b = await backend({ slots: 1 });
    const gate = slowUpload(b);
    await until(b, (s) => s.inflight_now === 1);
    // 32 MiB cannot fit in socket buffers, so a gone client can never look served.
    const req = http.get(`${b.url}/api/items/gone?bytes=${32 * 1024 * 1024}`, { agent: false });
    req.on('error', () => {});
    await until(b, (s) => s.backlog_now === 1);
    req.destroy();
    await gate.finish();
    const s = await until(b, (x) => x.total === 2 && x.inflight_now === 0);
    expect(s.abandoned).toBe(1);
    expect(s.by_path['/api/items/gone']).toBe(1);
  });

  it('a slow downloader holds its slot until the body is fully written', async () => {
    const b = await backend({ slots: 1 });
    const size = 32 * 1024 * 1024;
    const big = await new Promise<http.IncomingMessage>((resolve) => http.get(`${b.url}/api/items/big?bytes=${size}`, { agent: false }, resolve));
    big.pause();
    await until(b, (s) => s.inflight_now === 1);
    const next = get(b, '/api/items/next');
    const s = await until(b, (x) => x.backlog_now === 1);
    expect(s.inflight_now).toBe(1);
    let received = 0;
    big.on('data', (c: Buffer) => (received += c.length));
    const ended = new Promise((r) => big.on('end', r));
    big.resume();
    await ended;
    expect(received).toBe(size);
    expect((await next).status).toBe(200);
    expect(b.stats()).toMatchObject({ total: 2, abandoned: 0, inflight_max: 1 });
  });

  it('serves /stats and /health while every slot is busy, without counting them', async () => {
    const b = await backend({ slots: 1 });
    const gate = slowUpload(b);
    await until(b, (s) => s.inflight_now === 1);
    expect((await get(b, '/health')).buf.toString()).toBe('ok');
    const stats = (await get(b, '/stats')).json();
    expect(stats).toMatchObject({ inflight_now: 1, total: 1, by_path: { '/api/upload': 1 } });
    await gate.finish();
    expect(b.stats().total).toBe(1);
  });
});

describe('endpoints', () => {
  it('items: cacheable, stable strong ETag per id, 304 on If-None-Match (still counted)', async () => {
    const b = await backend();
    const first = await get(b, '/api/items/42');
    const again = await get(b, '/api/items/42');
    const other = await get(b, '/api/items/43');
    expect(first.status).toBe(200);
    expect(first.headers['cache-control']).toBe('public, max-age=5');
    const etag = first.headers['etag'] as string;
    expect(etag).toMatch(/^"[0-9a-f]+"$/);
    expect(again.headers['etag']).toBe(etag);
    expect(again.buf.equals(first.buf)).toBe(true);
    expect(other.headers['etag']).not.toBe(etag);
    expect(first.json()).toMatchObject({ id: '42', name: 'Item 42' });

    const notMod = await get(b, '/api/items/42', { 'if-none-match': `"nope", ${etag}` });
    expect(notMod.status).toBe(304);
    expect(notMod.buf.length).toBe(0);
    expect(notMod.headers['etag']).toBe(etag);
    expect((await get(b, '/api/items/42', { 'if-none-match': '"nope"' })).status).toBe(200);

    const head = await get(b, '/api/items/42', {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.buf.length).toBe(0);
    expect(head.headers['etag']).toBe(etag);
    expect(Number(head.headers['content-length'])).toBe(first.buf.length);
    expect(b.stats().by_path['/api/items/42']).toBe(5);
  });

  it('?etag and ?last_modified drive conditional answers', async () => {
    const b = await backend();
    const tagged = await get(b, '/api/items/1?etag=v7');
    expect(tagged.headers['etag']).toBe('"v7"');
    expect((await get(b, '/api/items/1?etag=v7', { 'if-none-match': 'W/"v7"' })).status).toBe(304);
    const lm = await get(b, '/api/live/1?last_modified=1');
    const lastModified = lm.headers['last-modified'] as string;
    expect(lastModified).toBe('Mon, 01 Jan 2024 00:00:00 GMT');
    expect((await get(b, '/api/live/1?last_modified=1', { 'if-modified-since': lastModified })).status).toBe(304);
    expect((await get(b, '/api/live/1?last_modified=1', { 'if-modified-since': 'Sun, 31 Dec 2023 00:00:00 GMT' })).status).toBe(200);
  });

  it('live: no-store and a fresh counter per request', async () => {
    const b = await backend();
    const one = await get(b, '/api/live/9');
    const two = await get(b, '/api/live/9');
    expect(one.headers['cache-control']).toBe('no-store');
    expect(one.json()).toMatchObject({ id: '9', counter: 1 });
    expect(two.json()).toMatchObject({ id: '9', counter: 2 });
  });

  it('upload returns the byte count and sha256 of the body', async () => {
    const b = await backend();
    const body = randomBytes(3 * 1024 * 1024 + 17);
    const res = await get(b, '/api/upload', {}, 'POST', body);
    expect(res.json()).toEqual({ bytes: body.length, sha256: sha(body) });
  });

  it('reports: 201 with id, body digest and Idempotency-Key, remembered in stats', async () => {
    const b = await backend();
    const res = await get(b, '/api/reports', { 'idempotency-key': 'k-1', 'content-type': 'application/json' }, 'POST', '{"q":1}');
    expect(res.status).toBe(201);
    const body = res.json();
    expect(body).toMatchObject({ body_bytes: 7, body_sha256: sha('{"q":1}'), idempotency_key: 'k-1' });
    expect(typeof body.report_id).toBe('string');
    await get(b, '/api/reports', { 'idempotency-key': 'k-2' }, 'POST', 'x');
    expect(b.stats().idempotency_keys).toEqual(['k-1', 'k-2']);
  });

  it('echo returns method, path, query, lower-case headers and body digest', async () => {
    const b = await backend();
    const res = await get(b, '/api/echo?a=1&b=two', { 'X-Custom': 'Yes' }, 'PUT', 'hello');
    expect(res.json()).toMatchObject({
      method: 'PUT',
      path: '/api/echo',
      query: { a: '1', b: 'two' },
      headers: { 'x-custom': 'Yes' },
      body_bytes: 5,
      body_sha256: sha('hello'),
    });
  });

  it('?status forces the status with a JSON body; ?bytes returns exactly N deterministic bytes', async () => {
    const b = await backend();
    const teapot = await get(b, '/api/items/1?status=418');
    expect(teapot.status).toBe(418);
    expect(teapot.json()).toMatchObject({ id: '1' });
    const n = 100_003;
    const one = await get(b, `/api/items/1?bytes=${n}`);
    const two = await get(b, `/api/echo?bytes=${n}`);
    expect(one.buf.length).toBe(n);
    expect(Number(one.headers['content-length'])).toBe(n);
    expect(two.buf.equals(one.buf)).toBe(true);
    expect((await get(b, '/api/items/1?bytes=0')).buf.length).toBe(0);
    expect((await get(b, '/api/items/1?status=99')).status).toBe(400);
  });

  it('?cache_control, ?vary and ?set_cookie shape the response headers', async () => {
    const b = await backend();
    const res = await get(b, '/api/items/5?cache_control=private,%20max-age%3D60&vary=Accept-Language&set_cookie=1', { 'accept-language': 'de' });
    expect(res.headers['cache-control']).toBe('private, max-age=60');
    expect(res.headers['vary']).toBe('Accept-Language');
    expect(String(res.headers['set-cookie'])).toMatch(/^sluice_test=/);
    expect(res.json()).toMatchObject({ vary: { 'Accept-Language': 'de' } });
    const fr = await get(b, '/api/items/5?vary=Accept-Language', { 'accept-language': 'fr' });
    const de = await get(b, '/api/items/5?vary=Accept-Language', { 'accept-language': 'de' });
    expect(fr.headers['etag']).not.toBe(de.headers['etag']);
  });

  it('echoes traceparent and remembers the last counted one', async () => {
    const b = await backend();
    const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const res = await get(b, '/api/items/1', { traceparent: tp });
    expect(res.headers['x-backend-traceparent']).toBe(tp);
    expect((await get(b, '/health', { traceparent: tp })).headers['x-backend-traceparent']).toBe(tp);
    expect(b.stats().last_traceparent).toBe(tp);
    await get(b, '/api/items/2');
    expect(b.stats().last_traceparent).toBeNull();
  });

  it('unknown paths are 404 JSON and wrong methods 405 (both take a slot, like Flask)', async () => {
    const b = await backend();
    const missing = await get(b, '/nope?x=1');
    expect(missing.status).toBe(404);
    expect(missing.json()).toMatchObject({ error: 'not_found', path: '/nope' });
    expect((await get(b, '/api/items/1', {}, 'POST', 'x')).status).toBe(405);
    expect(b.stats().by_path).toEqual({ '/nope': 1, '/api/items/1': 1 });
  });

  it('--error-rate 1 answers 500 to every /api request', async () => {
    const b = await backend({ errorRate: 1 });
    const res = await get(b, '/api/items/1');
    expect(res.status).toBe(500);
    expect(res.json()).toMatchObject({ error: 'injected_error' });
  });
});

describe('stats', () => {
  it('counts by pathname without the query, and resets to zero', async () => {
    const b = await backend();
    await get(b, '/api/items/1?x=1');
    await get(b, '/api/items/1');
    await get(b, '/api/live/2', { 'idempotency-key': 'k' });
    await get(b, '/stats');
    expect(b.stats()).toMatchObject({ total: 3, by_path: { '/api/items/1': 2, '/api/live/2': 1 }, idempotency_keys: ['k'] });
    const reset = await get(b, '/stats/reset', {}, 'POST');
    expect(reset.status).toBe(204);
    expect((await get(b, '/stats')).json()).toEqual({
      inflight_now: 0, inflight_max: 0, total: 0, abandoned: 0, by_path: {},
      last_traceparent: null, idempotency_keys: [], backlog_now: 0, backlog_max: 0,
    });
    await get(b, '/api/items/1');
    b.resetStats();
    expect(b.stats().total).toBe(0);
  });

  it('keeps only the last 1000 idempotency keys', async () => {
    const b = await backend({ slots: 50 });
    for (let i = 0; i < 1005; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, 1005 - i) }, (_, j) => get(b, '/api/echo', { 'idempotency-key': `k${i + j}` })));
    }
    const keys = b.stats().idempotency_keys;
    expect(keys).toHaveLength(1000);
    expect(keys).not.toContain('k0');
    expect(keys).toContain('k1004');
  });
});

describe('close', () => {
  it('ends sleeping and waiting requests instead of waiting for them', async () => {
    const b = await startTestBackend({ slots: 1, latencyMs: 3_600_000, reportLatencyMs: 0 });
    const first = get(b, '/api/items/1').catch((e: Error) => e);
    const second = get(b, '/api/items/2').catch((e: Error) => e);
    await until(b, (s) => s.inflight_now === 1 && s.backlog_now === 1);
    await b.close();
    expect(await first).toBeInstanceOf(Error);
    expect(await second).toBeInstanceOf(Error);
  });
});
