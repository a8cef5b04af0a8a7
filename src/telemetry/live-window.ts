// The numbers behind the live dashboard: one sample per second for the last few minutes
// (slots busy, queue depth, wait percentiles, throughput, cache hit ratio), slot time per
// route, and the slowest recent requests with their timing breakdown. Bounded memory:
// a fixed number of seconds, a capped reservoir of waits per second, a few slow requests.
import type { RequestContext } from '../pipeline/context.js';
import type { RequestObserver } from '../pipeline/deps.js';
import type { SlotQueue } from '../slots/slot-queue.js';
import { responseStatus } from './trace-observer.js';
import { routeLabel } from './attributes.js';

export interface SecondSample {
  /** Epoch milliseconds at the end of the second. */
  readonly t: number;
  readonly busy: number;
  readonly waiting: number;
  readonly requests: number;
  readonly shed: number;
  readonly waitP50: number;
  readonly waitP99: number;
  readonly waitMax: number;
  readonly cacheHits: number;
  readonly cacheLookups: number;
}

export interface SlowRequest {
  readonly id: string;
  readonly at: number;
  readonly method: string;
  readonly path: string;
  readonly route: string;
  readonly status: number;
  readonly queueMs: number;
  readonly readBodyMs: number;
  readonly coalesceMs: number;
  /** Held for a job's result (Prefer: wait) or long-polling a job's status. */
  readonly jobMs: number;
  readonly upstreamMs: number;
  readonly totalMs: number;
  readonly cache: string | undefined;
  readonly coalesce: string | undefined;
}

export interface RouteSlotTime { readonly route: string; readonly slotMs: number; readonly inflight: number; readonly share: number }

export interface LiveSnapshot {
  readonly now: number;
  readonly windowS: number;
  readonly slots: { busy: number; total: number; servers: Array<{ url: string; busy: number; total: number }> };
  readonly queue: { waiting: number; byPriority: Record<string, number>; oldestWaitMs: number };
  readonly cache: { hitRatio: number | null; hits: number; lookups: number };
  readonly totals: { requests: number; shed: number };
  readonly series: readonly SecondSample[];
  readonly topRoutes: readonly RouteSlotTime[];
  readonly slow: readonly SlowRequest[];
}

export interface LiveWindowOptions {
  /** Seconds of history kept and plotted. */
  readonly windowS: number;
  /** Seconds over which "right now" figures (top routes, hit ratio, slow requests) are taken. */
  readonly recentS: number;
  readonly slowKept: number;
  readonly now: () => number;
}

const WAIT_RESERVOIR = 2048;
const CACHE_LOOKUP_STATUSES = new Set(['hit', 'stale', 'miss', 'revalidated', 'error-stale']);
const SHED_CODES = new Set(['queue_full', 'queue_shed', 'queue_timeout', 'shutting_down']);

/** What one second accumulates before it is closed into a SecondSample. */
class SecondBucket {
  requests = 0;
  shed = 0;
  cacheHits = 0;
  cacheLookups = 0;
  waitsSeen = 0;
  readonly waits: number[] = [];
  readonly slotMsByRoute = new Map<string, number>();
  /** The slowest requests of this second, per route, slowest first. */
  readonly slowest = new Map<string, SlowRequest[]>();

  addWait(ms: number, random: number): void {
    this.waitsSeen++;
    if (this.waits.length < WAIT_RESERVOIR) this.waits.push(ms);
    else {
      // Reservoir sampling keeps the percentiles honest under any rate at a fixed cost.
      const slot = Math.floor(random * this.waitsSeen);
      if (slot < WAIT_RESERVOIR) this.waits[slot] = ms;
    }
  }

  addSlow(request: SlowRequest, keptPerRoute: number): void {
    let list = this.slowest.get(request.route);
    if (!list) this.slowest.set(request.route, (list = []));
    if (list.length >= keptPerRoute && request.totalMs <= list.at(-1)!.totalMs) return;
    list.push(request);
    list.sort((a, b) => b.totalMs - a.totalMs);
    if (list.length > keptPerRoute) list.pop();
  }
}

interface ClosedSecond { readonly sample: SecondSample; readonly bucket: SecondBucket }

export class LiveWindow implements RequestObserver {
  private current = new SecondBucket();
  private readonly closed: ClosedSecond[] = [];
  private timer: NodeJS.Timeout | undefined;
  private requestsTotal = 0;
  private shedTotal = 0;

  constructor(private readonly queue: SlotQueue, private readonly options: LiveWindowOptions) {}

  start(): void {
    this.timer ??= setInterval(() => this.tick(), 1000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  onDone(ctx: RequestContext): void {
    const bucket = this.current;
    const route = routeLabel(ctx);
    bucket.requests++;
    this.requestsTotal++;
    if (ctx.error && SHED_CODES.has(ctx.error.code)) {
      bucket.shed++;
      this.shedTotal++;
    }
    if (ctx.phases.some((p) => p.name === 'acquireSlot')) bucket.addWait(ctx.timings.queueMs, Math.random());
    if (ctx.cacheStatus && CACHE_LOOKUP_STATUSES.has(ctx.cacheStatus)) {
      bucket.cacheLookups++;
      if (ctx.cacheStatus === 'hit' || ctx.cacheStatus === 'stale') bucket.cacheHits++;
    }
    if (ctx.timings.upstreamMs > 0) bucket.slotMsByRoute.set(route, (bucket.slotMsByRoute.get(route) ?? 0) + ctx.timings.upstreamMs);
    bucket.addSlow(slowRequest(ctx, route, this.options.now()), this.perRoute());
  }

  /** Closes the current second; called by the timer, and directly by tests. */
  tick(): void {
    const bucket = this.current;
    this.current = new SecondBucket();
    const waits = bucket.waits.sort((a, b) => a - b);
    this.closed.push({
      bucket,
      sample: {
        t: this.options.now(),
        busy: this.queue.busySlots,
        waiting: this.queue.waiting,
        requests: bucket.requests,
        shed: bucket.shed,
        waitP50: round(percentile(waits, 0.5)),
        waitP99: round(percentile(waits, 0.99)),
        waitMax: round(waits.at(-1) ?? 0),
        cacheHits: bucket.cacheHits,
        cacheLookups: bucket.cacheLookups,
      },
    });
    bucket.waits.length = 0;
    if (this.closed.length > this.options.windowS) this.closed.shift();
  }

  snapshot(): LiveSnapshot {
    const recent = this.closed.slice(-this.options.recentS);
    const hits = sum(recent, (c) => c.bucket.cacheHits) + this.current.cacheHits;
    const lookups = sum(recent, (c) => c.bucket.cacheLookups) + this.current.cacheLookups;
    return {
      now: this.options.now(),
      windowS: this.options.windowS,
      slots: {
        busy: this.queue.busySlots,
        total: this.queue.totalSlots,
        servers: this.queue.servers.map((s) => ({ url: s.url, busy: s.busy, total: s.slots })),
      },
      queue: { waiting: this.queue.waiting, byPriority: this.queue.depthByClass(), oldestWaitMs: this.queue.oldestWaitMs() },
      cache: { hitRatio: lookups > 0 ? round(hits / lookups) : null, hits, lookups },
      totals: { requests: this.requestsTotal, shed: this.shedTotal },
      series: this.closed.map((c) => c.sample),
      topRoutes: this.topRoutes(recent),
      slow: this.slowest(recent),
    };
  }

  private perRoute(): number {
    return Math.max(1, Math.ceil(this.options.slowKept / 3));
  }

  /** Slot time per route over the recent seconds, counting requests still on a slot so far. */
  private topRoutes(recent: readonly ClosedSecond[]): RouteSlotTime[] {
    const slotMs = new Map<string, number>();
    const inflight = new Map<string, number>();
    for (const second of [...recent.map((c) => c.bucket), this.current]) {
      for (const [route, ms] of second.slotMsByRoute) slotMs.set(route, (slotMs.get(route) ?? 0) + ms);
    }
    const now = performance.now();
    for (const entry of this.queue.inflightEntries()) {
      inflight.set(entry.group, (inflight.get(entry.group) ?? 0) + 1);
      slotMs.set(entry.group, (slotMs.get(entry.group) ?? 0) + Math.min(now - entry.startedAt, this.options.recentS * 1000));
    }
    const capacityMs = Math.max(1, this.queue.totalSlots * Math.max(1, recent.length) * 1000);
    return [...slotMs]
      .map(([route, ms]) => ({ route, slotMs: Math.round(ms), inflight: inflight.get(route) ?? 0, share: round(Math.min(1, ms / capacityMs)) }))
      .sort((a, b) => b.slotMs - a.slotMs)
      .slice(0, 8);
  }

  /**
   * The slowest recent requests, newest first, at most a third of the list per route: a
   * route that is always slow (a report) must not hide where other routes' time goes.
   */
  private slowest(recent: readonly ClosedSecond[]): SlowRequest[] {
    const all = [...recent.map((c) => c.bucket), this.current]
      .flatMap((bucket) => [...bucket.slowest.values()].flat())
      .sort((a, b) => b.totalMs - a.totalMs);
    const perRoute = this.perRoute();
    const taken = new Map<string, number>();
    const picked: SlowRequest[] = [];
    for (const request of all) {
      const n = taken.get(request.route) ?? 0;
      if (n >= perRoute) continue;
      taken.set(request.route, n + 1);
      picked.push(request);
      if (picked.length === this.options.slowKept) break;
    }
    return picked.sort((a, b) => b.at - a.at);
  }
}

function slowRequest(ctx: RequestContext, route: string, at: number): SlowRequest {
  const respond = ctx.phases.find((p) => p.name === 'respond');
  return {
    id: ctx.id,
    at,
    method: ctx.method,
    path: ctx.pathname,
    route,
    status: responseStatus(ctx) ?? ctx.error?.status ?? 0,
    queueMs: round(ctx.timings.queueMs),
    readBodyMs: round(ctx.timings.readBodyMs),
    coalesceMs: round(ctx.timings.coalesceWaitMs),
    jobMs: round(ctx.timings.jobWaitMs),
    upstreamMs: round(ctx.timings.upstreamMs),
    totalMs: round((respond?.endMs || performance.now()) - ctx.startedAt),
    cache: ctx.cacheStatus,
    coalesce: ctx.coalesceRole,
  };
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

function sum<T>(items: readonly T[], value: (item: T) => number): number {
  let total = 0;
  for (const item of items) total += value(item);
  return total;
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
