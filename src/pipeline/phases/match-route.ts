import { SluiceError } from '../../errors.js';
import { findRoute } from '../../routing/match-route.js';
import type { RequestContext } from '../context.js';
import type { PipelineDeps } from '../deps.js';
import type { PhaseResult } from './phase.js';

export function matchRoute(ctx: RequestContext, deps: PipelineDeps): PhaseResult {
  const route = findRoute(deps.config.routes, ctx.method, ctx.pathname);
  if (!route) throw new SluiceError('not_found', `no route for ${ctx.method} ${ctx.pathname}`);
  ctx.route = route;
  ctx.deadlineAt = ctx.startedAt + route.totalTimeoutMs;
  return 'continue';
}
