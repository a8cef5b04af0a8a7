// The numbers behind the dashboard, fed with finished requests and a real slot queue.
import { describe, expect, it } from 'vitest';
import type { RequestContext } from '../../src/pipeline/context.js';
import { SlotQueue } from '../../src/slots/slot-queue.js';
import { LiveWindow, percentile } from '../../src/telemetry/live-window.js';
import { SluiceError } from '../../src/errors.js';

let seq = 0;

/** A finished request as the orchestrator leaves it (only the fields observers read). */
function done(o: { route: string; queueMs?: number; upstreamMs?: number; totalMs: number; cache?: string; error?: SluiceError; queued?: boolean }): RequestContext {
  const start = performance.now() - o.totalMs;
  const phases = [{ name: 'receive', startMs: start, endMs: start }];
  if (o.queued !== false) phases.push({ name: 'acquireSlot', startMs: start, endMs: start + (o.queueMs ?? 0) });
  phases.push({ name: 'respond', startMs: start + o.totalMs, endMs: start + o.totalMs });
  return {
    id: `r${++seq}`, method: 'GET', pathname: `/x/${seq}`, startedAt: start, startedAtEpochMs: Date.now() - o.totalMs,
    route: { name: o.route }, res: { headersSent: !o.error, statusCode: 200 }, error: o.error,
    cacheStatus: o.cache, coalesceRole: undefined,
    timings: { queueMs: o.queueMs ?? 0, upstreamMs: o.upstreamMs ?? 0, readBodyMs: 0, coalesceWaitMs: 0, jobWaitMs: 0 },
    phases,
    annotations: {},
  } as unknown as RequestContext;
}

function setup(options: Partial<ConstructorParameters<typeof LiveWindow>[1]> = {}) {
  const queue = new SlotQueue([{ url: 'http://a', slots: 2 }, { url: 'http://b', slots: 3 }], { maxWaiting: 10, shed: 'timeout' });
  let now = 1_000_000;
  const live = new LiveWindow(queue, { windowS: 5, recentS: 3, slowKept: 6, now: () => now, ...options });
  return { queue, live, advance: (ms: number) => { now += ms; } };
}

describe('LiveWindow', () => {
  it('nearest-rank percentiles', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(values, 0.5)).toBe(50);
    expect(percentile(values, 0.99)).toBe(99);
    expect(percentile([7], 0.99)).toBe(7);
    expect(percentile([], 0.5)).toBe(0);
  });

  it('closes one sample per second with wait percentiles, counts and sheds, keeping only the window', () => {
    const { live, advance } = setup();
    for (let i = 1; i <= 100; i++) live.onDone(done({ route: 'a', queueMs: i, upstreamMs: 5, totalMs: i + 5 }));
    live.onDone(done({ route: 'a', totalMs: 1, error: new SluiceError('queue_full'), queued: true }));
    live.onDone(done({ route: 'a', totalMs: 1, cache: 'hit', queued: false }));
    advance(1000);
    live.tick();
    const [sample] = live.snapshot().series;
    expect(sample).toMatchObject({ requests: 102, shed: 1, waitP50: 50, waitP99: 99, waitMax: 100, cacheHits: 1, cacheLookups: 1 });
    for (let i = 0; i < 7; i++) live.tick();
    expect(live.snapshot().series).toHaveLength(5);
    expect(live.snapshot().totals).toEqual({ requests: 102, shed: 1 });
  });

  it('reports the cache hit ratio over the recent seconds only', () => {
    const { live } = setup();
    live.onDone(done({ route: 'a', totalMs: 1, cache: 'miss', queued: false }));
    for (let i = 0; i < 3; i++) live.tick();
    live.onDone(done({ route: 'a', totalMs: 1, cache: 'hit', queued: false }));
    live.onDone(done({ route: 'a', totalMs: 1, cache: 'stale', queued: false }));
    live.onDone(done({ route: 'a', totalMs: 1, cache: 'bypass', queued: false }));
    live.tick();
    // The miss is now 4 s old, outside recentS = 3; a bypass is not a lookup.
    expect(live.snapshot().cache).toEqual({ hitRatio: 1, hits: 2, lookups: 2 });
  });

  it('lists the slowest recent requests newest first, at most a third per route', () => {
    const { live, advance } = setup();
    for (let i = 0; i < 5; i++) {
      live.onDone(done({ route: 'reports', upstreamMs: 2000 + i, totalMs: 2000 + i }));
      advance(10);
    }
    live.onDone(done({ route: 'items', queueMs: 300, upstreamMs: 100, totalMs: 400 }));
    advance(10);
    live.onDone(done({ route: 'items', queueMs: 10, upstreamMs: 100, totalMs: 110 }));
    const slow = live.snapshot().slow;
    expect(slow.filter((s) => s.route === 'reports')).toHaveLength(2);
    expect(slow.filter((s) => s.route === 'reports').map((s) => s.totalMs)).toEqual([2004, 2003]);
    expect(slow.filter((s) => s.route === 'items').map((s) => s.totalMs)).toEqual([110, 400]);
    expect(slow.map((s) => s.at)).toEqual([...slow.map((s) => s.at)].sort((a, b) => b - a));
    expect(slow[0]).toMatchObject({ queueMs: 10, upstreamMs: 100, status: 200 });
  });

  it('ranks routes by slot time, counting requests that hold a slot right now', async () => {
    const { queue, live } = setup();
    live.onDone(done({ route: 'a', upstreamMs: 500, totalMs: 500 }));
    live.onDone(done({ route: 'b', upstreamMs: 200, totalMs: 200 }));
    const lease = await queue.acquire({ group: queue.group('b', {}), priorityRank: 2, queueTimeoutMs: 1000, info: { requestId: 'x', method: 'GET', path: '/' } });
    await new Promise((r) => setTimeout(r, 400));
    const top = live.snapshot().topRoutes;
    lease.release();
    expect(top.map((r) => r.route)).toEqual(['b', 'a']);
    expect(top[0]!.inflight).toBe(1);
    expect(top[0]!.slotMs).toBeGreaterThanOrEqual(590);
    expect(top[1]).toMatchObject({ route: 'a', slotMs: 500, inflight: 0 });
    const snapshot = live.snapshot();
    expect(snapshot.slots).toEqual({ busy: 0, total: 5, servers: [{ url: 'http://a', busy: 0, total: 2 }, { url: 'http://b', busy: 0, total: 3 }] });
  });
});
