// Waits for a backend slot in the admission queue. The wait counts against the route's
// total deadline, and ends early if the client (or, for a coalesced flight, everyone) leaves.
import type { RequestContext } from '../context.js';
import type { PipelineDeps } from '../deps.js';
import type { PhaseResult } from './phase.js';

export async function acquireSlot(ctx: RequestContext, deps: PipelineDeps): Promise<PhaseResult> {
  const route = ctx.route!;
  const remaining = Math.max(0, ctx.deadlineAt - performance.now());
  const started = performance.now();
  const giveBack = deps.queuedPerClient?.take(ctx.peer.clientAddress);
  try {
    ctx.lease = await deps.queue.acquire({
      group: deps.queue.group(route.name, { maxSlots: route.maxSlots, reservedSlots: route.reservedSlots }),
      priorityRank: route.priorityRank,
      queueTimeoutMs: Math.min(route.queueTimeoutMs, remaining),
      signal: ctx.work.signal,
      info: { requestId: ctx.id, method: ctx.method, path: ctx.pathname, followers: () => ctx.leadership?.followers ?? 0 },
    });
  } finally {
    giveBack?.();
    ctx.timings.queueMs += performance.now() - started;
  }
  const lease = ctx.lease;
  ctx.annotations['sluice.queue.position'] = lease.position;
  ctx.finalizers.push(() => lease.release());
  return 'continue';
}
