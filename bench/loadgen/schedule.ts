import { recordMs, type PercentileRecorder } from './histogram.js';

export interface ScheduleOptions {
  /** Arrivals per second. */
  rate: number;
  durationS: number;
  /** After the last send, wait at most this long for outstanding work to settle. */
  drainTimeoutMs: number;
  /** Receives how late each dispatch ran relative to its scheduled time. */
  lag?: PercentileRecorder;
}

export interface ScheduleReport {
  /** Dispatches issued (always the planned count unless the clock is broken). */
  sent: number;
  planned: number;
  /** Milliseconds from the first scheduled send to the last actual dispatch. */
  sendWindowMs: number;
  /** Dispatches still unsettled when the drain timeout expired. */
  unsettled: number;
}

/**
 * Open-loop arrival schedule: request i is due at start + i/rate, whatever happened to
 * earlier requests. When the event loop runs late, every overdue request is dispatched
 * at once with its original scheduled time, so the caller can measure latency from
 * the schedule (no coordinated omission) and the send count never depends on the
 * server. `dispatch` must not reject.
 */
export async function runSchedule(
  opts: ScheduleOptions,
  dispatch: (i: number, scheduledAt: number) => Promise<void>,
): Promise<ScheduleReport> {
  const planned = Math.max(0, Math.floor(opts.rate * opts.durationS));
  const intervalMs = 1000 / opts.rate;
  const start = performance.now() + 2;
  let next = 0;
  let outstanding = 0;
  let lastDispatch = start;
  let onIdle: (() => void) | undefined;

  const settle = (): void => {
    outstanding--;
    if (outstanding === 0 && next >= planned) onIdle?.();
  };

  await new Promise<void>((sendingDone) => {
    const tick = (): void => {
      const now = performance.now();
      const due = Math.min(planned, Math.floor((now - start) / intervalMs) + 1);
      while (next < due) {
        const scheduledAt = start + next * intervalMs;
        if (opts.lag) recordMs(opts.lag, now - scheduledAt);
        outstanding++;
        void dispatch(next, scheduledAt).then(settle, settle);
        next++;
      }
      lastDispatch = now;
      if (next >= planned) return sendingDone();
      const wait = start + next * intervalMs - performance.now();
      setTimeout(tick, Math.max(0, Math.min(wait, 50)));
    };
    if (planned === 0) return sendingDone();
    setTimeout(tick, Math.max(0, start - performance.now()));
  });

  const drained = outstanding === 0
    ? Promise.resolve(true)
    : new Promise<boolean>((resolve) => {
        onIdle = () => resolve(true);
      });
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), opts.drainTimeoutMs);
  });
  await Promise.race([drained, timedOut]);
  clearTimeout(timer);
  return { sent: next, planned, sendWindowMs: lastDispatch - start, unsettled: outstanding };
}
