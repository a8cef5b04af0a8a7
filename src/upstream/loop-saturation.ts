// Whether Sluice's own event loop is the bottleneck right now. Service times are measured
// on that loop: while it is saturated every answer looks slow, because it waits in the
// socket until the loop gets to it, and a slow answer then says nothing about the backend.
// The connection balancer does not judge answers (nor learn its baseline from them) then,
// so a busy gateway does not churn its backend connections.
import { performance, type EventLoopUtilization } from 'node:perf_hooks';

/** Event-loop utilization above which the loop counts as saturated. */
const SATURATED_AT = 0.9;
/** How often utilization is sampled; a sample covers the time since the previous one. */
const SAMPLE_EVERY_MS = 100;

export class LoopSaturation {
  private last: EventLoopUtilization = performance.eventLoopUtilization();
  private sampledAt = performance.now();
  private saturated = false;

  /** Cheap enough to call per answer: re-samples at most every 100 ms. */
  get now(): boolean {
    const at = performance.now();
    if (at - this.sampledAt >= SAMPLE_EVERY_MS) {
      const current = performance.eventLoopUtilization();
      this.saturated = performance.eventLoopUtilization(current, this.last).utilization >= SATURATED_AT;
      this.last = current;
      this.sampledAt = at;
    }
    return this.saturated;
  }
}
