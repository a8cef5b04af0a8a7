// The orchestrator: runs one request through the phases in their fixed order. Each phase
// either continues or has produced the answer; any phase may throw a SluiceError, which
// `onError` may still turn into an answer (a stale copy) and otherwise becomes the answer.
// `respond` and `log` always run, and finalizers always run once.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SluiceError, toSluiceError } from '../errors.js';
import { normalizeTarget } from '../routing/normalize-path.js';
import { headProblem } from '../http/connection-guard.js';
import type { ConnectionClosed } from '../http/connection-closed.js';
import { writeError, writeResponse } from '../http/respond.js';
import type { PhaseName, RequestContext } from './context.js';
import type { PipelineDeps } from './deps.js';
import { observe } from './observe.js';
import { receive } from './receive.js';
import { acquireSlot } from './phases/acquire-slot.js';
import { admit, jobResource } from './phases/admit.js';
import { forwardUpstream } from './phases/forward-upstream.js';
import { joinInFlight } from './phases/join-in-flight.js';
import { lookupCache } from './phases/lookup-cache.js';
import { matchRoute } from './phases/match-route.js';
import type { Phase } from './phases/phase.js';
import { readBody } from './phases/read-body.js';
import { onError } from './phases/on-error.js';
import { prepareUpstream } from './phases/prepare-upstream.js';
import { storeResponse } from './phases/store-response.js';
import { submitJob } from './phases/submit-job.js';

const PHASES: ReadonlyArray<readonly [PhaseName, Phase]> = [
  ['matchRoute', matchRoute],
  ['admit', admit],
  ['readBody', readBody],
  ['submitJob', submitJob],
  ['lookupCache', lookupCache],
  ['joinInFlight', joinInFlight],
  ['acquireSlot', acquireSlot],
  ['prepareUpstream', prepareUpstream],
  ['forwardUpstream', forwardUpstream],
  ['storeResponse', storeResponse],
];

/** Requests under jobs.prefix are Sluice's own job resources: no route, no backend. */
const JOB_RESOURCE_PHASES: ReadonlyArray<readonly [PhaseName, Phase]> = [['jobResource', jobResource]];

export async function handleRequest(req: IncomingMessage, res: ServerResponse, deps: PipelineDeps, expectsContinue = false, connectionClosed?: ConnectionClosed): Promise<void> {
  const target = normalizeTarget(req.url ?? '/', deps.config.raw.http.ambiguous_paths);
  const ctx = receive(req, res, expectsContinue, deps, 'error' in target ? undefined : target, connectionClosed);
  observe(deps.observers, (o) => o.onStart?.(ctx));
  try {
    if ('error' in target) throw new SluiceError('bad_path', target.error);
    const refused = headProblem(req, deps.config.raw.limits.max_header_count);
    if (refused) throw refused;
    const phases = ctx.pathname.startsWith(deps.jobs.prefix) ? JOB_RESOURCE_PHASES : PHASES;
    for (const [name, phase] of phases) {
      const timing = { name, startMs: performance.now(), endMs: 0 };
      ctx.phases.push(timing);
      // A phase that finished synchronously is not awaited: a cache hit takes no extra turns of the loop.
      const pending = phase(ctx, deps);
      const result = typeof pending === 'string' ? pending : await pending;
      timing.endMs = performance.now();
      if (result === 'respond') break;
    }
  } catch (err) {
    ctx.phases.at(-1)!.endMs = performance.now();
    ctx.error = toSluiceError(err);
    const timing = { name: 'onError' as const, startMs: performance.now(), endMs: 0 };
    ctx.phases.push(timing);
    await onError(ctx, deps);
    timing.endMs = performance.now();
  } finally {
    ctx.work.dispose();
  }
  await respond(ctx, deps);
  for (const finalize of ctx.finalizers.reverse()) {
    try {
      const pending = finalize(ctx);
      if (pending) await pending;
    } catch {
      // A failing clean-up must not stop the others; the request is already answered.
    }
  }
  const log = { name: 'log' as const, startMs: performance.now(), endMs: 0 };
  ctx.phases.push(log);
  observe(deps.observers, (o) => o.onDone?.(ctx));
  log.endMs = performance.now();
}

async function respond(ctx: RequestContext, deps: PipelineDeps): Promise<void> {
  const timing = { name: 'respond' as const, startMs: performance.now(), endMs: 0 };
  ctx.phases.push(timing);
  try {
    if (ctx.work.clientGone) {
      ctx.error ??= new SluiceError('client_closed');
    } else if (ctx.error || !ctx.response) {
      writeError(ctx, ctx.error ?? new SluiceError('internal', 'no response produced'));
    } else {
      await writeResponse(ctx, deps.via);
    }
  } catch (err) {
    // The client went away mid-body, or the body stream failed: nothing more can be sent.
    ctx.error ??= toSluiceError(err);
    if (!ctx.res.destroyed) ctx.res.destroy();
  } finally {
    timing.endMs = performance.now();
  }
}
