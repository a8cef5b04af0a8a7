import { SluiceError } from '../../errors.js';
import { resolveRoute } from '../../routing/match-route.js';
import type { RequestContext } from '../context.js';
import type { PipelineDeps } from '../deps.js';
import type { PhaseResult } from './phase.js';

export function matchRoute(ctx: RequestContext, deps: PipelineDeps): PhaseResult {
  const found = resolveRoute(deps.config.routes, ctx.method, ctx.matchPath);
  if (found?.allow) {
    throw new SluiceError('method_not_allowed', `${ctx.method} ${ctx.pathname}`, { headers: { allow: found.allow.join(', ') } });
  }
  const route = found?.route;
  if (!route) throw new SluiceError('not_found', `no route for ${ctx.method} ${ctx.pathname}`);
  if (route.deny) throw new SluiceError('route_denied', `route ${route.name}`);
  ctx.route = route;
  // The route's total timeout covers the body read, queueing and the backend call.
  ctx.deadlineAt = ctx.startedAt + route.totalTimeoutMs;
  ctx.work.setDeadline(ctx.deadlineAt, () => new SluiceError('total_timeout', `route ${route.name} allows ${route.totalTimeoutMs}ms`));
  return 'continue';
}
