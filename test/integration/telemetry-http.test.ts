// What every response and every log line carries: Server-Timing whose parts add up to the
// total, X-Request-Id, and one structured access line per request.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp } from '../../src/app.js';
import { compileConfig } from '../../src/config/compile.js';
import { parseConfigText } from '../../src/config/load.js';
import type { TestBackend } from '../../src/testing/backend.js';
import { backend, backendYaml, client, get, sluice } from '../helpers/harness.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

const ROUTES = `routes:
  - name: items
    match: { path: /api/items/* }
    cache: { enabled: true }
  - name: live
    match: { path: /api/live/* }
`;

interface Part { name: string; dur?: number; desc?: string }

/** Parses Server-Timing per RFC-ish grammar: `name;param=value;...` entries separated by commas. */
function serverTiming(header: unknown): Part[] {
  return String(header ?? '').split(',').map((entry) => {
    const [name, ...params] = entry.trim().split(';');
    const part: Part = { name: name! };
    for (const param of params) {
      const [k, v] = param.split('=');
      if (k === 'dur') part.dur = Number(v);
      if (k === 'desc') part.desc = v;
    }
    return part;
  });
}

function expectPartsAddUp(parts: Part[]): void {
  const total = parts.find((p) => p.name === 'total')!;
  expect(total.dur).toBeGreaterThan(0);
  const sum = parts.filter((p) => p.name !== 'total' && p.dur !== undefined).reduce((n, p) => n + p.dur!, 0);
  expect(Math.abs(sum - total.dur!)).toBeLessThan(1);
  for (const name of ['queue', 'upstream', 'gateway']) expect(parts.find((p) => p.name === name)?.dur).toBeGreaterThanOrEqual(0);
}

async function setup(slots = 1, extra = ''): Promise<{ be: TestBackend; url: string; adminUrl: string }> {
  const be = await backend({ slots, latencyMs: 40 });
  cleanups.push(() => be.close());
  const gw = await sluice(backendYaml(be, slots) + extra + ROUTES);
  cleanups.push(() => gw.close());
  return { be, url: gw.url, adminUrl: gw.adminUrl };
}

describe('Server-Timing', () => {
  it('breaks a queued request down into queue, upstream, gateway and total, adding up', async () => {
    const { url } = await setup(1);
    const first = get(`${url}/api/live/1?ms=200`);
    await new Promise((r) => setTimeout(r, 30));
    const second = await get(`${url}/api/live/2?ms=50`);
    await first;
    const parts = serverTiming(second.headers['server-timing']);
    // GETs coalesce by default: a request alone with its key leads its flight.
    expect(parts.filter((p) => p.dur !== undefined).map((p) => p.name)).toEqual(['queue', 'coalesce', 'upstream', 'gateway', 'total']);
    expect(parts.find((p) => p.name === 'cache')?.desc).toMatch(/^(miss|bypass)$/);
    expect(parts.find((p) => p.name === 'coalesce')).toEqual({ name: 'coalesce', desc: 'leader', dur: 0 });
    expectPartsAddUp(parts);
    expect(parts.find((p) => p.name === 'queue')!.dur).toBeGreaterThan(100);
    expect(parts.find((p) => p.name === 'upstream')!.dur).toBeGreaterThanOrEqual(45);
  });

  it('is on Sluice 503s, with the error code, and adds up', async () => {
    const { url } = await setup(1, 'queue: { max_waiting: 0 }\n');
    const holder = get(`${url}/api/live/1?ms=300`);
    await new Promise((r) => setTimeout(r, 30));
    const refused = await get(`${url}/api/live/2`);
    await holder;
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBeDefined();
    const parts = serverTiming(refused.headers['server-timing']);
    expect(parts.find((p) => p.name === 'error')?.desc).toBe('queue_full');
    expect(parts.find((p) => p.name === 'upstream')!.dur).toBe(0);
    expectPartsAddUp(parts);
  });

  it('includes the request body read as `body`, still adding up', async () => {
    const { url } = await setup(1);
    const res = await get(`${url}/api/echo`, { method: 'POST', body: Buffer.alloc(200_000, 1) });
    expect(res.status).toBe(200);
    const parts = serverTiming(res.headers['server-timing']);
    expect(parts.filter((p) => p.dur !== undefined).map((p) => p.name)).toEqual(['queue', 'body', 'upstream', 'gateway', 'total']);
    expectPartsAddUp(parts);
  });

  it('marks cache hits with cache;desc=hit and no upstream time', async () => {
    const { be, url } = await setup(1);
    const miss = await get(`${url}/api/items/42`);
    expect(miss.status).toBe(200);
    const hit = await get(`${url}/api/items/42`);
    expect(be.stats().by_path['/api/items/42']).toBe(1);
    const parts = serverTiming(hit.headers['server-timing']);
    expect(parts.find((p) => p.name === 'cache')?.desc).toBe('hit');
    expect(parts.find((p) => p.name === 'upstream')!.dur).toBe(0);
    expectPartsAddUp(parts);
    expect(serverTiming(miss.headers['server-timing']).find((p) => p.name === 'cache')?.desc).toBe('miss');
  });
});

describe('X-Request-Id', () => {
  it('is generated when absent, kept when valid, replaced when malformed, on answers and errors alike', async () => {
    const { url } = await setup(2);
    const generated = await get(`${url}/api/live/1`);
    expect(generated.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const other = await get(`${url}/api/live/1`);
    expect(other.headers['x-request-id']).not.toBe(generated.headers['x-request-id']);
    expect((await get(`${url}/api/live/1`, { headers: { 'x-request-id': 'client.id-7' } })).headers['x-request-id']).toBe('client.id-7');
    expect((await get(`${url}/api/live/1`, { headers: { 'x-request-id': 'bad id with spaces' } })).headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const refused = await get(`${url}/api/echo`, { method: 'TRACE', headers: { 'x-request-id': 'err-1' } });
    expect(refused.status).toBe(405);
    expect(refused.headers['x-request-id']).toBe('err-1');
    expect(JSON.parse(refused.text).error.request_id).toBe('err-1');
    expect(serverTiming(refused.headers['server-timing']).find((p) => p.name === 'error')?.desc).toBe('method_not_allowed');
  });
});

describe('access log', () => {
  async function withLog(logging: string, slots = 1) {
    const be = await backend({ slots, latencyMs: 20 });
    cleanups.push(() => be.close());
    const file = join(mkdtempSync(join(tmpdir(), 'sluice-log-')), 'logs', 'access.log');
    const text = `listen: { host: 127.0.0.1, port: 0 }\nadmin: { host: 127.0.0.1, port: 0 }\n${backendYaml(be, slots)}` +
      `queue: { max_waiting: 0 }\nlogging: { destination: ${file}, ${logging} }\n${ROUTES}`;
    const app = createApp(compileConfig(parseConfigText(text, 'test.yaml', {})));
    const { port } = await app.listen();
    let closed = false;
    const close = async () => { if (!closed) { closed = true; await app.shutdown(1000); } };
    cleanups.push(close);
    const lines = () => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);
    return { url: `http://127.0.0.1:${port}`, file, close, lines };
  }

  it('writes one JSON line per request with ids, route, status, bytes and the timing breakdown', async () => {
    const { url, close, lines } = await withLog('level: info, access_log: true');
    const agent = client(10);
    cleanups.push(() => agent.close());
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const ok = await get(`${url}/api/live/5?ms=150&bytes=1234`, { dispatcher: agent, headers: { 'x-request-id': 'log-ok', traceparent: `00-${traceId}-00f067aa0ba902b7-01` } });
    const [held, refused] = await Promise.all([
      get(`${url}/api/live/6?ms=200`, { dispatcher: agent, headers: { 'x-request-id': 'log-held' } }),
      new Promise((r) => setTimeout(r, 40)).then(() => get(`${url}/api/live/7`, { dispatcher: agent, headers: { 'x-request-id': 'log-503' } })),
    ]);
    const missing = await get(`${url}/nope`, { dispatcher: agent, method: 'PATCH', headers: { 'x-request-id': 'log-other' } });
    expect([ok.status, held.status, refused.status]).toEqual([200, 200, 503]);
    await close();

    const byId = new Map(lines().map((l) => [l.request_id, l]));
    expect(byId.size).toBe(4);
    const line = byId.get('log-ok');
    expect(line).toMatchObject({
      level: 'info', msg: 'request', request_id: 'log-ok', trace_id: traceId, method: 'GET', path: '/api/live/5',
      route: 'live', status: 200, bytes: ok.body.length,
    });
    expect(Date.parse(line.time)).toBeGreaterThan(Date.now() - 60_000);
    expect(line.upstream_ms).toBeGreaterThanOrEqual(145);
    expect(line.total_ms).toBeGreaterThanOrEqual(line.upstream_ms + line.queue_ms);
    expect(line.backend).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(byId.get('log-503')).toMatchObject({ status: 503, error: 'queue_full', route: 'live', upstream_ms: 0 });
    expect(byId.get('log-503').bytes).toBe(refused.body.length);
    expect(byId.get('log-held').trace_id).toBeUndefined();
    expect(byId.get('log-other')).toMatchObject({ method: 'PATCH', status: missing.status });
  });

  it('writes nothing with access_log: false or a level above info', async () => {
    for (const logging of ['level: info, access_log: false', 'level: warn, access_log: true']) {
      const { url, close, lines, file } = await withLog(logging);
      expect((await get(`${url}/api/live/1`)).status).toBe(200);
      await close();
      expect(lines()).toEqual([]);
      expect(existsSync(file) ? readFileSync(file, 'utf8') : '').toBe('');
    }
  });

  it('loses no line at shutdown: 200 concurrent requests, 200 lines', async () => {
    const { url, close, lines } = await withLog('level: info', 4);
    const agent = client(50);
    cleanups.push(() => agent.close());
    const ids = Array.from({ length: 200 }, (_, i) => `burst-${i}`);
    const statuses = await Promise.all(ids.map((id) => get(`${url}/api/live/${id}?ms=1`, { dispatcher: agent, headers: { 'x-request-id': id } }).then((r) => r.status)));
    await close();
    const logged = lines();
    expect(logged).toHaveLength(200);
    expect(new Set(logged.map((l) => l.request_id))).toEqual(new Set(ids));
    expect(logged.map((l) => l.status)).toEqual(statuses.map(() => expect.any(Number)));
  });
});
