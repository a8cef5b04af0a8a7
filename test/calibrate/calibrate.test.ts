import { afterEach, describe, expect, it } from 'vitest';
import { calibrate, concurrencyLadder, DEFAULT_PEAK_FRACTION } from '../../src/calibrate/calibrate.js';
import { backend } from '../helpers/harness.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => { for (const c of cleanups.splice(0)) await c(); });

describe('calibrate', () => {
  it('builds a ladder of powers of two with finer steps around the expected slot count', () => {
    expect(concurrencyLadder(16)).toEqual([1, 2, 4, 8, 16]);
    expect(concurrencyLadder(64, 50)).toEqual([1, 2, 4, 8, 16, 32, 35, 40, 45, 50, 55, 60, 64, 65].filter((c) => c <= 64));
  });

  it('finds the real slot count of a backend', async () => {
    const be = await backend({ slots: 4, latencyMs: 60 });
    cleanups.push(() => be.close());
    const result = await calibrate({ url: `${be.url}/api/items/1`, concurrencies: [1, 2, 3, 4, 6, 8], stepMs: 800, peakFraction: DEFAULT_PEAK_FRACTION });
    expect(result.steps.map((s) => s.concurrency)).toEqual([1, 2, 3, 4, 6, 8]);
    expect(result.recommendedSlots).toBe(4);
    expect(Math.round(result.effectiveConcurrency)).toBe(4);
    expect(be.stats().inflight_max).toBe(4);
  });
});
