/** Latency summary in milliseconds. */
export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

const INITIAL_CAPACITY = 1024;

/**
 * Exact percentiles: every value is kept (8 bytes each, in a Float64Array that doubles
 * when full) and sorted once when read. A bench run records at most a few million
 * values, so exactness costs a few MiB and no bucketing error.
 */
export class PercentileRecorder {
  private values = new Float64Array(INITIAL_CAPACITY);
  private length = 0;
  private sum = 0;
  private sorted = true;

  get count(): number {
    return this.length;
  }

  record(value: number): void {
    if (this.length === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    if (this.length > 0 && value < this.values[this.length - 1]!) this.sorted = false;
    this.values[this.length++] = value;
    this.sum += value;
  }

  /** Nearest rank: the smallest recorded value with at least p% of values at or below it. */
  percentile(p: number): number {
    if (this.length === 0) return 0;
    const view = this.sortedView();
    // The epsilon keeps binary rounding (99.9 / 100 * 1000 = 999.0000000000001) from
    // moving the rank up by one.
    const rank = Math.ceil((Math.min(100, Math.max(0, p)) / 100) * this.length - 1e-9);
    return view[Math.max(0, rank - 1)]!;
  }

  max(): number {
    return this.length === 0 ? 0 : this.sortedView()[this.length - 1]!;
  }

  mean(): number {
    return this.length === 0 ? 0 : this.sum / this.length;
  }

  private sortedView(): Float64Array {
    const view = this.values.subarray(0, this.length);
    if (!this.sorted) {
      view.sort();
      this.sorted = true;
    }
    return view;
  }
}

/** A recorder of durations in milliseconds. */
export function newHistogram(): PercentileRecorder {
  return new PercentileRecorder();
}

/** Records a duration given in (fractional) milliseconds. */
export function recordMs(h: PercentileRecorder, ms: number): void {
  h.record(ms);
}

/** Microsecond precision in the report, as before. */
function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

export function summarize(h: PercentileRecorder): LatencySummary {
  if (h.count === 0) return { count: 0, p50: 0, p90: 0, p99: 0, max: 0, mean: 0 };
  return {
    count: h.count,
    p50: roundMs(h.percentile(50)),
    p90: roundMs(h.percentile(90)),
    p99: roundMs(h.percentile(99)),
    max: roundMs(h.max()),
    mean: roundMs(h.mean()),
  };
}
