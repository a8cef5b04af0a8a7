// Admission: checks that need only the request head, before any body byte is read and
// before Expect: 100-continue is answered. Here too a request becomes a job — on a route
// with `job:`, or when the client sends `Prefer: respond-async` on a route that allows it
// (prefer_async) — and is answered 202.
import { SluiceError } from '../../errors.js';
import { endToEndHeaders, firstHeader } from '../../http/headers.js';
import { removeUntrusted } from '../../http/forwarded.js';
import { jobDefaults } from '../../config/schema.js';
import { scopedIdempotencyKey } from '../../jobs/idempotency-scope.js';
import { parsePrefer, stripAsyncPreferences, type AsyncPreference } from '../../jobs/prefer.js';
import { acceptedResponse, resultResponse, serveJobResource } from '../../jobs/resources.js';
import { FINAL_STATES } from '../../jobs/types.js';
import { ATTR_SLUICE_JOB_ROUTE } from '../../telemetry/attributes.js';
import type { RequestContext } from '../context.js';
import type { PipelineDeps } from '../deps.js';
import type { PhaseResult } from './phase.js';
import { readRequestBody } from './read-body.js';

/**
 * Methods never proxied: TRACE reflects the request (credentials included) back to the page
 * that sent it. Extension methods (M-SEARCH, PROPFIND, PURGE...) pass on routes that allow
 * any method; a route that lists methods only ever matches those.
 */
const REFUSED_METHODS: ReadonlySet<string> = new Set(['TRACE', 'CONNECT']);

export async function admit(ctx: RequestContext, deps: PipelineDeps): Promise<PhaseResult> {
  const route = ctx.route!;
  if (REFUSED_METHODS.has(ctx.method)) throw new SluiceError('method_not_allowed', ctx.method);
  const declared = ctx.req.headers['content-length'];
  if (declared !== undefined && Number(declared) > route.maxBodyBytes) {
    throw new SluiceError('body_too_large', `${declared} bytes declared, route ${route.name} allows ${route.maxBodyBytes}`);
  }
  const header = ctx.req.headers['prefer'];
  const jobRoute = deps.jobs.isJobRoute(route);
  if (!jobRoute && (header === undefined || !route.preferAsync)) return 'continue';
  const prefer = parsePrefer(header);
  if (jobRoute || prefer.respondAsync) return submitJob(ctx, deps, prefer);
  return 'continue';
}

/**
 * Stores the request as a job, then answers 202 — or, when the client (`Prefer: wait=N`) or
 * the route (`job.wait`) allows a wait and the job finishes within it, the job's result.
 */
async function submitJob(ctx: RequestContext, deps: PipelineDeps, prefer: AsyncPreference): Promise<PhaseResult> {
  const route = ctx.route!;
  const body = await readRequestBody(ctx, deps);
  ctx.body = body;
  ctx.finalizers.push(() => body.dispose());
  const { view, created } = await deps.jobs.submit({
    route,
    method: ctx.method,
    target: ctx.pathname + ctx.search,
    // Stored as the backend may see them: the attempt trusts what was kept here.
    headers: removeUntrusted(stripAsyncPreferences(endToEndHeaders(ctx.req.headers)), ctx.peer.peerTrusted, deps.forwarding.allowUnderscoreHeaders),
    clientAddress: ctx.peer.peerAddress,
    client: ctx.peer.clientAddress,
    body: await body.toBuffer(),
  }, scopedIdempotencyKey(firstHeader(ctx.req.headers['idempotency-key']), ctx.req.headers, (route.job ?? jobDefaults()).idempotency_scope), (jobId) => deps.jobs.tracer.submitted(ctx, jobId));
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

/** Sluice's own job resources under jobs.prefix: answered here, never proxied. */
export async function jobResource(ctx: RequestContext, deps: PipelineDeps): Promise<PhaseResult> {
  // Job resources have no route of their own; metrics and logs count them under the job's.
  const id = /^[^/]+/.exec(ctx.pathname.slice(deps.jobs.prefix.length))?.[0];
  const job = id === undefined ? undefined : (await deps.jobs.view(id))?.job;
  if (job) {
    ctx.jobId = job.id;
    ctx.annotations[ATTR_SLUICE_JOB_ROUTE] = job.route;
  }
  const started = performance.now();
  ctx.response = await serveJobResource(deps.jobs, {
    method: ctx.method, pathname: ctx.pathname, search: ctx.search, signal: ctx.work.clientSignal,
  });
  // A long-poll (`?wait=N`) spends its time waiting on the job, not in Sluice's own work.
  if (/(?:^\?|&)wait=/.test(ctx.search)) ctx.timings.jobWaitMs = performance.now() - started;
  return 'respond';
}
