// A request admit decided to turn into a job, stored durably with its whole body (read by
// readBody) before anything is answered; then 202 + the job's status URL.
import { endToEndHeaders, firstHeader } from '../../http/headers.js';
import { removeUntrusted } from '../../http/forwarded.js';
import { scopedIdempotencyKey } from '../../jobs/idempotency-scope.js';
import { stripAsyncPreferences } from '../../jobs/prefer.js';
import { acceptedResponse, resultResponse } from '../../jobs/resources.js';
import { FINAL_STATES } from '../../jobs/types.js';
import type { RequestContext } from '../context.js';
import type { PipelineDeps } from '../deps.js';
import type { PhaseResult } from './phase.js';

/**
 * Stores the request as a job, then answers 202 — or, when the client (`Prefer: wait=N`) or
 * the route (`job.wait`) allows a wait and the job finishes within it, the job's result.
 */
export async function submitJob(ctx: RequestContext, deps: PipelineDeps): Promise<PhaseResult> {
  const prefer = ctx.jobPreference;
  if (!prefer) return 'continue';
  const route = ctx.route!;
  const body = ctx.body!;
  const { view, created } = await deps.jobs.submit({
    route,
    method: ctx.method,
    target: ctx.pathname + ctx.search,
    // Stored as the backend may see them: the attempt trusts what was kept here.
    headers: removeUntrusted(stripAsyncPreferences(endToEndHeaders(ctx.req.headers)), ctx.peer.peerTrusted, deps.forwarding.allowUnderscoreHeaders),
    clientAddress: ctx.peer.peerAddress,
    client: ctx.peer.clientAddress,
    body: await body.toBuffer(),
  }, scopedIdempotencyKey(firstHeader(ctx.req.headers['idempotency-key']), ctx.req.headers, route.jobSettings.idempotency_scope), (jobId) => deps.jobs.tracer.submitted(ctx, jobId));
  ctx.jobId = view.job.id;
  ctx.annotations['sluice.job.submission'] = created ? 'created' : 'existing';

  const waitMs = Math.min(
    prefer.waitSeconds !== undefined ? prefer.waitSeconds * 1000 : deps.jobs.routeWaitMs(route),
    Math.max(0, ctx.deadlineAt - performance.now()),
  );
  const waitStarted = performance.now();
  const job = await deps.jobs.waitFor(view.job.id, (j) => FINAL_STATES.has(j.state), waitMs, ctx.work.clientSignal);
  ctx.timings.jobWaitMs = performance.now() - waitStarted;
  const waited = prefer.waitSeconds !== undefined ? `wait=${prefer.waitSeconds}` : undefined;
  if (job && FINAL_STATES.has(job.state)) {
    ctx.response = await resultResponse(deps.jobs, job.id);
    // The answer is the job's result resource; saying where it lives lets the client read it again.
    ctx.response.headers['content-location'] = `${deps.jobs.prefix}${job.id}/result`;
    if (waited) ctx.response.headers['preference-applied'] = waited;
    return 'respond';
  }
  const latest = (await deps.jobs.view(view.job.id)) ?? view;
  const applied = prefer.respondAsync ? [`respond-async`, ...(waited ? [waited] : [])].join(', ') : undefined;
  ctx.response = acceptedResponse(deps.jobs, latest, applied);
  return 'respond';
}

