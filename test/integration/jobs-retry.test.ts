// Job attempts: which failures are retried (connection errors, backend 502/503/504, job
// timeouts) and which answers are results (every other status), result size limits, and a
// backend that comes back while a job is in backoff.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBackend, type TestBackend } from '../../src/testing/backend.js';
import { backend, backendYaml, get, sluice, type RunningSluice } from '../helpers/harness.js';
import { callsWithKey, submit, waitFinal } from '../jobs/job-client.js';

let be: TestBackend;
let gw: RunningSluice;

beforeAll(async () => {
  be = await backend({ slots: 10, latencyMs: 10 });
  gw = await sluice(`${backendYaml(be, 10)}
jobs: { store: memory }
routes:
  - name: retried
    match: { path: /api/echo, methods: [POST] }
    job: { attempts: 3, backoff: 100ms }
  - name: small-results
    match: { path: /api/echo, methods: [PUT] }
    job: { max_result: 1KiB }
  - name: short-timeout
    match: { path: /api/echo, methods: [PATCH] }
    job: { timeout: 300ms, attempts: 2, backoff: 50ms }
`);
});

afterAll(async () => {
  await gw?.close();
  await be?.close();
});

describe('attempts', () => {
  it('retries backend 503s up to job.attempts, then fails keeping the last answer', async () => {
    const job = await submit(gw.url, '/api/echo?status=503', { body: 'x' });
    const done = await waitFinal(gw.url, job.location!);
    expect(done.status).toBe(200);
    expect(done.json).toMatchObject({ state: 'failed', attempts: 3, error: { code: 'upstream_unavailable' } });
    expect(done.json.error.message).toContain('503 on all 3 attempts');
    expect(callsWithKey(be, job.json.id)).toBe(3);
    const result = await get(`${gw.url}${job.location}/result`);
    expect(result.status).toBe(503);
    expect(JSON.parse(result.text).method).toBe('POST');
  });

  it('treats the backend 4xx and 500 answers as results, called once', async () => {
    for (const code of [404, 500]) {
      const job = await submit(gw.url, `/api/echo?status=${code}`, { body: 'x' });
      const done = await waitFinal(gw.url, job.location!);
      expect(done.status).toBe(303);
      expect(done.json).toMatchObject({ state: 'succeeded', attempts: 1 });
      expect((await get(`${gw.url}${job.location}/result`)).status).toBe(code);
      expect(callsWithKey(be, job.json.id)).toBe(1);
    }
  });

  it('retries an attempt that exceeds job.timeout, then fails with total_timeout', async () => {
    const job = await submit(gw.url, '/api/echo?ms=1000', { method: 'PATCH' });
    const done = await waitFinal(gw.url, job.location!);
    expect(done.json).toMatchObject({ state: 'failed', attempts: 2, error: { code: 'total_timeout' } });
    expect(callsWithKey(be, job.json.id)).toBe(2);
    const result = await get(`${gw.url}${job.location}/result`);
    expect(result.status).toBe(504);
    expect(result.headers['x-sluice-error']).toBe('total_timeout');
  });
});

describe('results', () => {
  it('fails a job whose result exceeds job.max_result, without retrying and without harm', async () => {
    const job = await submit(gw.url, '/api/echo?bytes=5000', { method: 'PUT' });
    const done = await waitFinal(gw.url, job.location!);
    expect(done.json).toMatchObject({ state: 'failed', attempts: 1, error: { code: 'job_result_too_large' } });
    const result = await get(`${gw.url}${job.location}/result`);
    expect(result.status).toBe(502);
    expect(result.headers['x-sluice-error']).toBe('job_result_too_large');
    const fits = await submit(gw.url, '/api/echo?bytes=1000', { method: 'PUT' });
    expect((await waitFinal(gw.url, fits.location!)).status).toBe(303);
    expect((await get(`${gw.url}${fits.location}/result`)).body.length).toBe(1000);
  });
});

describe('a backend that is down', () => {
  it('keeps retrying with backoff and succeeds once the backend is back', async () => {
    const probe = await startTestBackend({ port: 0, slots: 2, latencyMs: 0, reportLatencyMs: 0 });
    const port = probe.port;
    await probe.close();
    const down = await sluice(`backend:\n  servers:\n    - url: http://127.0.0.1:${port}\n      slots: 2
jobs: { store: memory }
routes:
  - name: jobs
    match: { path: /api/echo }
    job: { attempts: 8, backoff: 200ms }
`);
    let revived: TestBackend | undefined;
    try {
      const job = await submit(down.url, '/api/echo', { body: 'x' });
      const first = await waitQueuedWithError(down.url, job.location!);
      expect(first.error.code).toBe('upstream_connect_failed');
      revived = await startTestBackend({ port, slots: 2, latencyMs: 0, reportLatencyMs: 0 });
      const done = await waitFinal(down.url, job.location!);
      expect(done.status).toBe(303);
      expect(done.json.attempts).toBeGreaterThanOrEqual(2);
      expect(callsWithKey(revived, job.json.id)).toBe(1);
    } finally {
      await down.close();
      await revived?.close();
    }
  });

  it('fails with the connection error once the attempts are used up', async () => {
    const probe = await startTestBackend({ port: 0, slots: 1, latencyMs: 0, reportLatencyMs: 0 });
    const port = probe.port;
    await probe.close();
    const down = await sluice(`backend:\n  servers:\n    - url: http://127.0.0.1:${port}\n      slots: 1
jobs: { store: memory }
routes:
  - name: jobs
    match: { path: /api/echo }
    job: { attempts: 2, backoff: 50ms }
`);
    try {
      const job = await submit(down.url, '/api/echo', { body: 'x' });
      const done = await waitFinal(down.url, job.location!);
      expect(done.json).toMatchObject({ state: 'failed', attempts: 2, error: { code: 'upstream_connect_failed' } });
      expect(done.json.error.message).toContain('after 2 attempts');
      expect((await get(`${down.url}${job.location}/result`)).status).toBe(502);
    } finally {
      await down.close();
    }
  });
});

async function waitQueuedWithError(base: string, location: string) {
  for (let i = 0; i < 500; i++) {
    const res = await get(base + location);
    const body = JSON.parse(res.text);
    if (body.state === 'queued' && body.error) return body;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('job never went back to queued after a failed attempt');
}
