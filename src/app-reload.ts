// Applies a reloaded config to a running app: the compiled config is swapped atomically for
// new requests (requests in flight keep the route plan they started with), and the
// long-lived objects that hold per-route or per-request settings are told. Nothing that is
// queued or running is dropped. See config/reload.ts for what needs a restart instead.
import { compileConfig, type CompiledConfig } from './config/compile.js';
import { planReload } from './config/reload.js';
import type { SluiceConfig } from './config/schema.js';
import { PerClientCounter } from './http/client-limits.js';
import { ForwardingPolicy } from './http/forwarded.js';
import type { JobApi } from './jobs/api.js';
import type { PipelineDeps } from './pipeline/deps.js';
import type { SlotQueue } from './slots/slot-queue.js';

export type MutableDeps = { -readonly [K in keyof PipelineDeps]: PipelineDeps[K] };

export interface ReloadTarget {
  readonly deps: MutableDeps;
  readonly queue: SlotQueue;
  readonly jobs: JobApi;
  /** Each server's slot count at start (its pool size). */
  readonly startSlots: ReadonlyMap<string, number>;
}

export interface ReloadOutcome {
  readonly routes: number;
  readonly slots: number;
  readonly restartRequired: readonly string[];
}

export function forwardingPolicy(raw: SluiceConfig): ForwardingPolicy {
  return new ForwardingPolicy({
    trustedProxies: raw.listen.trusted_proxies,
    allowUnderscoreHeaders: raw.http.allow_underscore_headers,
    forwardedHeader: raw.http.forwarded_header,
  });
}

export function queuedPerClient(raw: SluiceConfig): PerClientCounter {
  return new PerClientCounter(raw.limits.per_client.max_queued, 'limits.per_client.max_queued');
}

export function reloadApp(target: ReloadTarget, next: SluiceConfig): ReloadOutcome {
  const plan = planReload(target.deps.config.raw, next, target.startSlots);
  const compiled: CompiledConfig = compileConfig(plan.config);
  const raw = compiled.raw;
  target.queue.reconfigure(
    { maxWaiting: raw.queue.max_waiting, shed: raw.queue.shed },
    new Map(raw.backend.servers.map((s) => [s.url, s.slots])),
    compiled.routes.map((r) => ({ name: r.name, maxSlots: r.maxSlots, reservedSlots: r.reservedSlots })),
  );
  target.jobs.reconfigure(compiled);
  target.deps.forwarding = forwardingPolicy(raw);
  target.deps.queuedPerClient = queuedPerClient(raw);
  // Last: from here on new requests match the new routes.
  target.deps.config = compiled;
  return { routes: compiled.routes.length, slots: target.queue.totalSlots, restartRequired: plan.restartRequired };
}
