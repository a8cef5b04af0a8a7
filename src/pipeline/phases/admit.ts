// Admission: checks that need only the request head, before any body byte is read and
// before Expect: 100-continue is answered. Here too it is decided whether a request becomes
// a job — on a route with `job:`, or when the client sends `Prefer: respond-async` on a
// route that allows it (prefer_async); submitJob stores it once its body is read.
import { SluiceError } from '../../errors.js';
import { parsePrefer } from '../../jobs/prefer.js';
import { serveJobResource } from '../../jobs/resources.js';
import { ATTR_SLUICE_JOB_ROUTE } from '../../telemetry/attributes.js';
import type { RequestContext } from '../context.js';
import type { PipelineDeps } from '../deps.js';
import type { PhaseResult } from './phase.js';

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
  // Stored by submitJob once readBody has the whole body.
  if (jobRoute || prefer.respondAsync) ctx.jobPreference = prefer;
  return 'continue';
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
