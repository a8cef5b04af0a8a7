// Admission: checks that need only the request head, before any body byte is read and
// before Expect: 100-continue is answered. Here too a request becomes a job — on a route
// with `job:`, or when the client sends `Prefer: respond-async` — and is answered 202.
import { SluiceError } from '../../errors.js';
import { endToEndHeaders, firstHeader } from '../../http/headers.js';
import { parsePrefer, stripAsyncPreferences, type AsyncPreference } from '../../jobs/prefer.js';
import { acceptedResponse, resultResponse, serveJobResource } from '../../jobs/resources.js';
import { FINAL_STATES } from '../../jobs/types.js';
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
  const prefer = parsePrefer(ctx.req.headers['prefer']);
  if (deps.jobs.isJobRoute(route) || prefer.respondAsync) return submitJob(ctx, deps, prefer);
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
  const { view, created } = deps.jobs.submit({
    route,
    method: ctx.method,
    target: ctx.pathname + ctx.search,
    headers: stripAsyncPreferences(endToEndHeaders(ctx.req.headers)),
    clientAddress: ctx.req.socket.remoteAddress ?? 'unknown',
    body: await body.toBuffer(),
  }, firstHeader(ctx.req.headers['idempotency-key']), (jobId) => deps.jobs.tracer.submitted(ctx, jobId));
  ctx.jobId = view.job.id;
  ctx.annotations['sluice.job.submission'] = created ? 'created' : 'existing';

  const waitMs = Math.min(
    prefer.waitSeconds !== undefined ? prefer.waitSeconds * 1000 : deps.jobs.routeWaitMs(route),
    Math.max(0, ctx.deadlineAt - performance.now()),
  );
  const job = await deps.jobs.waitFor(view.job.id, (j) => FINAL_STATES.has(j.state), waitMs, ctx.clientSignal);
  const waited = prefer.waitSeconds !== undefined ? `wait=${prefer.waitSeconds}` : undefined;
  if (job && FINAL_STATES.has(job.state)) {
    ctx.response = resultResponse(deps.jobs, job.id);
    // The answer is the job's result resource; saying where it lives lets the client read it again.
    ctx.response.headers['content-location'] = `${deps.jobs.prefix}${job.id}/result`;
    if (waited) ctx.response.headers['preference-applied'] = waited;
    return 'respond';
  }
  const latest = deps.jobs.view(view.job.id) ?? view;
  const applied = prefer.respondAsync ? [`respond-async`, ...(waited ? [waited] : [])].join(', ') : undefined;
  ctx.response = acceptedResponse(deps.jobs, latest, applied);
  return 'respond';
}

/** Sluice's own job resources under jobs.prefix: answered here, never proxied. */
export async function jobResource(ctx: RequestContext, deps: PipelineDeps): Promise<PhaseResult> {
  ctx.response = await serveJobResource(deps.jobs, {
    method: ctx.method, pathname: ctx.pathname, search: ctx.search, signal: ctx.clientSignal,
  });
  return 'respond';
}
