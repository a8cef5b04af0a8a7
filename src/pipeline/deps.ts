// Long-lived objects the phases use, built once by app.ts from the compiled config.
import type { CompiledConfig, CompiledRoute } from '../config/compile.js';
import type { SlotQueue } from '../slots/slot-queue.js';
import type { UpstreamEnv } from '../upstream/call-upstream.js';
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
 * Hooks for telemetry (metrics, access log, the live window, tracing's spans). Observers
 * read; they never change a request or its outcome (what the backend receives is built by
 * prepareUpstream alone). A throwing observer is a bug in the observer: the orchestrator
 * catches it and the request goes on.
 */
export interface RequestObserver {
  onStart?(ctx: Readonly<RequestContext>): void;
  afterUpstream?(ctx: Readonly<RequestContext>, outcome: UpstreamOutcome): void;
  onDone?(ctx: Readonly<RequestContext>): void;
}

export interface UpstreamOutcome { readonly status?: number; readonly errorCode?: string; readonly durationMs: number }

/** Tracing's part of the backend request: starts the CLIENT span and puts its traceparent in `headers`. */
export interface UpstreamTraceContext {
  inject(ctx: RequestContext, headers: HeaderMap): void;
}

export interface PipelineDeps {
  readonly config: CompiledConfig;
  readonly queue: SlotQueue;
  /** How every backend call is made and its outcome reported (call-upstream.ts). */
  readonly upstream: UpstreamEnv;
  readonly observers: readonly RequestObserver[];
  /** Present when tracing is on; used by prepareUpstream. */
  readonly traceContext?: UpstreamTraceContext;
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
