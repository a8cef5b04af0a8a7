// The job resources on the gateway port, under jobs.prefix (asynchronous request-reply):
//   GET    {prefix}{id}          status JSON (+ Retry-After while unfinished), 303 to the result once succeeded;
//                                ?wait=N long-polls until the state changes
//   GET    {prefix}{id}/result   the backend's original status, headers and body
//   DELETE {prefix}{id}          cancels a queued or running job; deletes a finished one
// The id is the capability: anyone who has it may read and cancel the job, nobody can guess it.
import { ERROR_CATALOGUE, SluiceError, type ErrorCode } from '../errors.js';
import { BufferedBody } from '../http/body-buffer.js';
import type { HeaderMap } from '../http/headers.js';
import type { ProxyResponse } from '../http/proxy-response.js';
import type { JobApi } from './api.js';
import type { JobView } from './service.js';
import { FINAL_STATES, type JobRecord } from './types.js';

/** Longest long-poll (`?wait=N`), so intermediaries with a 60 s idle timeout never cut one off. */
const MAX_POLL_WAIT_SECONDS = 50;

export interface ResourceRequest {
  readonly method: string;
  readonly pathname: string;
  readonly search: string;
  /** Aborted when the client leaves; ends a long-poll. */
  readonly signal: AbortSignal;
}

export async function serveJobResource(jobs: JobApi, req: ResourceRequest): Promise<ProxyResponse> {
  const match = /^([^/]+)(\/result)?$/.exec(req.pathname.slice(jobs.prefix.length));
  if (!match) throw new SluiceError('job_not_found');
  const [, id, result] = match as unknown as [string, string, string | undefined];
  const read = req.method === 'GET' || req.method === 'HEAD';
  if (result !== undefined) {
    if (!read) throw new SluiceError('method_not_allowed', `${req.method} on a job result; use GET`);
    return resultResponse(jobs, id);
  }
  if (read) return statusResponse(jobs, id, pollWaitMs(req.search), req.signal);
  if (req.method === 'DELETE') return deleteResponse(jobs, id);
  throw new SluiceError('method_not_allowed', `${req.method} on a job; use GET or DELETE`);
}

/** The 202 Accepted answer to a request that became a job. */
export function acceptedResponse(jobs: JobApi, view: JobView, preferenceApplied: string | undefined): ProxyResponse {
  const headers: HeaderMap = { location: jobs.prefix + view.job.id };
  if (preferenceApplied) headers['preference-applied'] = preferenceApplied;
  return jsonResponse(202, statusJson(jobs, view), headers, view.retryAfterSeconds);
}

/** What GET {prefix}{id}/result answers: the stored result, or why there is none. */
export async function resultResponse(jobs: JobApi, id: string): Promise<ProxyResponse> {
  const view = await jobs.view(id);
  if (!view) throw new SluiceError('job_not_found');
  const result = view.job.hasResult ? await jobs.result(id) : undefined;
  if (result) return { status: result.status, headers: { ...result.headers }, body: BufferedBody.fromBuffer(result.body) };
  throw whyNoResult(view);
}

function whyNoResult(view: JobView): SluiceError {
  const { job } = view;
  if (job.state === 'canceled') return new SluiceError('job_canceled');
  if (job.state === 'failed') {
    const code = job.error && job.error.code in ERROR_CATALOGUE ? job.error.code as ErrorCode : 'internal';
    // The stored message usually starts with the catalogue's own words; say them once.
    const stored = job.error?.message ?? '';
    const known = ERROR_CATALOGUE[code].message;
    const detail = (stored.startsWith(known) ? stored.slice(known.length) : stored).replace(/^[:;,]?\s*/, '');
    return new SluiceError(code, detail === '' ? 'job failed' : detail.startsWith('(') ? `job failed ${detail}` : `job failed: ${detail}`);
  }
  return new SluiceError('job_not_finished', `job is ${job.state}`, { retryAfterSeconds: view.retryAfterSeconds });
}

async function statusResponse(jobs: JobApi, id: string, waitMs: number, signal: AbortSignal): Promise<ProxyResponse> {
  const before = await jobs.view(id);
  if (!before) throw new SluiceError('job_not_found');
  if (waitMs > 0 && !FINAL_STATES.has(before.job.state)) {
    const initial = before.job.state;
    await jobs.waitFor(id, (job: JobRecord) => job.state !== initial, waitMs, signal);
  }
  const view = await jobs.view(id);
  if (!view) throw new SluiceError('job_not_found');
  if (view.job.state === 'succeeded') {
    return jsonResponse(303, statusJson(jobs, view), { location: `${jobs.prefix}${id}/result` }, undefined);
  }
  return jsonResponse(200, statusJson(jobs, view), {}, view.retryAfterSeconds);
}

async function deleteResponse(jobs: JobApi, id: string): Promise<ProxyResponse> {
  const outcome = await jobs.cancelOrDelete(id);
  if (outcome === undefined) throw new SluiceError('job_not_found');
  if (outcome === 'deleted') return { status: 204, headers: { 'cache-control': 'no-store' }, body: BufferedBody.empty() };
  const view = await jobs.view(id);
  if (!view) throw new SluiceError('job_not_found');
  return jsonResponse(200, statusJson(jobs, view), {}, undefined);
}

/** The status document: {id, state, position (when queued), attempts, created_at, started_at, finished_at, error}. */
export function statusJson(jobs: JobApi, view: JobView): Record<string, unknown> {
  const { job } = view;
  return {
    id: job.id,
    state: job.state,
    ...(view.position !== undefined ? { position: view.position } : {}),
    attempts: job.attempts,
    created_at: iso(job.createdAt),
    started_at: iso(job.startedAt),
    finished_at: iso(job.finishedAt),
    error: job.error,
    ...(job.hasResult ? { result: `${jobs.prefix}${job.id}/result` } : {}),
  };
}

function jsonResponse(status: number, value: unknown, extra: HeaderMap, retryAfterSeconds: number | undefined): ProxyResponse {
  const headers: HeaderMap = { 'content-type': 'application/json', 'cache-control': 'no-store', ...extra };
  if (retryAfterSeconds !== undefined) headers['retry-after'] = String(retryAfterSeconds);
  return { status, headers, body: BufferedBody.fromBuffer(Buffer.from(JSON.stringify(value) + '\n')) };
}

function pollWaitMs(search: string): number {
  const raw = new URLSearchParams(search).get('wait');
  if (raw === null) return 0;
  if (!/^\d+$/.test(raw)) throw new SluiceError('bad_request', 'wait must be a whole number of seconds');
  return Math.min(Number(raw), MAX_POLL_WAIT_SECONDS) * 1000;
}

function iso(epochMs: number | null): string | null {
  return epochMs === null ? null : new Date(epochMs).toISOString();
}
