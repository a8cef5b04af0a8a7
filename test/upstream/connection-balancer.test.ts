// The connection balancer against the test backend's gthread model and its semaphore
// model, over real sockets: recycling, the queueing warning, and the slot invariant.
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionBalancer } from '../../src/upstream/connection-balancer.js';
import { backend } from '../helpers/harness.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

/** Keeps `slots` requests in flight through the balancer for `ms`, as the slot queue would. */
async function saturate(balancer: ConnectionBalancer, slots: number, ms: number, path: string): Promise<number> {
  const until = performance.now() + ms;
  let done = 0;
  let maxBusy = 0;
  await Promise.all(Array.from({ length: slots }, async (_, lane) => {
    for (let i = 0; performance.now() < until; i++) {
      const res = await balancer.request({ method: 'GET', path: `${path}-${lane}-${i}?ms=50` }, 'live');
      maxBusy = Math.max(maxBusy, balancer.stats().busy);
      await res.body.dump();
      done++;
    }
  }));
  expect(maxBusy).toBeLessThanOrEqual(slots);
  return done;
}

describe('ConnectionBalancer', () => {
  it('warns (once) when the backend keeps queueing while the slots are full', async () => {
    // 4 workers of 1 thread behind 8 slots: however the 8 connections land, some worker
    // holds two of them, so the backend queues inside on every round.
    const be = await backend({ model: 'gthread', workers: 4, threads: 1, slots: 4, keepaliveMs: 5000 });
    cleanups.push(() => be.close());
    const warnings: Array<{ message: string; details: Record<string, unknown> }> = [];
    // Recycling off, so the connections stay where they landed and the queueing persists.
    const balancer = new ConnectionBalancer({
      url: be.url, slots: 8, connectTimeoutMs: 2000, idleTimeoutMs: 1000, recycleQueued: false,
      warn: (message, details) => warnings.push({ message, details }), warnWindowMs: 400, warnEveryMs: 60_000,
    });
    cleanups.push(() => balancer.close());
    // One at a time first, so the route's service time is learnt without any waiting.
    await saturate(balancer, 1, 600, '/api/live/learn');
    const done = await saturate(balancer, 8, 2500, '/api/live/warn');
    expect(done).toBeGreaterThan(60);
    expect(be.stats().worker_queue_max).toBeGreaterThan(0);
    expect(balancer.stats().queued_detected_total).toBeGreaterThanOrEqual(10);
    expect(balancer.stats().recycled_total).toBe(0);
    expect(warnings).toHaveLength(1); // rate-limited: once per warnEveryMs
    expect(warnings[0]!.message).toMatch(/queueing requests internally/);
    expect(warnings[0]!.details).toMatchObject({ server: be.url, slots: 8, recycle_queued: false });
  });

  it('recycles every connection whose request waited inside the backend', async () => {
    // As above: more requests than threads, so some always wait inside a worker.
    const be = await backend({ model: 'gthread', workers: 4, threads: 1, slots: 4, keepaliveMs: 5000 });
    cleanups.push(() => be.close());
    const balancer = new ConnectionBalancer({ url: be.url, slots: 8, connectTimeoutMs: 2000, idleTimeoutMs: 1000, recycleQueued: true });
    cleanups.push(() => balancer.close());
    await saturate(balancer, 1, 600, '/api/live/learn');
    await saturate(balancer, 8, 2000, '/api/live/recycle');
    const stats = balancer.stats();
    expect(stats.queued_detected_total).toBeGreaterThan(0);
    expect(stats.recycled_total).toBe(stats.queued_detected_total);
    expect(stats.opened_total).toBeGreaterThan(8);
    expect(stats.busy).toBe(0);
    expect(be.stats().inflight_max).toBeLessThanOrEqual(4);
  });

  it('says nothing and recycles nothing in front of a backend without connection binding', async () => {
    const be = await backend({ slots: 8 });
    cleanups.push(() => be.close());
    const warnings: string[] = [];
    const balancer = new ConnectionBalancer({
      url: be.url, slots: 8, connectTimeoutMs: 2000, idleTimeoutMs: 1000, recycleQueued: true,
      warn: (message) => warnings.push(message), warnWindowMs: 500,
    });
    cleanups.push(() => balancer.close());
    const done = await saturate(balancer, 8, 1500, '/api/live/calm');
    expect(be.stats().inflight_max).toBe(8);
    // Only scheduler noise on a loaded machine can make a 50 ms answer look queued.
    const { recycled_total: recycled, opened_total: opened } = balancer.stats();
    expect(recycled).toBeLessThanOrEqual(done / 20);
    expect(opened).toBeLessThanOrEqual(8 + recycled);
    expect(warnings).toEqual([]);
  });

  it('judges no answer while Sluice\'s own event loop is saturated: the queueing is real, but the times say nothing', async () => {
    // The same queueing backend as above; the gateway reports its own loop saturated throughout.
    const be = await backend({ model: 'gthread', workers: 4, threads: 1, slots: 4, keepaliveMs: 5000 });
    cleanups.push(() => be.close());
    const balancer = new ConnectionBalancer({ url: be.url, slots: 8, connectTimeoutMs: 2000, idleTimeoutMs: 1000, recycleQueued: true, loopSaturated: () => true });
    cleanups.push(() => balancer.close());
    await saturate(balancer, 1, 600, '/api/live/learn');
    await saturate(balancer, 8, 1500, '/api/live/busy-gateway');
    expect(be.stats().worker_queue_max).toBeGreaterThan(0);
    expect(balancer.stats()).toMatchObject({ queued_detected_total: 0, recycled_total: 0, opened_total: 8 });
  });
});
