// Prometheus metrics (prom-client, with a registry owned by this app, never the global
// one). Counters and histograms are fed by the request observer; gauges are read from
// their owners (slot queue, cache, job store) at scrape time, so they are never stale.
// Label values are closed sets: route names from the config, status codes, error codes,
// cache statuses, priority classes, server URLs.
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { RequestContext } from '../pipeline/context.js';
import type { RequestObserver } from '../pipeline/deps.js';
import type { SlotQueue } from '../slots/slot-queue.js';
import { responseStatus } from './trace-observer.js';
import { routeLabel } from './attributes.js';

/** Sizes the cache reports about itself. */
export interface CacheGauges { readonly bytes: number; readonly entries: number }
/** Per backend server: what its connections show (see upstream/connection-balancer.ts). */
export interface ConnectionGauges {
  readonly server: string;
  readonly connections: number;
  readonly recycled_total: number;
  readonly effective_concurrency: number | null;
}
/** Job counts by state (queued, running, succeeded, failed, ...). */
export type JobGauges = Readonly<Record<string, number>>;

const SHED_CODES = new Set(['queue_full', 'queue_shed', 'queue_timeout', 'shutting_down']);
/**
 * monitorEventLoopDelay records the whole time between its timer's runs, so an idle loop
 * reads as the sampling interval itself; the gauge reports what is left after subtracting it.
 */
const LOOP_DELAY_RESOLUTION_MS = 10;
const LOOP_DELAY_RESOLUTION_NS = LOOP_DELAY_RESOLUTION_MS * 1e6;
const WAIT_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const UPSTREAM_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export class SluiceMetrics implements RequestObserver {
  readonly registry = new Registry();
  private readonly loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
  private cacheSource: (() => CacheGauges) | undefined;
  private jobSource: (() => JobGauges) | undefined;
  private connectionSource: (() => ConnectionGauges[]) | undefined;
  private failingSource: ((url: string) => boolean) | undefined;
  private readonly byRoute = new Map<string, RouteChildren>();

  private readonly requests = new Counter({
    name: 'sluice_requests_total', help: 'Requests answered, by route and HTTP status (499: the client left first).',
    labelNames: ['route', 'status'] as const, registers: [this.registry],
  });
  private readonly requestDuration = new Histogram({
    name: 'sluice_request_duration_seconds', help: 'Time from the request head arriving to the response written, by route.',
    labelNames: ['route'] as const, buckets: UPSTREAM_BUCKETS, registers: [this.registry],
  });
  private readonly queueWait = new Histogram({
    name: 'sluice_queue_wait_seconds', help: 'Time spent waiting for a backend slot, by route (every request that entered the queue, including those shed).',
    labelNames: ['route'] as const, buckets: WAIT_BUCKETS, registers: [this.registry],
  });
  private readonly upstreamDuration = new Histogram({
    name: 'sluice_upstream_duration_seconds', help: 'Backend call time (slot held), per attempt, by route.',
    labelNames: ['route'] as const, buckets: UPSTREAM_BUCKETS, registers: [this.registry],
  });
  private readonly shed = new Counter({
    name: 'sluice_shed_total', help: '503s Sluice answered itself instead of queueing further, by route and reason.',
    labelNames: ['route', 'reason'] as const, registers: [this.registry],
  });
  private readonly errors = new Counter({
    name: 'sluice_errors_total', help: 'Requests that ended in a Sluice error, by route and error code.',
    labelNames: ['route', 'code'] as const, registers: [this.registry],
  });
  private readonly cacheLookups = new Counter({
    name: 'sluice_cache_requests_total', help: 'Requests that consulted the cache, by route and cache status (hit, stale, miss, ...).',
    labelNames: ['route', 'status'] as const, registers: [this.registry],
  });
  private readonly followers = new Counter({
    name: 'sluice_coalesced_followers_total', help: 'Requests answered by joining an identical request already in flight, by route.',
    labelNames: ['route'] as const, registers: [this.registry],
  });
  private readonly responseBytes = new Counter({
    name: 'sluice_response_bytes_total', help: 'Response body bytes written to clients, by route.',
    labelNames: ['route'] as const, registers: [this.registry],
  });

  constructor(private readonly queue: SlotQueue) {
    this.scrapeGauges();
  }

  /** Cache size gauges, registered by the composition root when the cache exists. */
  watchCache(source: () => CacheGauges): void {
    this.cacheSource = source;
  }

  /** Backend connection gauges, registered by the composition root. */
  watchConnections(source: () => ConnectionGauges[]): void {
    this.connectionSource = source;
  }

  /** Whether a backend server is failing (unreachable), from the backend health tracker. */
  watchBackends(isFailing: (url: string) => boolean): void {
    this.failingSource = isFailing;
  }

  /** Job-state gauges, registered by the composition root when jobs exist. */
  watchJobs(source: () => JobGauges): void {
    this.jobSource = source;
  }

  start(): void {
    this.loopDelay.enable();
  }

  stop(): void {
    this.loopDelay.disable();
  }

  afterUpstream(ctx: RequestContext, outcome: { durationMs: number }): void {
    this.routeChildren(routeOf(ctx)).upstreamDuration.observe(outcome.durationMs / 1000);
  }

  onDone(ctx: RequestContext): void {
    const children = this.routeChildren(routeOf(ctx));
    const status = responseStatus(ctx) ?? ctx.error?.status ?? 0;
    children.requestsByStatus(status).inc();
    children.requestDuration.observe((endOf(ctx) - ctx.startedAt) / 1000);
    if (ctx.phases.some((p) => p.name === 'acquireSlot')) children.queueWait.observe(ctx.timings.queueMs / 1000);
    if (ctx.error) {
      const route = routeOf(ctx);
      this.errors.inc({ route, code: ctx.error.code });
      if (SHED_CODES.has(ctx.error.code)) this.shed.inc({ route, reason: ctx.error.code });
    }
    if (ctx.cacheStatus) children.cacheByStatus(ctx.cacheStatus).inc();
    if (ctx.coalesceRole === 'follower') children.followers.inc();
    if (ctx.bytesSent > 0) children.responseBytes.inc(ctx.bytesSent);
  }

  /**
   * The route's metric children, bound once per route (and status) and reused: prom-client
   * hashes a label object on every call otherwise.
   */
  private routeChildren(route: string): RouteChildren {
    let children = this.byRoute.get(route);
    if (children) return children;
    const byStatus = new Map<number, Counter.Internal>();
    const byCache = new Map<string, Counter.Internal>();
    children = {
      requestsByStatus: (status) => bound(byStatus, status, () => this.requests.labels({ route, status: String(status) })),
      cacheByStatus: (status) => bound(byCache, status, () => this.cacheLookups.labels({ route, status })),
      requestDuration: this.requestDuration.labels({ route }),
      queueWait: this.queueWait.labels({ route }),
      upstreamDuration: this.upstreamDuration.labels({ route }),
      followers: this.followers.labels({ route }),
      responseBytes: this.responseBytes.labels({ route }),
    };
    this.byRoute.set(route, children);
    return children;
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  private scrapeGauges(): void {
    const { queue, registry, loopDelay } = this;
    const metrics = this;
    new Gauge({
      name: 'sluice_backend_slots', help: 'Slots (concurrent requests) of each backend server.',
      labelNames: ['server'] as const, registers: [registry],
      collect() { for (const s of queue.servers) this.set({ server: s.url }, s.slots); },
    });
    new Gauge({
      name: 'sluice_backend_slots_busy', help: 'Slots in use on each backend server.',
      labelNames: ['server'] as const, registers: [registry],
      collect() { for (const s of queue.servers) this.set({ server: s.url }, s.busy); },
    });
    new Gauge({
      name: 'sluice_backend_connections', help: 'Open connections to each backend server.',
      labelNames: ['server'] as const, registers: [registry],
      collect() { for (const c of metrics.connectionSource?.() ?? []) this.set({ server: c.server }, c.connections); },
    });
    new Gauge({
      name: 'sluice_backend_connections_recycled', help: 'Connections closed because a request on them waited inside the backend (total since start).',
      labelNames: ['server'] as const, registers: [registry],
      collect() { for (const c of metrics.connectionSource?.() ?? []) this.set({ server: c.server }, c.recycled_total); },
    });
    new Gauge({
      name: 'sluice_backend_effective_concurrency', help: 'Requests the backend really runs at once, estimated from service times (compare with slots).',
      labelNames: ['server'] as const, registers: [registry],
      collect() { for (const c of metrics.connectionSource?.() ?? []) if (c.effective_concurrency !== null) this.set({ server: c.server }, c.effective_concurrency); },
    });
    new Gauge({
      name: 'sluice_backend_failing', help: '1 while a backend server cannot be reached (connections refused, reset or timing out), else 0.',
      labelNames: ['server'] as const, registers: [registry],
      collect() { for (const s of queue.servers) this.set({ server: s.url }, metrics.failingSource?.(s.url) ? 1 : 0); },
    });
    new Gauge({
      name: 'sluice_queue_depth', help: 'Requests waiting for a slot, by priority class.',
      labelNames: ['priority'] as const, registers: [registry],
      collect() { for (const [priority, depth] of Object.entries(queue.depthByClass())) this.set({ priority }, depth); },
    });
    new Gauge({
      name: 'sluice_queue_oldest_wait_seconds', help: 'How long the longest-waiting request has waited so far.',
      registers: [registry],
      collect() { this.set(queue.oldestWaitMs() / 1000); },
    });
    new Gauge({
      name: 'sluice_cache_bytes', help: 'Bytes held by the response cache.', registers: [registry],
      collect() { this.set(metrics.cacheSource?.().bytes ?? 0); },
    });
    new Gauge({
      name: 'sluice_cache_entries', help: 'Responses held by the response cache.', registers: [registry],
      collect() { this.set(metrics.cacheSource?.().entries ?? 0); },
    });
    new Gauge({
      name: 'sluice_jobs', help: 'Jobs by state.', labelNames: ['state'] as const, registers: [registry],
      collect() {
        this.reset();
        for (const [state, count] of Object.entries(metrics.jobSource?.() ?? {})) this.set({ state }, count);
      },
    });
    new Gauge({
      name: 'sluice_event_loop_delay_seconds',
      help: 'Event-loop delay since the previous scrape (quantile 0.5, 0.99, and 1 for the maximum).',
      labelNames: ['quantile'] as const, registers: [registry],
      collect() {
        const has = loopDelay.count > 0;
        const delay = (ns: number) => (has ? Math.max(0, ns - LOOP_DELAY_RESOLUTION_NS) / 1e9 : 0);
        this.set({ quantile: '0.5' }, delay(loopDelay.percentile(50)));
        this.set({ quantile: '0.99' }, delay(loopDelay.percentile(99)));
        this.set({ quantile: '1' }, delay(loopDelay.max));
        loopDelay.reset();
      },
    });
  }
}

interface RouteChildren {
  requestsByStatus(status: number): Counter.Internal;
  cacheByStatus(status: string): Counter.Internal;
  readonly requestDuration: Histogram.Internal<'route'>;
  readonly queueWait: Histogram.Internal<'route'>;
  readonly upstreamDuration: Histogram.Internal<'route'>;
  readonly followers: Counter.Internal;
  readonly responseBytes: Counter.Internal;
}

function bound<K, C>(cache: Map<K, C>, key: K, make: () => C): C {
  let child = cache.get(key);
  if (child === undefined) cache.set(key, (child = make()));
  return child;
}

function routeOf(ctx: RequestContext): string {
  return routeLabel(ctx);
}

function endOf(ctx: RequestContext): number {
  for (let i = ctx.phases.length - 1; i >= 0; i--) {
    const phase = ctx.phases[i]!;
    if (phase.name === 'respond' && phase.endMs > 0) return phase.endMs;
  }
  return performance.now();
}
