// Read path, part 3: stores a cacheable backend response. Filled in by the read-path work.
import type { RequestContext } from '../context.js';
import type { PipelineDeps } from '../deps.js';
import type { PhaseResult } from './phase.js';

export function storeResponse(_ctx: RequestContext, _deps: PipelineDeps): PhaseResult {
  return 'continue';
}
