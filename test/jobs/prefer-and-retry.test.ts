// RFC 7240 Prefer parsing for jobs, and the decision table of a finished attempt.
import { describe, expect, it } from 'vitest';
import { jobDefaults } from '../../src/config/schema.js';
import { SluiceError } from '../../src/errors.js';
import { backoffMs, decideEnd, type AttemptOutcome } from '../../src/jobs/attempt.js';
import { parsePrefer, stripAsyncPreferences } from '../../src/jobs/prefer.js';

describe('parsePrefer', () => {
  it('reads respond-async and wait, case-insensitively, across headers', () => {
    expect(parsePrefer('respond-async, wait=5')).toEqual({ respondAsync: true, waitSeconds: 5 });
    expect(parsePrefer(['return=minimal', 'Respond-Async'])).toEqual({ respondAsync: true, waitSeconds: undefined });
    expect(parsePrefer('wait = "10"; foo=bar')).toEqual({ respondAsync: false, waitSeconds: 10 });
    expect(parsePrefer(undefined)).toEqual({ respondAsync: false, waitSeconds: undefined });
  });

  it('takes the first wait and ignores values that are not whole seconds', () => {
    expect(parsePrefer('wait=3, wait=9').waitSeconds).toBe(3);
    expect(parsePrefer('wait=-1').waitSeconds).toBeUndefined();
    expect(parsePrefer('wait=1.5').waitSeconds).toBeUndefined();
    expect(parsePrefer('respond-asynchronously').respondAsync).toBe(false);
  });

  it('removes only the preferences Sluice honours before forwarding', () => {
    expect(stripAsyncPreferences({ prefer: 'respond-async, wait=5, return=minimal', a: 'b' })).toEqual({ prefer: 'return=minimal', a: 'b' });
    expect(stripAsyncPreferences({ prefer: 'respond-async' })).toEqual({});
    expect(stripAsyncPreferences({ x: '1' })).toEqual({ x: '1' });
  });
});

describe('decideEnd', () => {
  const job = { ...jobDefaults(), attempts: 3, backoff: 1000, result_ttl: 60_000 };
  const response = (status: number): AttemptOutcome => ({ kind: 'response', result: { status, headers: {}, body: Buffer.from('b') }, durationMs: 5 });
  const error = (code: ConstructorParameters<typeof SluiceError>[0]): AttemptOutcome => ({ kind: 'error', error: new SluiceError(code), durationMs: 5 });

  it('keeps any answer but 502/503/504 as the result', () => {
    for (const status of [200, 201, 400, 404, 409, 500]) {
      expect(decideEnd(response(status), 1, job, 0)).toMatchObject({ state: 'succeeded', expiresAt: 60_000, error: null });
    }
  });

  it('retries 502/503/504 and retryable errors with exponential backoff while attempts remain', () => {
    expect(decideEnd(response(503), 1, job, 0)).toMatchObject({ state: 'queued', notBefore: 1000, error: { code: 'upstream_unavailable' } });
    expect(decideEnd(error('upstream_connect_failed'), 2, job, 0)).toMatchObject({ state: 'queued', notBefore: 2000 });
    expect(decideEnd(response(502), 3, job, 0)).toMatchObject({ state: 'failed', error: { code: 'upstream_unavailable' } });
    expect(decideEnd(error('response_timeout'), 3, job, 0)).toMatchObject({ state: 'failed', error: { code: 'response_timeout' } });
  });

  it('does not retry answers that cannot get better', () => {
    expect(decideEnd(error('upstream_bad_response'), 1, job, 0)).toMatchObject({ state: 'failed', error: { code: 'upstream_bad_response' } });
    expect(decideEnd(error('upstream_response_too_large'), 1, job, 0)).toMatchObject({ state: 'failed', error: { code: 'job_result_too_large' }, result: null });
  });

  it('caps the backoff', () => {
    expect(backoffMs(job, 1)).toBe(1000);
    expect(backoffMs(job, 4)).toBe(8000);
    expect(backoffMs(job, 40)).toBe(600_000);
  });
});
