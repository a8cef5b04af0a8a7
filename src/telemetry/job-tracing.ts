// Spans for jobs, which outlive the request that submitted them: a PRODUCER span in the
// submitting request's trace, and for each execution attempt a CONSUMER span that starts
// its own trace and links back to the submission (the messaging pattern: a retry hours
// later does not stretch the original request's trace). The submission's traceparent is
// the only thing the job store keeps, so links survive a restart.
import {
  ROOT_CONTEXT, SpanKind, SpanStatusCode, defaultTextMapGetter, defaultTextMapSetter, trace,
  type Context, type Span, type Tracer,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { HeaderMap } from '../http/headers.js';
import type { RequestContext } from '../pipeline/context.js';
import {
  ATTR_ERROR_TYPE, ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_RESPONSE_STATUS_CODE, ATTR_HTTP_ROUTE, ATTR_SLUICE_JOB_ATTEMPT,
  ATTR_SLUICE_JOB_ID, ATTR_SLUICE_JOB_OUTCOME, ATTR_SLUICE_REQUEST_ID, SPAN_JOB_ATTEMPT, SPAN_JOB_SUBMIT,
} from './attributes.js';
import { backendAttributes } from './backend-attributes.js';

export interface JobIdentity {
  readonly id: string;
  readonly route: string;
  readonly method: string;
  /** 1-based. */
  readonly attempt: number;
  /** What `submitted` returned, as stored with the job. */
  readonly submission: string | undefined;
}

export type JobAttemptOutcome = 'succeeded' | 'failed' | 'retrying';

/** The trace of one execution attempt; every method is safe to call when tracing is off. */
export interface JobAttemptTrace {
  /** Before the backend call: starts its CLIENT span and writes traceparent into `headers`. */
  beforeUpstream(serverUrl: string, pathAndQuery: string, headers: HeaderMap): void;
  afterUpstream(outcome: { status?: number; errorCode?: string }): void;
  end(outcome: JobAttemptOutcome, errorCode?: string): void;
}

export interface JobTracer {
  /**
   * Called by the jobs component in the request that creates the job (ctx.jobId set).
   * Returns a traceparent to store with the job, or undefined when not traced.
   */
  submitted(ctx: RequestContext, jobId: string): string | undefined;
  attemptStarted(job: JobIdentity): JobAttemptTrace;
}

const NO_ATTEMPT: JobAttemptTrace = { beforeUpstream() {}, afterUpstream() {}, end() {} };

export const NO_JOB_TRACING: JobTracer = {
  submitted: () => undefined,
  attemptStarted: () => NO_ATTEMPT,
};

export class OtelJobTracer implements JobTracer {
  private readonly propagator = new W3CTraceContextPropagator();

  constructor(
    private readonly tracer: Tracer,
    /** The submitting request's context (its SERVER span), from the tracing observer. */
    private readonly requestContext: (ctx: RequestContext) => Context | undefined,
  ) {}

  submitted(ctx: RequestContext, jobId: string): string | undefined {
    const parent = this.requestContext(ctx) ?? ROOT_CONTEXT;
    const span = this.tracer.startSpan(SPAN_JOB_SUBMIT, {
      kind: SpanKind.PRODUCER,
      attributes: { [ATTR_SLUICE_JOB_ID]: jobId, [ATTR_SLUICE_REQUEST_ID]: ctx.id, [ATTR_HTTP_ROUTE]: ctx.route?.name ?? '' },
    }, parent);
    span.end();
    const carrier: Record<string, string> = {};
    this.propagator.inject(trace.setSpan(parent, span), carrier, defaultTextMapSetter);
    return carrier['traceparent'];
  }

  attemptStarted(job: JobIdentity): JobAttemptTrace {
    const submission = job.submission
      ? trace.getSpanContext(this.propagator.extract(ROOT_CONTEXT, { traceparent: job.submission }, defaultTextMapGetter))
      : undefined;
    const attempt = this.tracer.startSpan(SPAN_JOB_ATTEMPT, {
      kind: SpanKind.CONSUMER,
      root: true,
      links: submission ? [{ context: submission }] : [],
      attributes: { [ATTR_SLUICE_JOB_ID]: job.id, [ATTR_SLUICE_JOB_ATTEMPT]: job.attempt, [ATTR_HTTP_ROUTE]: job.route },
    }, ROOT_CONTEXT);
    return new AttemptTrace(this.tracer, this.propagator, attempt, job);
  }
}

class AttemptTrace implements JobAttemptTrace {
  private readonly context: Context;
  private client: Span | undefined;

  constructor(private readonly tracer: Tracer, private readonly propagator: W3CTraceContextPropagator, private readonly span: Span, private readonly job: JobIdentity) {
    this.context = trace.setSpan(ROOT_CONTEXT, span);
  }

  beforeUpstream(serverUrl: string, pathAndQuery: string, headers: HeaderMap): void {
    this.client?.end();
    this.client = this.tracer.startSpan(this.job.method, {
      kind: SpanKind.CLIENT,
      attributes: { [ATTR_HTTP_REQUEST_METHOD]: this.job.method, [ATTR_SLUICE_JOB_ID]: this.job.id, ...backendAttributes(serverUrl, pathAndQuery) },
    }, this.context);
    delete headers['traceparent'];
    delete headers['tracestate'];
    this.propagator.inject(trace.setSpan(this.context, this.client), headers, defaultTextMapSetter);
  }

  afterUpstream(outcome: { status?: number; errorCode?: string }): void {
    const client = this.client;
    if (!client) return;
    this.client = undefined;
    if (outcome.status !== undefined) client.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, outcome.status);
    const errorType = outcome.errorCode ?? (outcome.status !== undefined && outcome.status >= 500 ? String(outcome.status) : undefined);
    if (errorType) {
      client.setAttribute(ATTR_ERROR_TYPE, errorType);
      client.setStatus({ code: SpanStatusCode.ERROR, message: errorType });
    }
    client.end();
  }

  end(outcome: JobAttemptOutcome, errorCode?: string): void {
    this.client?.end();
    this.span.setAttribute(ATTR_SLUICE_JOB_OUTCOME, outcome);
    if (outcome !== 'succeeded') {
      this.span.setAttribute(ATTR_ERROR_TYPE, errorCode ?? outcome);
      this.span.setStatus({ code: SpanStatusCode.ERROR, message: errorCode ?? outcome });
    }
    this.span.end();
  }
}
