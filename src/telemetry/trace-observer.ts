// One SERVER span per request, a CLIENT span per backend attempt (started live, so the
// traceparent the backend receives names it), and child spans for the phases that take
// time, built after the fact from ctx.phases with their real start and end times.
// A W3C traceparent/tracestate from the client is continued; the backend gets ours.
import {
  ROOT_CONTEXT, SpanKind, SpanStatusCode, defaultTextMapGetter, defaultTextMapSetter, trace,
  type Attributes, type Context, type Span, type SpanContext, type Tracer,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { HeaderMap } from '../http/headers.js';
import type { PhaseTiming, RequestContext } from '../pipeline/context.js';
import type { RequestObserver, UpstreamTraceContext } from '../pipeline/deps.js';
import { backendAttributes } from './backend-attributes.js';
import {
  ATTR_CLIENT_ADDRESS, ATTR_ERROR_TYPE, ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_RESPONSE_STATUS_CODE, ATTR_HTTP_ROUTE,
  ATTR_SERVER_ADDRESS, ATTR_SERVER_PORT, ATTR_SLUICE_BACKEND_SERVER, ATTR_SLUICE_BODY_BYTES,
  ATTR_SLUICE_CACHE_STATUS, ATTR_SLUICE_COALESCE_ROLE, ATTR_SLUICE_COALESCE_WAIT_MS, ATTR_SLUICE_JOB_ID,
  ATTR_SLUICE_PRIORITY, ATTR_SLUICE_QUEUE_POSITION, ATTR_SLUICE_QUEUE_WAIT_MS, ATTR_SLUICE_REQUEST_ID, ATTR_URL_FULL,
  ATTR_URL_PATH, ATTR_URL_SCHEME, SPAN_COALESCE, SPAN_QUEUE, SPAN_READ_BODY,
} from './attributes.js';

interface RequestSpans {
  readonly server: Span;
  /** The client's context (empty when it sent no traceparent). */
  readonly parent: Context;
  /** `parent` with our SERVER span in it: the parent of every child span; built when first needed. */
  context: Context | undefined;
  upstream: Span | undefined;
}

function childParent(spans: RequestSpans): Context {
  return (spans.context ??= trace.setSpan(spans.parent, spans.server));
}

/**
 * A performance.now() reading (what ctx.phases hold) as epoch milliseconds, anchored at the
 * request's wall-clock start: sub-millisecond offsets within the request, and no drift
 * between the monotonic clock and the wall clock over a long uptime.
 */
export function epochMs(ctx: RequestContext, perfNowMs: number): number {
  return ctx.startedAtEpochMs + (perfNowMs - ctx.startedAt);
}

/**
 * The SERVER span is created when it is first needed: before the first backend call (its
 * id goes into the traceparent), when another component asks for it, or at the end. A
 * request that never leaves Sluice (a cache hit, a 503) thus costs one span, started and
 * ended in one go, and no bookkeeping while it runs.
 */
export class TracingObserver implements RequestObserver, UpstreamTraceContext {
  /**
   * Spans of requests in progress. A Map, not a WeakMap: it is measurably cheaper per
   * request, and `finish` runs for every request (the orchestrator's onDone).
   */
  private readonly live = new Map<RequestContext, RequestSpans>();
  private readonly propagator = new W3CTraceContextPropagator();

  constructor(private readonly tracer: Tracer) {}

  /** Called by prepareUpstream: the CLIENT span of the call about to start, and its traceparent in place of the client's. */
  inject(ctx: RequestContext, headers: HeaderMap): void {
    const spans = this.spansOf(ctx);
    spans.upstream?.end(epochMs(ctx, performance.now()));
    const parent = childParent(spans);
    const serverUrl = ctx.lease?.server.url ?? ctx.backendServer;
    const attributes: Attributes = { [ATTR_HTTP_REQUEST_METHOD]: ctx.method, [ATTR_SLUICE_REQUEST_ID]: ctx.id };
    if (serverUrl) Object.assign(attributes, backendAttributes(serverUrl, ctx.pathname + ctx.search));
    const client = this.tracer.startSpan(ctx.method, { kind: SpanKind.CLIENT, startTime: epochMs(ctx, performance.now()), attributes }, parent);
    spans.upstream = client;
    // The client's own traceparent was forwarded as an end-to-end header; ours replaces it.
    delete headers['traceparent'];
    delete headers['tracestate'];
    this.propagator.inject(trace.setSpan(parent, client), headers, defaultTextMapSetter);
  }

  afterUpstream(ctx: RequestContext, outcome: { status?: number; errorCode?: string; durationMs: number }): void {
    const spans = this.live.get(ctx);
    const client = spans?.upstream;
    if (!client || !spans) return;
    spans.upstream = undefined;
    if (outcome.status !== undefined) client.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, outcome.status);
    const errorType = outcome.errorCode ?? (outcome.status !== undefined && outcome.status >= 500 ? String(outcome.status) : undefined);
    if (errorType) {
      client.setAttribute(ATTR_ERROR_TYPE, errorType);
      client.setStatus({ code: SpanStatusCode.ERROR, message: errorType });
    }
    client.end(epochMs(ctx, performance.now()));
  }

  /**
   * Ends the request's spans; called by Telemetry at the very end of a request, before the
   * access line is written, so the line can carry the trace id. Returns the SERVER span's
   * context.
   */
  finish(ctx: RequestContext): SpanContext {
    const spans = this.live.get(ctx) ?? this.startServer(ctx);
    this.live.delete(ctx);
    spans.upstream?.end(epochMs(ctx, performance.now()));
    // An unsampled request records nothing: its attributes and children are not even built.
    if (spans.server.isRecording()) {
      const status = responseStatus(ctx);
      const errorType = ctx.error?.code ?? (status !== undefined && status >= 500 ? String(status) : undefined);
      spans.server.setAttributes(outcomeAttributes(ctx, status, errorType));
      this.phaseSpans(ctx, spans);
      finishServerSpan(ctx, spans.server, status, errorType);
    } else {
      spans.server.end();
    }
    return spans.server.spanContext();
  }

  /** The request's context, to parent spans other components start while it runs. */
  contextOf(ctx: RequestContext): Context {
    return childParent(this.spansOf(ctx));
  }

  private spansOf(ctx: RequestContext): RequestSpans {
    let spans = this.live.get(ctx);
    if (!spans) {
      spans = this.startServer(ctx);
      this.live.set(ctx, spans);
    }
    return spans;
  }

  /**
   * The request's attributes are built only for a span that records: Sluice's samplers
   * decide on the trace id and the parent, never on attributes, and at sample_ratio 0.1
   * nine requests in ten would otherwise build them for nothing.
   */
  private startServer(ctx: RequestContext): RequestSpans {
    const parent = this.propagator.extract(ROOT_CONTEXT, ctx.req.headers, defaultTextMapGetter);
    const server = this.tracer.startSpan(spanName(ctx), { kind: SpanKind.SERVER, startTime: ctx.startedAtEpochMs }, parent);
    if (server.isRecording()) server.setAttributes(requestAttributes(ctx));
    return { server, parent, context: undefined, upstream: undefined };
  }

  private phaseSpans(ctx: RequestContext, spans: RequestSpans): void {
    const readBody = findPhase(ctx, 'readBody');
    const join = findPhase(ctx, 'joinInFlight');
    const queue = findPhase(ctx, 'acquireSlot');
    const hasBody = readBody !== undefined && ctx.body !== undefined && ctx.body.size > 0;
    const isFollower = join !== undefined && ctx.coalesceRole === 'follower';
    // A cache hit has none of these: its SERVER span stays the only span.
    if (!hasBody && !isFollower && !queue) return;
    const parent = childParent(spans);
    const common = { [ATTR_SLUICE_REQUEST_ID]: ctx.id };
    if (hasBody) {
      this.childSpan(ctx, SPAN_READ_BODY, measured(readBody, ctx.timings.readBodyMs), parent, { ...common, [ATTR_SLUICE_BODY_BYTES]: ctx.body!.size });
    }
    if (isFollower) {
      this.childSpan(ctx, SPAN_COALESCE, measured(join, ctx.timings.coalesceWaitMs), parent, {
        ...common, [ATTR_SLUICE_COALESCE_ROLE]: 'follower', [ATTR_SLUICE_COALESCE_WAIT_MS]: round(ctx.timings.coalesceWaitMs),
      });
    }
    if (queue) {
      const attributes: Attributes = { ...common, [ATTR_SLUICE_QUEUE_WAIT_MS]: round(ctx.timings.queueMs) };
      if (ctx.route) attributes[ATTR_SLUICE_PRIORITY] = ctx.route.priority;
      const position = ctx.annotations[ATTR_SLUICE_QUEUE_POSITION];
      if (position !== undefined) attributes[ATTR_SLUICE_QUEUE_POSITION] = position;
      // No lease means the wait ended without a slot: shed, timed out, or the client left.
      const failure = ctx.lease ? undefined : ctx.error?.code;
      this.childSpan(ctx, SPAN_QUEUE, measured(queue, ctx.timings.queueMs), parent, attributes, failure);
    }
  }

  private childSpan(ctx: RequestContext, name: string, interval: Interval, parent: Context, attributes: Attributes, errorType?: string): void {
    const span = this.tracer.startSpan(name, { kind: SpanKind.INTERNAL, startTime: epochMs(ctx, interval.startMs), attributes }, parent);
    if (errorType) {
      span.setAttribute(ATTR_ERROR_TYPE, errorType);
      span.setStatus({ code: SpanStatusCode.ERROR, message: errorType });
    }
    span.end(epochMs(ctx, interval.endMs));
  }
}

function finishServerSpan(ctx: RequestContext, server: Span, status: number | undefined, errorType: string | undefined): void {
  // A span started before the route was known is named after it now.
  if (ctx.route) server.updateName(spanName(ctx));
  // Server spans count 4xx (the client's doing, including a client that left) as not failed.
  if ((status !== undefined && status >= 500) || (ctx.error && ctx.error.source !== 'client')) {
    server.setStatus({ code: SpanStatusCode.ERROR, message: errorType ?? '' });
  }
  const respond = findPhase(ctx, 'respond');
  server.end(epochMs(ctx, respond?.endMs || performance.now()));
}

function spanName(ctx: RequestContext): string {
  return ctx.route ? `${ctx.method} ${ctx.route.name}` : ctx.method;
}

/** What the request head says; only required and most useful ones, as each costs every time. */
function requestAttributes(ctx: RequestContext): Attributes {
  const attributes: Attributes = {
    [ATTR_HTTP_REQUEST_METHOD]: ctx.method,
    [ATTR_URL_PATH]: ctx.pathname,
    [ATTR_URL_SCHEME]: 'http',
    [ATTR_SLUICE_REQUEST_ID]: ctx.id,
  };
  const address = ctx.req.socket.remoteAddress;
  if (address) attributes[ATTR_CLIENT_ADDRESS] = address;
  return attributes;
}

/** Everything the pipeline learnt about the request, in the sluice namespace. */
function outcomeAttributes(ctx: RequestContext, status: number | undefined, errorType: string | undefined): Attributes {
  const attributes: Attributes = {};
  for (const key in ctx.annotations) attributes[key] = ctx.annotations[key];
  if (status !== undefined) attributes[ATTR_HTTP_RESPONSE_STATUS_CODE] = status;
  if (errorType) attributes[ATTR_ERROR_TYPE] = errorType;
  if (ctx.route) attributes[ATTR_HTTP_ROUTE] = ctx.route.name;
  // Priority and wait only mean something for a request that queued (a cache hit did not).
  if (ctx.route && findPhase(ctx, 'acquireSlot')) {
    attributes[ATTR_SLUICE_PRIORITY] = ctx.route.priority;
    attributes[ATTR_SLUICE_QUEUE_WAIT_MS] = round(ctx.timings.queueMs);
  }
  if (ctx.cacheStatus) attributes[ATTR_SLUICE_CACHE_STATUS] = ctx.cacheStatus;
  if (ctx.coalesceRole) attributes[ATTR_SLUICE_COALESCE_ROLE] = ctx.coalesceRole;
  if (ctx.backendServer) attributes[ATTR_SLUICE_BACKEND_SERVER] = ctx.backendServer;
  if (ctx.jobId) attributes[ATTR_SLUICE_JOB_ID] = ctx.jobId;
  return attributes;
}

/** The status the client got; none when it left before the response head was written. */
export function responseStatus(ctx: RequestContext): number | undefined {
  return ctx.res.headersSent ? ctx.res.statusCode : undefined;
}

interface Interval { readonly startMs: number; readonly endMs: number }

/**
 * The part of a phase that was the wait itself: the phase measures its wait from its first
 * statement, so the wait starts with the phase and lasts as long as measured. The phase's
 * own end can lie later by whatever other microtasks ran before the orchestrator resumed.
 */
function measured(phase: PhaseTiming, waitedMs: number): Interval {
  const endMs = phase.endMs || phase.startMs;
  return { startMs: phase.startMs, endMs: waitedMs > 0 ? Math.min(endMs, phase.startMs + waitedMs) : endMs };
}

function findPhase(ctx: RequestContext, name: PhaseTiming['name']): PhaseTiming | undefined {
  for (const phase of ctx.phases) if (phase.name === name) return phase;
  return undefined;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
