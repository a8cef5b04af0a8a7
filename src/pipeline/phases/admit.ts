// Admission: checks that need only the request head, before any body byte is read and
// before Expect: 100-continue is answered.
import { SluiceError } from '../../errors.js';
import type { RequestContext } from '../context.js';
import type { PipelineDeps } from '../deps.js';
import type { PhaseResult } from './phase.js';

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

export function admit(ctx: RequestContext, _deps: PipelineDeps): PhaseResult {
  const route = ctx.route!;
  if (!KNOWN_METHODS.has(ctx.method)) throw new SluiceError('method_not_allowed', ctx.method);
  const declared = ctx.req.headers['content-length'];
  if (declared !== undefined && Number(declared) > route.maxBodyBytes) {
    throw new SluiceError('body_too_large', `${declared} bytes declared, route ${route.name} allows ${route.maxBodyBytes}`);
  }
  return 'continue';
}
