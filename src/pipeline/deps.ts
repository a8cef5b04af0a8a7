// Long-lived objects the phases use, built once by app.ts from the compiled config.
import type { CompiledConfig, CompiledRoute } from '../config/compile.js';
import type { SlotQueue } from '../slots/slot-queue.js';
import type { BackendPools } from '../upstream/backend-pools.js';
import type { RequestContext } from './context.js';
import type { HeaderMap } from '../http/headers.js';
import type { ForwardingPolicy } from '../http/forwarded.js';
import type { BufferBudget } from '../http/buffer-budget.js';
import type { PerClientCounter } from '../http/client-limits.js';
import type { JobApi } from '../jobs/api.js';
import type { CacheRequest, ResponseCache } from '../cache/response-cache.js';
import type { Coalescer } from '../coalesce/coalescer.js';
import type { SharedAnswer } from '../coalesce/shared-answer.js';
import type { RemoteFlights } from '../cluster/remote-flights.js';

/**
 * Hooks for telemetry (tracing, metrics, access log). Observers never change the outcome
 * of a request; a throwing observer is a bug in the observer, not the request.
 */
export interface RequestObserver {
  onStart?(ctx: RequestContext): void;
  /** Called before each backend call with the outgoing headers (e.g. to inject traceparent). */
  beforeUpstream?(ctx: RequestContext, headers: HeaderMap): void;
  afterUpstream?(ctx: RequestContext, outcome: { status?: number; errorCode?: string; durationMs: number }): void;
  onDone?(ctx: RequestContext): void;
}

export interface PipelineDeps {
  readonly config: CompiledConfig;
  readonly queue: SlotQueue;
  readonly pools: BackendPools;
  readonly observers: readonly RequestObserver[];
  /** The Via token Sluice adds, e.g. `1.1 sluice`. */
  readonly via: string;
  /** Trusted proxies and which client headers a backend may believe. */
  readonly forwarding: ForwardingPolicy;
  /** limits.buffer_memory / buffer_disk, shared by every buffered request body; absent: unbounded. */
  readonly buffers?: BufferBudget;
  /** Requests each client has waiting for a slot (limits.per_client.max_queued); absent: no limit. */
  readonly queuedPerClient?: PerClientCounter;
  /** Long jobs: submission (admit), the job resources, and their execution. */
  readonly jobs: JobApi;
  /** The response cache (lookupCache, storeResponse); absent: nothing is cached. */
  readonly cache?: ResponseCache;
  /** Identical reads in flight (joinInFlight); absent: nothing is coalesced. */
  readonly coalescer?: Coalescer<SharedAnswer>;
  /** Scale-out: the shared cache tier consulted on a local miss (lookupCache); absent: memory only. */
  readonly sharedCache?: { fill(request: CacheRequest, rules: CompiledRoute['cache']): Promise<boolean> };
  /** Scale-out: identical reads in flight on other instances (joinInFlight); absent: this instance alone. */
  readonly remoteFlights?: RemoteFlights;
}
