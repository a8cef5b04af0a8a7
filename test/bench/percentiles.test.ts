// The exact percentile recorder the load generator reports with, against distributions
// whose percentiles are known in closed form.
import { describe, expect, it } from 'vitest';
import { PercentileRecorder, summarize } from '../../bench/loadgen/histogram.js';
import { seededRandom } from '../../bench/loadgen/keys.js';

function recorderOf(values: Iterable<number>): PercentileRecorder {
  const r = new PercentileRecorder();
  for (const v of values) r.record(v);
  return r;
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('PercentileRecorder', () => {
  it('gives nearest-rank percentiles of 1..1000 exactly, whatever the insertion order', () => {
    const shuffled = range(1, 1000);
    const rand = seededRandom(7);
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
    }
    const r = recorderOf(shuffled);
    expect(r.count).toBe(1000);
    expect(r.percentile(50)).toBe(500);
    expect(r.percentile(90)).toBe(900);
    expect(r.percentile(99)).toBe(990);
    expect(r.percentile(99.9)).toBe(999);
    expect(r.percentile(100)).toBe(1000);
    expect(r.percentile(0)).toBe(1);
    expect(r.max()).toBe(1000);
    expect(r.mean()).toBe(500.5);
  });

  it('grows past its initial capacity without losing values', () => {
    const r = recorderOf(range(1, 100_000).reverse());
    expect(r.count).toBe(100_000);
    expect(r.percentile(50)).toBe(50_000);
    expect(r.percentile(99)).toBe(99_000);
    expect(r.max()).toBe(100_000);
  });

  it('keeps the tail of a bimodal distribution that a mean would hide', () => {
    // 98% answer in 1 ms, 2% take 250 ms: p99 must be a slow one, p90 a fast one.
    const values = [...Array<number>(980).fill(1), ...Array<number>(20).fill(250)];
    const r = recorderOf(values);
    expect(r.percentile(90)).toBe(1);
    expect(r.percentile(98)).toBe(1);
    expect(r.percentile(99)).toBe(250);
    expect(r.mean()).toBeCloseTo(5.98, 10);
  });

  it('matches the sorted-array definition on a skewed random sample', () => {
    const rand = seededRandom(42);
    const values = Array.from({ length: 5_000 }, () => -Math.log(1 - rand()) * 10); // exponential, mean 10
    const r = recorderOf(values);
    const sorted = [...values].sort((a, b) => a - b);
    // Ranks in integer arithmetic (permille x n / 1000), free of binary rounding.
    for (const permille of [10, 250, 500, 750, 900, 990, 999]) {
      expect(r.percentile(permille / 10)).toBe(sorted[Math.ceil((permille * sorted.length) / 1000) - 1]);
    }
    // Exponential: median = ln 2 x mean, p99 = ln 100 x mean, within sampling error.
    expect(r.percentile(50)).toBeGreaterThan(6.2);
    expect(r.percentile(50)).toBeLessThan(7.7);
    expect(r.percentile(99)).toBeGreaterThan(40);
    expect(r.percentile(99)).toBeLessThan(53);
  });

  it('reads again after more values arrive', () => {
    const r = recorderOf([5, 1, 3]);
    expect(r.percentile(50)).toBe(3);
    r.record(0.5);
    r.record(0.25);
    expect(r.percentile(50)).toBe(1);
    expect(r.max()).toBe(5);
  });

  it('summarizes to milliseconds with microsecond precision, and empty to zeros', () => {
    expect(summarize(new PercentileRecorder())).toEqual({ count: 0, p50: 0, p90: 0, p99: 0, max: 0, mean: 0 });
    const s = summarize(recorderOf([1.23456, 2.5, 10]));
    expect(s).toEqual({ count: 3, p50: 2.5, p90: 10, p99: 10, max: 10, mean: 4.578 });
  });
});
