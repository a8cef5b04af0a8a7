// Read path, part 2: joins an identical read already in flight. Filled in by the read-path work.
import type { RequestContext } from '../context.js';
import type { PipelineDeps } from '../deps.js';
import type { PhaseResult } from './phase.js';

export function joinInFlight(_ctx: RequestContext, _deps: PipelineDeps): PhaseResult {
  return 'continue';
}
