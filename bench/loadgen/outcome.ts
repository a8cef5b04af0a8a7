import { newHistogram, recordMs, summarize, type LatencySummary, type PercentileRecorder } from './histogram.js';

/**
 * What happened to one request, as the client saw it.
 * - ok: 2xx (for jobs: the result was fetched)
 * - shed: 503 carrying Retry-After (a gateway refusing work on purpose)
 * - http5xx: any other 5xx
 * - http_other: 1xx/3xx/4xx that the workload did not expect, or a failed body check
 * - timeout: the client gave up at its deadline
 * - conn_error: connect/reset/socket errors
 */
export type Outcome = 'ok' | 'shed' | 'http5xx' | 'http_other' | 'timeout' | 'conn_error';

export const OUTCOMES: readonly Outcome[] = ['ok', 'shed', 'http5xx', 'http_other', 'timeout', 'conn_error'];

export type OutcomeCounts = Record<Outcome, number>;

export function emptyCounts(): OutcomeCounts {
  return { ok: 0, shed: 0, http5xx: 0, http_other: 0, timeout: 0, conn_error: 0 };
}

export function classifyStatus(status: number, hasRetryAfter: boolean): Outcome {
  if (status >= 200 && status < 300) return 'ok';
  if (status === 503 && hasRetryAfter) return 'shed';
  if (status >= 500) return 'http5xx';
  return 'http_other';
}

/** Mutable accumulator for one workload; turned into a plain summary at the end. */
export interface Tally {
  counts: OutcomeCounts;
  /** Latency of ok outcomes, from the scheduled send time. */
  okLatency: PercentileRecorder;
  /** Latency of every outcome (timeouts record their elapsed time). */
  allLatency: PercentileRecorder;
  /** How late the generator dispatched each request relative to its schedule. */
  sendLag: PercentileRecorder;
  statuses: Map<number, number>;
  sent: number;
  /** performance.now() of the last ok completion (0 when none). */
  lastOkAt: number;
}

export function newTally(): Tally {
  return {
    counts: emptyCounts(),
    okLatency: newHistogram(),
    allLatency: newHistogram(),
    sendLag: newHistogram(),
    statuses: new Map(),
    sent: 0,
    lastOkAt: 0,
  };
}

export function recordOutcome(t: Tally, outcome: Outcome, latencyMs: number, status?: number): void {
  t.counts[outcome]++;
  recordMs(t.allLatency, latencyMs);
  if (outcome === 'ok') {
    recordMs(t.okLatency, latencyMs);
    t.lastOkAt = performance.now();
  }
  if (status !== undefined) t.statuses.set(status, (t.statuses.get(status) ?? 0) + 1);
}

/** The JSON-friendly result of one workload run. */
export interface WorkloadResult {
  name: string;
  kind: 'open' | 'upload' | 'idle' | 'closed';
  /** Offered arrival rate (req/s) for open-loop kinds; achieved rate for closed loop. */
  offeredRate: number;
  durationS: number;
  sent: number;
  counts: OutcomeCounts;
  /** ok responses per second over the sending window. */
  goodput: number;
  latency: LatencySummary;
  latencyAll: LatencySummary;
  sendLag: LatencySummary;
  statuses: Record<string, number>;
  extra?: Record<string, unknown>;
}

export function finishTally(
  t: Tally,
  meta: { name: string; kind: WorkloadResult['kind']; offeredRate: number; durationS: number; goodputWindowS?: number },
  extra?: Record<string, unknown>,
): WorkloadResult {
  // Goodput is per second of the sending window, unless the work outlasts it by design
  // (an upload started near the end still takes its full transfer time).
  const { goodputWindowS, ...rest } = meta;
  const window = goodputWindowS ?? meta.durationS;
  const result: WorkloadResult = {
    ...rest,
    sent: t.sent,
    counts: { ...t.counts },
    goodput: window > 0 ? round2(t.counts.ok / window) : 0,
    latency: summarize(t.okLatency),
    latencyAll: summarize(t.allLatency),
    sendLag: summarize(t.sendLag),
    statuses: Object.fromEntries([...t.statuses].sort((a, b) => a[0] - b[0])),
  };
  if (extra) result.extra = extra;
  return result;
}

/**
 * Seconds over which goodput is counted for an open-loop run: from the first scheduled
 * send to the last ok answer, and never less than the sending window. An overloaded
 * server that answers its backlog after the sending stopped does not get credited
 * with a rate it never delivered.
 */
export function deliveryWindowS(t: Tally, firstScheduledAt: number, durationS: number): number {
  return Math.max(durationS, t.lastOkAt > 0 ? (t.lastOkAt - firstScheduledAt) / 1000 : 0);
}

export function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
