import { describe, expect, it } from 'vitest';
import { BackendHealth } from '../../src/slots/backend-health.js';

const A = 'http://a:1';

function tracker(failures = 2, probeResult?: string) {
  let t = 1_000_000;
  const health = new BackendHealth([A], {
    failures, cooldownMs: 100, now: () => t,
    probe: async () => probeResult,
  });
  return { health, advance: (ms: number) => { t += ms; } };
}

describe('BackendHealth', () => {
  it('reports unknown, then failing with the reason, then up', () => {
    const { health } = tracker();
    expect(health.snapshot()[0]).toMatchObject({ url: A, state: 'unknown', consecutive_failures: 0 });
    health.recordOutcome(A, { errorCode: 'connect_timeout' });
    expect(health.snapshot()[0]).toMatchObject({ state: 'failing', last_error: 'connect_timeout', consecutive_failures: 1 });
    expect(health.isFailing(A)).toBe(true);
    health.record(A, false);
    expect(health.snapshot()[0]).toMatchObject({ state: 'up', consecutive_failures: 0 });
  });

  it('ejects after K connect failures, probes after the cool-down, readmits on success', () => {
    const { health, advance } = tracker();
    health.record(A, true);
    expect(health.ejection(A)).toBe('healthy');
    health.record(A, true);
    expect(health.ejection(A)).toBe('ejected');
    expect(health.available(A)).toBe(false);
    advance(100);
    expect(health.available(A)).toBe(true);
    health.granted(A);
    expect(health.ejection(A)).toBe('probing');
    expect(health.available(A)).toBe(false);
    health.record(A, true);
    expect(health.ejection(A)).toBe('ejected');
    advance(100);
    health.granted(A);
    health.record(A, false);
    expect(health.ejection(A)).toBe('healthy');
  });

  it('other errors (a reset, a timeout) are not recorded; 0 failures never ejects', () => {
    const { health } = tracker(0);
    health.recordOutcome(A, { errorCode: 'upstream_reset' });
    expect(health.snapshot()[0]).toMatchObject({ state: 'unknown' });
    for (let i = 0; i < 5; i++) health.record(A, true);
    expect(health.ejection(A)).toBe('healthy');
    expect(health.isFailing(A)).toBe(true);
  });

  it('a successful TCP probe shows recovery but does not readmit an ejected server', async () => {
    const { health } = tracker(1, undefined);
    health.record(A, true);
    await health.probeFailing();
    expect(health.snapshot()[0]).toMatchObject({ state: 'up' });
    expect(health.ejection(A)).toBe('ejected');
  });
});
