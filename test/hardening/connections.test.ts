// One client cannot take the queue, the sockets or the buffers from everyone else. Raw
// sockets, with what the backend ran (its request total) as the witness.
import { afterEach, describe, expect, it } from 'vitest';
import type { Socket } from 'node:net';
import type { TestBackend } from '../../src/testing/backend.js';
import { backend, backendYaml, get, json, sluice, until, type RunningSluice } from '../helpers/harness.js';
import { collect, exchange, openSocket, parseResponses, request } from '../helpers/raw-http.js';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function setup(slots: number, latencyMs: number, extra = ''): Promise<{ be: TestBackend; gw: RunningSluice }> {
  const be = await backend({ slots, latencyMs });
  const gw = await sluice(`${backendYaml(be, slots)}${extra}`);
  cleanup.push(() => be.close(), () => gw.close());
  return { be, gw };
}

async function socketTo(url: string): Promise<Socket> {
  const socket = await openSocket(url);
  socket.on('error', () => {});
  cleanup.push(() => { socket.destroy(); });
  return socket;
}

const pipelined = (n: number, ms: number) => Array.from({ length: n }, (_, i) => request('GET', `/api/echo?ms=${ms}&n=${i}`)).join('');

describe('pipelining', () => {
  it('one connection with 1,100 pipelined requests neither fills the queue nor shuts out another client', async () => {
    const { be, gw } = await setup(2, 100, 'queue: { max_waiting: 50 }\nlimits: { pipeline_depth: 4 }\n');
    const hog = await socketTo(gw.url);
    let answered = '';
    hog.on('data', (d: Buffer) => { answered += d.toString('latin1'); });
    hog.write(pipelined(1100, 100));
    await until(() => be.stats().total >= 2, 5000, 'the hog to reach the backend');
    const status = await json(`${gw.adminUrl}/status`);
    expect(status.queue.waiting).toBeLessThanOrEqual(4);
    const other = await get(`${gw.url}/api/echo?other=1`);
    expect(other.status).toBe(200);
    const hogStatuses = parseResponses(answered).map((r) => r.status);
    expect(hogStatuses.every((s) => s === 200)).toBe(true);
  });

  it('requests of a closed connection leave the queue: only those already running reach the backend', async () => {
    const { be, gw } = await setup(2, 500);
    const socket = await socketTo(gw.url);
    socket.write(pipelined(40, 500));
    await new Promise((r) => setTimeout(r, 200));
    socket.destroy();
    await new Promise((r) => setTimeout(r, 1500));
    expect(be.stats().total).toBeLessThanOrEqual(2);
    await until(async () => (await json(`${gw.adminUrl}/status`)).slots.busy === 0, 5000, 'slots to be free');
    expect((await json(`${gw.adminUrl}/status`)).queue.waiting).toBe(0);
  });
});

describe('connection limits', () => {
  it('limits.max_connections: new connections are closed at once, open ones keep working', async () => {
    const { gw } = await setup(2, 1, 'limits: { max_connections: 5 }\n');
    const open = await Promise.all(Array.from({ length: 5 }, () => socketTo(gw.url)));
    await new Promise((r) => setTimeout(r, 50));
    const extra = await socketTo(gw.url);
    const refused = await collect(extra, { timeoutMs: 2000 }, () => extra.write(request('GET', '/api/echo')));
    expect(refused.closed).toBe(true);
    expect(refused.responses).toHaveLength(0);
    const kept = await collect(open[0]!, { timeoutMs: 2000 }, () => open[0]!.write(request('GET', '/api/echo')));
    expect(kept.responses[0]?.status).toBe(200);
  });

  it('limits.per_client.max_connections: the connection over it gets 429 client_limit and is closed', async () => {
    const { be, gw } = await setup(2, 1, 'limits: { per_client: { max_connections: 3 } }\n');
    await Promise.all(Array.from({ length: 3 }, () => socketTo(gw.url)));
    await new Promise((r) => setTimeout(r, 50));
    const before = be.stats().total;
    const fourth = await socketTo(gw.url);
    const res = await collect(fourth, { timeoutMs: 2000, untilClose: true }, () => fourth.write(request('GET', '/api/echo')));
    expect(res.responses[0]?.status).toBe(429);
    expect(res.responses[0]?.headers['x-sluice-error']).toBe('client_limit');
    expect(res.closed).toBe(true);
    expect(be.stats().total).toBe(before);
  });

  it('limits.per_client.max_queued: a client over its share of the queue gets 429, others still queue', async () => {
    const { be, gw } = await setup(1, 300, 'limits: { per_client: { max_queued: 2 } }\n');
    const results = await Promise.all(Array.from({ length: 4 }, (_, i) => exchange(gw.url, request('GET', `/api/echo?n=${i}`))));
    const statuses = results.map((r) => r.responses[0]?.status).sort();
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect(results.find((r) => r.responses[0]?.status === 429)!.responses[0]!.headers['x-sluice-error']).toBe('client_limit');
    expect(be.stats().total).toBe(3);
  });
});

describe('slow and malformed heads', () => {
  it('slowloris: 500 connections that never finish their head get 408 and are closed; others are served meanwhile', async () => {
    const { be, gw } = await setup(2, 1, 'limits: { header_timeout: 500ms }\n');
    const slow = await Promise.all(Array.from({ length: 500 }, () => socketTo(gw.url)));
    const answers = slow.map((s) => collect(s, { timeoutMs: 5000, untilClose: true }, () => s.write('GET /api/echo HTTP/1.1\r\nHost: x\r\nX-Slow: ')));
    const started = Date.now();
    const ok = await get(`${gw.url}/api/echo`);
    expect(ok.status).toBe(200);
    const results = await Promise.all(answers);
    expect(Date.now() - started).toBeLessThan(3000);
    for (const r of results) {
      expect(r.responses[0]?.status).toBe(408);
      expect(r.responses[0]?.headers['x-sluice-error']).toBe('header_timeout');
      expect(r.closed).toBe(true);
    }
    expect(be.stats().total).toBe(1);
  });

  it('a body that stops arriving is answered 408 client_body_timeout and the connection closed', async () => {
    const { be, gw } = await setup(2, 1, 'limits: { client_body_timeout: 300ms }\n');
    const res = await exchange(gw.url, 'POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789', { timeoutMs: 3000, untilClose: true });
    expect(res.responses[0]?.status).toBe(408);
    expect(res.responses[0]?.headers['x-sluice-error']).toBe('client_body_timeout');
    expect(res.closed).toBe(true);
    expect(be.stats().total).toBe(0);
  });

  it('two Host headers: 400; more header lines than limits.max_header_count: 431; nothing reaches the backend', async () => {
    const { be, gw } = await setup(2, 1, 'limits: { max_header_count: 20 }\n');
    const twoHosts = await exchange(gw.url, 'GET /api/echo HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n');
    expect(twoHosts.responses[0]?.status).toBe(400);
    const lines = Array.from({ length: 20 }, (_, i) => `X-H${i}: v`).join('\r\n');
    const tooMany = await exchange(gw.url, `GET /api/echo HTTP/1.1\r\nHost: x\r\n${lines}\r\n\r\n`);
    expect(tooMany.responses[0]?.status).toBe(431);
    expect(tooMany.responses[0]?.headers['x-sluice-error']).toBe('headers_too_large');
    expect(be.stats().total).toBe(0);
    const fits = await exchange(gw.url, `GET /api/echo HTTP/1.1\r\nHost: x\r\n${lines.split('\r\n').slice(1).join('\r\n')}\r\n\r\n`);
    expect(fits.responses[0]?.status).toBe(200);
    expect(Object.keys(JSON.parse(fits.responses[0]!.body).headers).filter((h) => h.startsWith('x-h'))).toHaveLength(19);
  });
});

describe('buffer budgets', () => {
  it('past limits.buffer_disk uploads are refused with 503 buffer_full, and the budget comes back when they end', async () => {
    const { be, gw } = await setup(2, 1, 'limits: { buffer_memory: 4KiB, buffer_disk: 16KiB, client_body_timeout: 30s }\n');
    const stalled = await socketTo(gw.url);
    stalled.write(`POST /api/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n${'a'.repeat(12 * 1024)}`);
    await new Promise((r) => setTimeout(r, 200));
    const refused = await exchange(gw.url, request('POST', '/api/upload', {}, 'b'.repeat(8000)));
    expect(refused.responses[0]?.status).toBe(503);
    expect(refused.responses[0]?.headers['x-sluice-error']).toBe('buffer_full');
    expect(refused.responses[0]?.headers['retry-after']).toBeDefined();
    expect(be.stats().total).toBe(0);
    stalled.destroy();
    await new Promise((r) => setTimeout(r, 200));
    const accepted = await exchange(gw.url, request('POST', '/api/upload', {}, 'c'.repeat(8000)));
    expect(accepted.responses[0]?.status).toBe(200);
    expect(JSON.parse(accepted.responses[0]!.body).bytes).toBe(8000);
  });
});
