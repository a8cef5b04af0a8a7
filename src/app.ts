// The composition root: builds every long-lived object from the compiled config, wires
// them together, and owns start-up and shutdown order. Nothing else creates cross-request state.
import type { CompiledConfig } from './config/compile.js';
import { AdminServer } from './admin/admin-server.js';
import { GatewayServer } from './http/gateway-server.js';
import { handleRequest } from './pipeline/handle-request.js';
import type { RequestObserver } from './pipeline/deps.js';
import { SlotQueue } from './slots/slot-queue.js';
import { BackendPools } from './upstream/backend-pools.js';
import type { UpstreamEnv } from './upstream/call-upstream.js';
import { PRIORITY_CLASSES } from './config/schema.js';
import { registerDashboard } from './admin/dashboard.js';
import { registerMetricsAdmin } from './admin/metrics-admin.js';
import { registerQueueView } from './admin/queue-view.js';
import { Telemetry } from './telemetry/telemetry.js';
import { registerJobsAdmin } from './admin/jobs-admin.js';
import { JobService } from './jobs/service.js';
import { localJobApi, type JobApi } from './jobs/api.js';
import { ResponseCache } from './cache/response-cache.js';
import { Coalescer } from './coalesce/coalescer.js';
import type { SharedAnswer } from './coalesce/shared-answer.js';
import { registerCacheAdmin, targetMatcher } from './admin/cache-admin.js';
import { BufferBudget } from './http/buffer-budget.js';
import { isLoopbackHost } from './admin/admin-guard.js';
import { forwardingPolicy, queuedPerClient, reloadApp, type MutableDeps, type ReloadOutcome } from './app-reload.js';
import { registerReloadAdmin } from './admin/reload-admin.js';
import { BackendHealth } from './slots/backend-health.js';
import type { SluiceConfig } from './config/schema.js';
import { listenFailure } from './errors.js';
import { tcpProbe } from './upstream/tcp-probe.js';
import { Cluster } from './cluster/cluster.js';
import { registerClusterMetrics } from './cluster/cluster-metrics.js';

export interface SluiceApp {
  /** The running config; a reload replaces it. */
  readonly config: CompiledConfig;
  readonly queue: SlotQueue;
  readonly admin: AdminServer;
  readonly gateway: GatewayServer;
  /** Tracing, metrics, access log and the live window; `telemetry.jobs` traces jobs. */
  readonly telemetry: Telemetry;
  /** Long jobs: store, runner and resources (BullMQ on Redis in a cluster). */
  readonly jobs: JobApi;
  /** Scale-out mode (shared slots and coalescing on Redis); undefined without `cluster`. */
  readonly cluster: Cluster | undefined;
  /** Starts both servers; resolves with the bound ports (useful with port 0). */
  listen(): Promise<{ port: number; adminPort: number | undefined }>;
  /** Graceful: stop accepting, let queued and running requests finish within the grace period. */
  shutdown(graceMs?: number): Promise<{ drained: boolean }>;
  /** Applies a validated config to new requests; what needs a restart keeps its running value. */
  reload(next: SluiceConfig): ReloadOutcome;
}

export interface AppOptions {
  /** Re-reads and validates the config (throws ConfigError); enables POST /reload. */
  readonly reloadSource?: () => SluiceConfig;
}

export function createApp(config: CompiledConfig, extraObservers: RequestObserver[] = [], options: AppOptions = {}): SluiceApp {
  const raw = config.raw;
  // Fed by every backend call; grants skip ejected servers, /status, /readyz and the failing gauge report it.
  const health = new BackendHealth(raw.backend.servers.map((s) => s.url), {
    failures: raw.backend.passive_health.failures, cooldownMs: raw.backend.passive_health.cooldown,
    probe: (url) => tcpProbe(url, raw.backend.timeouts.connect),
  });
  // Built before telemetry (the queue needs its budget); logs go through the logger once it exists.
  let log: ((level: 'info' | 'warn', message: string) => void) = () => {};
  const cluster = raw.cluster ? new Cluster(raw.cluster, raw.backend.servers, (level, message) => log(level, message)) : undefined;
  const queue = new SlotQueue(raw.backend.servers, { maxWaiting: raw.queue.max_waiting, shed: raw.queue.shed, capacity: cluster?.slots }, undefined, health);
  cluster?.slots.attach({ demand: () => queue.demandByClass(), waiting: () => queue.waiting, wake: () => queue.wake() });
  // Declared up front: a reservation must hold before its route's first request arrives.
  for (const route of config.routes) queue.group(route.name, { maxSlots: route.maxSlots, reservedSlots: route.reservedSlots });
  const telemetry = new Telemetry(raw, queue);
  log = (level, message) => telemetry.logger[level](message);
  const pools = new BackendPools(raw.backend, (message, details) => telemetry.logger.warn(details, message));
  const warn = (message: string, err?: unknown) => telemetry.logger.warn({ err }, message);
  // The Via token Sluice adds to requests and responses.
  const via = '1.1 sluice';
  // Every backend call (proxied, refresh, job attempt) reports to the one health tracker.
  const upstream: UpstreamEnv = { pools, onOutcome: (url, outcome) => health.recordOutcome(url, outcome) };
  const jobs: JobApi = cluster?.bullJobs({ config, slots: queue, attemptEnv: { upstream, via, limits: raw.limits }, tracer: telemetry.jobs, warn })
    ?? localJobApi(new JobService({ config, queue, upstream, via, tracer: telemetry.jobs, warn }));
  const cache = new ResponseCache(raw.cache.max_bytes, raw.cache.targeted_fields);
  const coalescer = new Coalescer<SharedAnswer>();
  const sharedCache = cluster?.sharedCache(cache);
  if (sharedCache) {
    cache.onStore((request, entry) => sharedCache.stored(request, entry));
    sharedCache.onPurge((glob) => cache.purge(glob === undefined ? undefined : targetMatcher(glob)));
  }
  // Mutable only through reloadApp, which swaps whole objects.
  const deps: MutableDeps = {
    config, queue, upstream, via, jobs, cache, coalescer, remoteFlights: cluster?.flights, sharedCache,
    forwarding: forwardingPolicy(raw),
    buffers: new BufferBudget(raw.limits.buffer_memory, raw.limits.buffer_disk),
    queuedPerClient: queuedPerClient(raw),
    observers: [...telemetry.observers, ...extraObservers],
    traceContext: telemetry.traceContext,
  };
  const gateway = new GatewayServer(
    raw.limits,
    (req, res, expectsContinue, connectionClosed) => handleRequest(req, res, deps, expectsContinue, connectionClosed),
    (address) => deps.forwarding.isTrusted(address),
  );
  const admin = new AdminServer({ token: raw.admin.token, host: raw.admin.host });
  registerMetricsAdmin(admin, telemetry.metrics);
  registerQueueView(admin, queue);
  registerDashboard(admin, telemetry.live, cluster ? () => ({ cluster: cluster.slots.view() }) : undefined);
  registerJobsAdmin(admin, jobs);
  registerCacheAdmin(admin, cache, coalescer, sharedCache ? (glob, matches) => sharedCache.purge(glob, matches) : undefined);
  telemetry.metrics.watchConnections(() => raw.backend.servers.map((s) => ({ server: s.url, ...pools.connectionStats(s.url) })));
  telemetry.metrics.watchJobs(() => jobs.stats().by_state);
  telemetry.metrics.watchBackends((url) => health.isFailing(url));
  telemetry.metrics.watchCache(() => {
    const { bytes = 0, entries = 0 } = cache.stats();
    return { bytes, entries };
  });
  admin.statusSection('slots', () => ({
    total: queue.totalSlots,
    busy: queue.busySlots,
    servers: queue.servers.map((s) => ({ url: s.url, busy: s.busy, total: s.slots, health: health.ejection(s.url), connections: pools.connectionStats(s.url) })),
    groups: queue.groupStats().map((g) => ({ name: g.name, inflight: g.inflight, max_slots: g.maxSlots ?? null, reserved_slots: g.reservedSlots })),
  }));
  admin.statusSection('backend', () => ({ servers: health.snapshot() }));
  admin.statusSection('queue', () => ({
    waiting: queue.waiting,
    by_priority: queue.depthByClass(),
    oldest_wait_ms: queue.oldestWaitMs(),
    max_waiting: deps.config.raw.queue.max_waiting,
    service_ms: queue.estimator.serviceMs === undefined ? null : Math.round(queue.estimator.serviceMs * 10) / 10,
    drain_per_second: Number(queue.estimator.drainPerSecond().toFixed(2)),
    priority_classes: PRIORITY_CLASSES,
  }));
  admin.statusSection('requests', () => ({ active: gateway.activeRequests }));
  // Sluice stays ready while the backend is down: taking every Sluice out of rotation would
  // turn fast, explained 502s into connection errors. /readyz says so instead.
  admin.readinessNote(() => (queue.servers.every((s) => health.ejection(s.url) === 'ejected') ? 'every backend server is ejected after connect failures' : undefined));
  admin.statusSection('buffers', () => ({
    memory_bytes: deps.buffers?.memoryUsed ?? 0, memory_max: raw.limits.buffer_memory,
    disk_bytes: deps.buffers?.diskUsed ?? 0, disk_max: raw.limits.buffer_disk,
  }));

  const startSlots = new Map(raw.backend.servers.map((s) => [s.url, s.slots]));
  const reload = (next: SluiceConfig) => reloadApp({ deps, queue, jobs, startSlots }, next);
  registerReloadAdmin(admin, options.reloadSource, reload, (message) => telemetry.logger.warn(message));

  if (cluster) {
    admin.statusSection('cluster', () => cluster.status());
    admin.readinessDetail(() => cluster.readiness());
    registerClusterMetrics(telemetry.metrics.registry, cluster);
  }

  return {
    get config() { return deps.config; },
    queue, admin, gateway, telemetry, jobs, reload, cluster,
    async listen() {
      telemetry.start();
      health.start();
      cluster?.start();
      jobs.start();
      const port = await gateway.listen(raw.listen.port, raw.listen.host)
        .catch((err: unknown) => { throw listenFailure(err, 'gateway', '--port or listen.port'); });
      const adminPort = raw.admin.enabled
        ? await admin.listen(raw.admin.port, raw.admin.host)
          .catch((err: unknown) => { throw listenFailure(err, 'admin server', '--admin-port or admin.port'); })
        : undefined;
      if (raw.admin.enabled && !raw.admin.token && !isLoopbackHost(raw.admin.host)) {
        telemetry.logger.warn(`admin server on ${raw.admin.host} is reachable beyond loopback without admin.token: anyone who can connect may purge the cache, list job ids (which open their results) and read /queue`);
      }
      admin.setReady(true);
      return { port, adminPort };
    },
    async shutdown(graceMs = raw.shutdown.grace) {
      admin.setReady(false);
      // Running jobs get the same grace; cut off, they stay `running` for on_restart.
      const [drained] = await Promise.all([gateway.drain(graceMs), jobs.drain(graceMs)]);
      if (!drained) {
        queue.rejectAll('shutting_down');
        gateway.closeAllConnections();
      }
      await jobs.close();
      health.stop();
      await cluster?.close();
      await pools.close();
      if (raw.admin.enabled) await admin.close();
      await telemetry.shutdown();
      return { drained };
    },
  };
}
