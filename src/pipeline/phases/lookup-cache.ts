// Read path, part 1: answers from the response cache. Filled in by the read-path work; until
// then every request is a cache bypass.
import type { RequestContext } from '../context.js';
import type { PipelineDeps } from '../deps.js';
import type { PhaseResult } from './phase.js';

export function lookupCache(_ctx: RequestContext, _deps: PipelineDeps): PhaseResult {
  return 'continue';
}
