// `sluice calibrate`: finds how many requests a backend really runs at once. Gunicorn's
// gthread workers accept connections unevenly, so "10 workers x 5 threads" may serve
// fewer than 50 requests concurrently; configuring more slots than the backend truly has
// just moves the queue back into the backend. This sends closed-loop load at rising
// concurrency and reports where throughput stops growing and latency starts to rise.
// It connects the way Sluice does (a ConnectionBalancer: connections whose requests
// waited inside the backend are recycled), so the figure is what Sluice itself can get.
import { ConnectionBalancer } from '../upstream/connection-balancer.js';

export interface CalibrationStep {
  readonly concurrency: number;
  readonly requests: number;
  readonly throughputPerSecond: number;
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly errors: number;
  /** Connections closed because their request waited inside the backend. */
  readonly recycled: number;
}

export interface CalibrationResult {
  readonly steps: CalibrationStep[];
  readonly baselineMeanMs: number;
  readonly peak: CalibrationStep;
  /** Requests the backend really ran at once at its peak (Little's law: throughput x baseline latency). */
  readonly effectiveConcurrency: number;
  /** The smallest concurrency that reaches `peakFraction` of the peak throughput. */
  readonly recommendedSlots: number;
}

/**
 * Share of peak throughput that counts as "reached capacity": one slot short of N reaches
 * (N-1)/N of the peak, so 0.92 separates the two up to about a dozen slots apart, while
 * leaving room for a few percent of measurement noise.
 */
export const DEFAULT_PEAK_FRACTION = 0.92;

export interface CalibrationOptions {
  readonly url: string;
  readonly concurrencies: readonly number[];
  readonly stepMs: number;
  /**
   * Throughput share of the peak that counts as "reached capacity". Latency alone is a poor
   * signal near N slots (one extra request in 50 moves the mean by 2%); throughput stops
   * growing sharply at the knee.
   */
  readonly peakFraction: number;
  readonly log?: (line: string) => void;
}

export async function calibrate(options: CalibrationOptions): Promise<CalibrationResult> {
  const target = new URL(options.url);
  const steps: CalibrationStep[] = [];
  for (const concurrency of options.concurrencies) {
    const step = await runStep(target, concurrency, options.stepMs);
    steps.push(step);
    options.log?.(`concurrency ${String(concurrency).padStart(4)}: ${step.throughputPerSecond.toFixed(1)} req/s, mean ${step.meanMs.toFixed(1)} ms, p50 ${step.p50Ms.toFixed(1)} ms, p90 ${step.p90Ms.toFixed(1)} ms, errors ${step.errors}, recycled ${step.recycled}`);
  }
  if (steps.length === 0) throw new Error('calibrate needs at least one concurrency step');
  // The first step also pays for connection set-up; the lower of the first two is the baseline.
  const baselineMeanMs = Math.min(...steps.slice(0, 2).map((s) => s.meanMs));
  const peak = steps.reduce((a, b) => (b.throughputPerSecond > a.throughputPerSecond ? b : a));
  const reached = steps.find((s) => s.errors === 0 && s.throughputPerSecond >= peak.throughputPerSecond * options.peakFraction) ?? peak;
  return { steps, baselineMeanMs, peak, effectiveConcurrency: (peak.throughputPerSecond * baselineMeanMs) / 1000, recommendedSlots: reached.concurrency };
}

async function runStep(target: URL, concurrency: number, stepMs: number): Promise<CalibrationStep> {
  const pool = new ConnectionBalancer({ url: target.origin, slots: concurrency, connectTimeoutMs: 5_000, idleTimeoutMs: 1_000, recycleQueued: true });
  const latencies: number[] = [];
  let errors = 0;
  const started = performance.now();
  const deadline = started + stepMs;
  const worker = async () => {
    while (performance.now() < deadline) {
      const sent = performance.now();
      try {
        const res = await pool.request({ method: 'GET', path: target.pathname + target.search, headersTimeout: 30_000, bodyTimeout: 30_000 }, 'calibrate');
        await res.body.dump();
        if (res.statusCode >= 500) errors++;
        else latencies.push(performance.now() - sent);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = performance.now() - started;
  const { recycled_total: recycled } = pool.stats();
  await pool.close();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  const meanMs = latencies.reduce((sum, v) => sum + v, 0) / Math.max(1, latencies.length);
  return { concurrency, requests: latencies.length, throughputPerSecond: (latencies.length * 1000) / elapsed, meanMs, p50Ms: at(0.5), p90Ms: at(0.9), errors, recycled };
}

/** 1, 2, 4, ... up to `max`, then every `step` around the expected slot count. */
export function concurrencyLadder(max: number, around?: number): number[] {
  const ladder = new Set<number>();
  for (let c = 1; c <= max; c *= 2) ladder.add(c);
  if (around !== undefined) {
    const step = Math.max(1, Math.round(around / 10));
    for (let c = Math.max(1, around - 3 * step); c <= Math.min(max, around + 3 * step); c += step) ladder.add(c);
  }
  ladder.add(max);
  return [...ladder].sort((a, b) => a - b);
}
