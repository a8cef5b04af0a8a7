import type { RequestContext } from '../context.js';
import type { PipelineDeps } from '../deps.js';

/** `respond`: the phase has set ctx.response (or ctx.error) and later phases are skipped. */
export type PhaseResult = 'continue' | 'respond';
export type Phase = (ctx: RequestContext, deps: PipelineDeps) => PhaseResult | Promise<PhaseResult>;
