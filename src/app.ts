// The composition root: builds every long-lived object from the compiled config, wires
// them together, and owns start-up and shutdown order. Nothing else creates cross-request state.
import type { CompiledConfig } from './config/compile.js';
import { AdminServer } from './admin/admin-server.js';
import { GatewayServer } from './http/gateway-server.js';
import { handleRequest } from './pipeline/handle-request.js';
import type { PipelineDeps, RequestObserver } from './pipeline/deps.js';
import { SlotQueue } from './slots/slot-queue.js';
import { BackendPools } from './upstream/backend-pools.js';
import { PRIORITY_CLASSES } from './config/schema.js';
import { registerDashboard } from './admin/dashboard.js';
import { registerMetricsAdmin } from './admin/metrics-admin.js';
import { registerQueueView } from './admin/queue-view.js';
import { Telemetry } from './telemetry/telemetry.js';
import { registerJobsAdmin } from './admin/jobs-admin.js';
import { JobService } from './jobs/service.js';
import { ResponseCache } from './cache/response-cache.js';
import { Coalescer } from './coalesce/coalescer.js';
import type { SharedAnswer } from './coalesce/shared-answer.js';
import { registerCacheAdmin } from './admin/cache-admin.js';
import { readPathUpstreamHeaders } from './pipeline/phases/lookup-cache.js';

export interface SluiceApp {
  readonly config: CompiledConfig;
  readonly queue: SlotQueue;
  readonly admin: AdminServer;
  readonly gateway: GatewayServer;
  /** Tracing, metrics, access log and the live window; `telemetry.jobs` traces jobs. */
  readonly telemetry: Telemetry;
  /** Long jobs: store, runner and resources. */
  readonly jobs: JobService;
  /** Starts both servers; resolves with the bound ports (useful with port 0). */
  listen(): Promise<{ port: number; adminPort: number | undefined }>;
  /** Graceful: stop accepting, let queued and running requests finish within the grace period. */
  shutdown(graceMs?: number): Promise<{ drained: boolean }>;
}

export function createApp(config: CompiledConfig, extraObservers: RequestObserver[] = []): SluiceApp {
  const raw = config.raw;
  const queue = new SlotQueue(raw.backend.servers, { maxWaiting: raw.queue.max_waiting, shed: raw.queue.shed });
  // Declared up front: a reservation must hold before its route's first request arrives.
  for (const route of config.routes) queue.group(route.name, { maxSlots: route.maxSlots, reservedSlots: route.reservedSlots });
  const telemetry = new Telemetry(raw, queue);
  const pools = new BackendPools(raw.backend, (message, details) => telemetry.logger.warn(details, message));
  const jobs = new JobService({
    config, queue, pools, via: '1.1 sluice', tracer: telemetry.jobs,
    warn: (message, err) => telemetry.logger.warn({ err }, message),
  });
  const cache = new ResponseCache(raw.cache.max_bytes, raw.cache.targeted_fields);
  const coalescer = new Coalescer<SharedAnswer>();
  const deps: PipelineDeps = {
    config, queue, pools, via: '1.1 sluice', jobs, cache, coalescer,
    observers: [readPathUpstreamHeaders, ...telemetry.observers, ...extraObservers],
  };
  const gateway = new GatewayServer(raw.limits, (req, res, expectsContinue) => handleRequest(req, res, deps, expectsContinue));
  const admin = new AdminServer();
  registerMetricsAdmin(admin, telemetry.metrics);
  registerQueueView(admin, queue);
  registerDashboard(admin, telemetry.live);
  registerJobsAdmin(admin, jobs);
  registerCacheAdmin(admin, cache, coalescer);
  telemetry.metrics.watchConnections(() => raw.backend.servers.map((s) => ({ server: s.url, ...pools.connectionStats(s.url) })));
  telemetry.metrics.watchJobs(() => jobs.stats().by_state);
  telemetry.metrics.watchCache(() => {
    const { bytes = 0, entries = 0 } = cache.stats();
    return { bytes, entries };
  });
  admin.statusSection('slots', () => ({
    total: queue.totalSlots,
    busy: queue.busySlots,
    servers: queue.servers.map((s) => ({ url: s.url, busy: s.busy, total: s.slots, connections: pools.connectionStats(s.url) })),
    groups: queue.groupStats(),
  }));
  admin.statusSection('queue', () => ({
    waiting: queue.waiting,
    by_priority: queue.depthByClass(),
    oldest_wait_ms: queue.oldestWaitMs(),
    max_waiting: raw.queue.max_waiting,
    service_ms: queue.estimator.serviceMs ?? null,
    drain_per_second: Number(queue.estimator.drainPerSecond().toFixed(2)),
    priority_classes: PRIORITY_CLASSES,
  }));
  admin.statusSection('requests', () => ({ active: gateway.activeRequests }));

  return {
    config, queue, admin, gateway, telemetry, jobs,
    async listen() {
      telemetry.start();
      jobs.start();
      const port = await gateway.listen(raw.listen.port, raw.listen.host);
      const adminPort = raw.admin.enabled ? await admin.listen(raw.admin.port, raw.admin.host) : undefined;
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
      jobs.close();
      await pools.close();
      if (raw.admin.enabled) await admin.close();
      await telemetry.shutdown();
      return { drained };
    },
  };
}
