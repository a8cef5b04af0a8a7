// One backend call of a job, and what its outcome means for the job. The call holds its
// slot lease only until the backend's answer is buffered; deciding, storing and waking
// pollers happen after the slot is back in the pool.
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { CompiledRoute } from '../config/compile.js';
import type { RouteJobConfig, SluiceConfig } from '../config/schema.js';
import { SluiceError, toSluiceError } from '../errors.js';
import { BufferedBody } from '../http/body-buffer.js';
import { endToEndHeaders, firstHeader, upstreamRequestHeaders, type HeaderMap } from '../http/headers.js';
import type { SlotLease } from '../slots/slot-queue.js';
import type { JobAttemptTrace } from '../telemetry/job-tracing.js';
import { callUpstream, type UpstreamEnv } from '../upstream/call-upstream.js';
import { upstreamError } from '../upstream/forward.js';
import type { AttemptEnd, StoredRequest, StoredResult } from './types.js';

/** Backend answers that mean "not now" rather than "here is your result". */
const RETRY_STATUSES: ReadonlySet<number> = new Set([502, 503, 504]);
const MAX_BACKOFF_MS = 10 * 60_000;

export type AttemptOutcome =
  | { readonly kind: 'response'; readonly result: StoredResult; readonly durationMs: number }
  | { readonly kind: 'error'; readonly error: SluiceError; readonly durationMs: number };

export interface AttemptEnv {
  /** The backend calls, as every call is made (upstream/call-upstream.ts); reports each outcome. */
  readonly upstream: UpstreamEnv;
  readonly via: string;
  readonly limits: SluiceConfig['limits'];
}

export interface AttemptPlan {
  readonly jobId: string;
  readonly route: CompiledRoute;
  readonly job: Readonly<RouteJobConfig>;
  readonly request: StoredRequest;
  readonly lease: SlotLease;
  /** Aborted on cancel or shutdown; its reason says which. */
  readonly signal: AbortSignal;
  readonly trace: JobAttemptTrace;
}

/** Calls the backend once; never throws. Releases the lease as soon as the answer is buffered. */
export async function runAttempt(env: AttemptEnv, plan: AttemptPlan): Promise<AttemptOutcome> {
  const { request, lease, job } = plan;
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(new SluiceError('total_timeout', `job.timeout is ${job.timeout}ms`)), job.timeout);
  const signal = AbortSignal.any([plan.signal, timeout.signal]);
  const headers = backendHeaders(plan, env.via);
  plan.trace.beforeUpstream(lease.server.url, env.upstream.pools.basePath(lease.server.url) + request.target, headers);
  const started = performance.now();
  try {
    // Streamed, and collected here: the result goes into the store as bytes anyway, and a
    // result over max_result must end as a job error, with the backend connection closed.
    const response = await callUpstream(env.upstream, lease, {
      serviceKey: `job:${plan.route.name}`,
      method: request.method,
      target: request.target,
      headers,
      body: BufferedBody.fromBuffer(request.body),
      signal,
      headersTimeoutMs: job.timeout,
      bodyTimeoutMs: plan.route.timeouts.bodyMs,
      stream: true,
      buffer: { memoryLimit: env.limits.memory_buffer, maxBytes: job.max_result, tempDir: env.limits.temp_dir },
    });
    const body = await readResult(response.body, job.max_result, signal);
    lease.release();
    plan.trace.afterUpstream({ status: response.status });
    const resultHeaders = endToEndHeaders(response.headers);
    delete resultHeaders['content-length'];
    return { kind: 'response', result: { status: response.status, headers: resultHeaders, body }, durationMs: performance.now() - started };
  } catch (err) {
    const error = toSluiceError(signal.aborted && signal.reason instanceof SluiceError ? signal.reason : err);
    plan.trace.afterUpstream({ errorCode: error.code });
    return { kind: 'error', error, durationMs: performance.now() - started };
  } finally {
    clearTimeout(timer);
    lease.release();
  }
}

async function readResult(body: Readable | BufferedBody, maxBytes: number, signal: AbortSignal): Promise<Buffer> {
  if (body instanceof BufferedBody) return body.toBuffer();
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    // Leaving the loop early destroys the stream without an error event.
    for await (const chunk of body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxBytes) throw new SluiceError('job_result_too_large', `more than ${maxBytes} bytes`);
      chunks.push(chunk);
    }
  } catch (err) {
    throw upstreamError(err, signal);
  }
  return Buffer.concat(chunks, size);
}

/**
 * The client's headers as sent, plus forwarding headers. Without a client Idempotency-Key
 * the job id is sent as one, so a backend that deduplicates can recognise a re-run.
 */
function backendHeaders(plan: AttemptPlan, via: string): HeaderMap {
  const stored = plan.request.headers;
  const headers = upstreamRequestHeaders(stored as IncomingHttpHeaders, {
    clientAddress: plan.request.clientAddress,
    protocol: 'http',
    host: firstHeader(stored['host']),
    via,
    // Untrusted forwarding headers and `_` names were removed when the job was submitted.
    peerTrusted: true,
    allowUnderscoreHeaders: true,
  });
  headers['idempotency-key'] ??= plan.jobId;
  return headers;
}

/** What an attempt's outcome does to the job: a result, a retry after backoff, or a failure. */
export function decideEnd(outcome: AttemptOutcome, attempts: number, job: Readonly<RouteJobConfig>, now: number): AttemptEnd {
  const canRetry = attempts < job.attempts;
  const finish = (state: 'succeeded' | 'failed', error: { code: string; message: string } | null, result: StoredResult | null): AttemptEnd =>
    ({ state, at: now, expiresAt: now + job.result_ttl, error, result });
  const retry = (code: string, message: string): AttemptEnd => {
    const delay = backoffMs(job, attempts);
    return { state: 'queued', notBefore: now + delay, error: { code, message: `${message} (attempt ${attempts} of ${job.attempts}; next in ${delay}ms)` } };
  };
  if (outcome.kind === 'response') {
    const { status } = outcome.result;
    if (!RETRY_STATUSES.has(status)) return finish('succeeded', null, outcome.result);
    if (canRetry) return retry('upstream_unavailable', `backend answered ${status}`);
    // The last answer is kept: the client can still read what the backend said.
    return finish('failed', { code: 'upstream_unavailable', message: `backend answered ${status} on all ${job.attempts} attempts` }, outcome.result);
  }
  const { error } = outcome;
  if (error.retryable && canRetry) return retry(error.code, error.message);
  if (error.code === 'job_result_too_large' || error.code === 'upstream_response_too_large') {
    return finish('failed', { code: 'job_result_too_large', message: `the backend's answer exceeds job.max_result (${job.max_result} bytes)` }, null);
  }
  const suffix = attempts > 1 ? ` (after ${attempts} attempts)` : '';
  return finish('failed', { code: error.code, message: error.message + suffix }, null);
}

/** Exponential: backoff, 2 x backoff, 4 x backoff ... capped at ten minutes. */
export function backoffMs(job: Readonly<RouteJobConfig>, attempts: number): number {
  return Math.min(job.backoff * 2 ** Math.max(0, attempts - 1), MAX_BACKOFF_MS);
}
