import { build, type Histogram } from 'hdr-histogram-js';

/** Latency summary in milliseconds (values are recorded in microseconds). */
export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

// Microsecond resolution, 3 significant digits; values above the top are clamped so a
// pathological sample never throws in the middle of a run.
const LOWEST_US = 1;
const HIGHEST_US = 600_000_000;

export function newHistogram(): Histogram {
  return build({
    lowestDiscernibleValue: LOWEST_US,
    highestTrackableValue: HIGHEST_US,
    numberOfSignificantValueDigits: 3,
    autoResize: false,
  });
}

/** Records a duration given in (fractional) milliseconds. */
export function recordMs(h: Histogram, ms: number): void {
  const us = Math.round(ms * 1000);
  h.recordValue(Math.min(HIGHEST_US, Math.max(LOWEST_US, us)));
}

function toMs(us: number): number {
  return Math.round(us) / 1000;
}

export function summarize(h: Histogram): LatencySummary {
  if (h.totalCount === 0) return { count: 0, p50: 0, p90: 0, p99: 0, max: 0, mean: 0 };
  return {
    count: h.totalCount,
    p50: toMs(h.getValueAtPercentile(50)),
    p90: toMs(h.getValueAtPercentile(90)),
    p99: toMs(h.getValueAtPercentile(99)),
    max: toMs(h.maxValue),
    mean: toMs(h.mean),
  };
}
