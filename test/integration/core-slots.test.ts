// The slot guarantee end to end: real Sluice in front of the real Gunicorn-like backend.
import { afterEach, describe, expect, it } from 'vitest';
import { backend, backendYaml, client, get, json, sluice, type RunningSluice } from '../helpers/harness.js';
import type { TestBackend } from '../../src/testing/backend.js';
import { connect } from 'node:net';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

async function setup(slots: number, yaml = '', latencyMs = 100): Promise<{ be: TestBackend; gw: RunningSluice }> {
  const be = await backend({ slots, latencyMs });
  cleanups.push(() => be.close());
  const gw = await sluice(backendYaml(be, slots) + yaml);
  cleanups.push(() => gw.close());
  return { be, gw };
}

describe('slots', () => {
  it('runs 500 concurrent requests through 10 slots: all succeed, the backend never exceeds 10', async () => {
    const { be, gw } = await setup(10, 'queue: { timeout: 30s }\n', 20);
    const agent = client();
    const pending = Array.from({ length: 500 }, (_, i) => get(`${gw.url}/api/live/${i}`, { dispatcher: agent }));
    try {
      // Poll rather than sleep: on a loaded machine the 500 connections take a while to arrive.
      await untilWaiting(gw, 1, 10, true);
      const mid = await json(`${gw.adminUrl}/status`);
      // Never more connections in use than slots: one connection per granted slot.
      expect(mid.slots.servers[0].connections.busy).toBeLessThanOrEqual(10);
      expect(mid.slots.servers[0].connections.connections).toBeLessThanOrEqual(10);
      const results = await Promise.all(pending);
      expect(results.map((r) => r.status)).toEqual(Array(500).fill(200));
    } finally {
      // A failed assertion must not leave 500 requests to die as unhandled rejections.
      await Promise.allSettled(pending);
    }
    const stats = be.stats();
    expect(stats.inflight_max).toBe(10);
    expect(stats.total).toBe(500);
    expect(stats.abandoned).toBe(0);
    await agent.close();
  });

  it('serves high-priority requests queued after low ones first', async () => {
    const { be, gw } = await setup(1, `routes:
  - { name: urgent, match: { path: /api/live/urgent-* }, priority: high }
  - { name: bulk, match: { path: /api/live/* }, priority: low }
`, 50);
    const agent = client();
    const blocker = get(`${gw.url}/api/live/blocker?ms=200`, { dispatcher: agent });
    await untilWaiting(gw, 0, 1);
    const order: string[] = [];
    const track = (path: string) => get(`${gw.url}${path}`, { dispatcher: agent }).then((r) => { order.push(path); return r; });
    const lows = [track('/api/live/low-1'), track('/api/live/low-2')];
    await untilWaiting(gw, 2);
    const highs = [track('/api/live/urgent-1'), track('/api/live/urgent-2')];
    await untilWaiting(gw, 4);
    await Promise.all([blocker, ...lows, ...highs]);
    expect(order).toEqual(['/api/live/urgent-1', '/api/live/urgent-2', '/api/live/low-1', '/api/live/low-2']);
    expect(be.stats().inflight_max).toBe(1);
    await agent.close();
  });

  it('refuses at once with 503 + Retry-After past max_waiting; the backend never sees it', async () => {
    const { be, gw } = await setup(1, 'queue: { max_waiting: 2, timeout: 10s, shed: timeout }\n');
    const agent = client();
    const held = [0, 1, 2].map((i) => get(`${gw.url}/api/live/held-${i}?ms=300`, { dispatcher: agent }));
    await untilWaiting(gw, 2);
    const refused = await get(`${gw.url}/api/live/refused`, { dispatcher: agent });
    expect(refused.status).toBe(503);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(refused.headers['x-sluice-error']).toBe('queue_full');
    expect(JSON.parse(refused.text).error.code).toBe('queue_full');
    expect(String(refused.headers['server-timing'])).toContain('error;desc=queue_full');
    expect((await Promise.all(held)).map((r) => r.status)).toEqual([200, 200, 200]);
    expect(be.stats().by_path['/api/live/refused']).toBeUndefined();
    await agent.close();
  });

  it('answers 503 after the queue timeout; the late request never reaches the backend', async () => {
    const { be, gw } = await setup(1, 'queue: { timeout: 200ms, shed: timeout }\n');
    const blocker = get(`${gw.url}/api/live/blocker?ms=800`);
    await untilBusy(gw, 1);
    const late = await get(`${gw.url}/api/live/late`);
    expect(late.status).toBe(503);
    expect(late.headers['x-sluice-error']).toBe('queue_timeout');
    expect(Number(late.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect((await blocker).status).toBe(200);
    expect(be.stats().by_path['/api/live/late']).toBeUndefined();
  });

  it('drops a queued request whose client disconnects; going direct, the backend runs it anyway', async () => {
    const { be, gw } = await setup(1, 'queue: { timeout: 10s }\n');
    const blocker = get(`${gw.url}/api/live/blocker?ms=400`);
    await untilBusy(gw, 1);
    await sendAndHangUp(gw.url, '/api/live/gone');
    await untilWaiting(gw, 0);
    await blocker;
    await new Promise((r) => setTimeout(r, 150));
    expect(be.stats().by_path['/api/live/gone']).toBeUndefined();
    expect(be.stats().abandoned).toBe(0);

    // The same scenario straight against the backend: the abandoned request still runs.
    be.resetStats();
    const directBlocker = get(`${be.url}/api/live/blocker?ms=400`);
    await new Promise((r) => setTimeout(r, 50));
    await sendAndHangUp(be.url, '/api/live/gone');
    await directBlocker;
    const deadline = Date.now() + 3000;
    while (be.stats().abandoned === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    expect(be.stats().abandoned).toBeGreaterThan(0);
    expect(be.stats().by_path['/api/live/gone']).toBe(1);
  });

  it('keeps reserved slots for their route during a flood on another route', async () => {
    const { be, gw } = await setup(4, `queue: { timeout: 10s, shed: timeout }
routes:
  - { name: health, match: { path: /api/live/health-* }, reserved_slots: 1 }
  - { name: flood, match: { path: /api/live/* } }
`);
    const agent = client();
    const flood = Array.from({ length: 20 }, (_, i) => get(`${gw.url}/api/live/flood-${i}?ms=300`, { dispatcher: agent }));
    await untilWaiting(gw, 10, undefined, true);
    const status = await json(`${gw.adminUrl}/status`);
    expect(status.slots.busy).toBe(3); // the fourth slot is held back for `health`
    const health = await get(`${gw.url}/api/live/health-1`, { dispatcher: agent });
    expect(health.status).toBe(200);
    expect(Number(/queue;dur=([\d.]+)/.exec(String(health.headers['server-timing']))![1])).toBeLessThan(100);
    await Promise.all(flood);
    expect(be.stats().inflight_max).toBeLessThanOrEqual(4);
    await agent.close();
  });
});

async function untilWaiting(gw: RunningSluice, waiting: number, busy?: number, atLeast = false): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const s = await json(`${gw.adminUrl}/status`);
    if ((atLeast ? s.queue.waiting >= waiting : s.queue.waiting === waiting) && (busy === undefined || s.slots.busy === busy)) return;
    if (Date.now() > deadline) throw new Error(`queue never reached ${waiting} waiting: ${JSON.stringify(s.queue)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function untilBusy(gw: RunningSluice, busy: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while ((await json(`${gw.adminUrl}/status`)).slots.busy !== busy) {
    if (Date.now() > deadline) throw new Error('slots never busy');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Sends a request on a raw socket and closes it before any answer. */
async function sendAndHangUp(base: string, path: string): Promise<void> {
  const { hostname, port } = new URL(base);
  await new Promise<void>((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}\r\n\r\n`, () => setTimeout(() => { socket.destroy(); resolve(); }, 50));
    });
    socket.on('error', reject);
  });
}
