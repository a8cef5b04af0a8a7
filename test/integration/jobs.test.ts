// Long jobs end to end: real Sluice in-process, the real test backend, a memory job store.
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestBackend } from '../../src/testing/backend.js';
import { backend, backendYaml, get, json, sluice, until, type RunningSluice } from '../helpers/harness.js';
import { callsWithKey, status, submit, waitFinal, waitState } from '../jobs/job-client.js';

let be: TestBackend;
let gw: RunningSluice;
const PREFIX = '/_sluice/jobs/';

beforeAll(async () => {
  be = await backend({ slots: 10, latencyMs: 50, reportLatencyMs: 2000 });
  gw = await sluice(`${backendYaml(be, 10)}
jobs: { store: memory }
routes:
  - name: reports
    match: { path: /api/reports, methods: [POST] }
    priority: low
    timeout: 120s
    job: { max_slots: 2 }
  - name: cancelable
    match: { path: /api/echo, methods: [PUT], fallthrough: true }
    job: { max_slots: 1 }
  - name: short-lived
    match: { path: /api/echo, methods: [PATCH], fallthrough: true }
    job: { result_ttl: 1s }
  - name: api
    match: { path: /api/* }
    timeout: 30s
    prefer_async: allow
`);
});

afterAll(async () => {
  await gw?.close();
  await be?.close();
});

describe('job route', () => {
  it('answers 202 + Location at once, runs the job once, and returns the backend answer byte for byte', async () => {
    const direct = await get(`${be.url}/api/reports?bytes=20000&ms=0`, { method: 'POST', body: 'x' });
    be.resetStats();

    const payload = randomBytes(4096);
    const [filler, report] = await Promise.all([
      submit(gw.url, '/api/reports?bytes=20000', { body: 'x' }),
      submit(gw.url, '/api/reports', { body: payload, headers: { 'content-type': 'application/octet-stream' } }),
    ]);
    for (const accepted of [filler, report]) {
      expect(accepted.status).toBe(202);
      expect(accepted.location).toBe(PREFIX + accepted.json.id);
      expect(accepted.json.id).toMatch(/^[A-Za-z0-9_-]{32}$/);
      // Answered while the 2 s backend call has not finished.
      expect(['queued', 'running']).toContain(accepted.json.state);
      expect(Number(accepted.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(accepted.headers['preference-applied']).toBeUndefined();
    }
    expect(be.stats().by_path['/api/reports'] ?? 0).toBeLessThanOrEqual(2);

    const done = await waitFinal(gw.url, filler.location!);
    expect(done.status).toBe(303);
    expect(done.headers['location']).toBe(`${PREFIX}${filler.json.id}/result`);
    expect(done.json).toMatchObject({ id: filler.json.id, state: 'succeeded', attempts: 1, error: null });
    expect(done.json.finished_at >= done.json.started_at && done.json.started_at >= done.json.created_at).toBe(true);

    const result = await get(gw.url + done.headers['location']);
    expect(result.status).toBe(direct.status);
    expect(result.headers['content-type']).toBe(direct.headers['content-type']);
    expect(result.body.equals(direct.body)).toBe(true);

    await waitFinal(gw.url, report.location!);
    const reportResult = await get(`${gw.url}${report.location}/result`);
    expect(reportResult.status).toBe(201);
    const body = JSON.parse(reportResult.text);
    expect(body.body_sha256).toBe(createHash('sha256').update(payload).digest('hex'));
    // Without a client key, the job id is the backend's Idempotency-Key.
    expect(body.idempotency_key).toBe(report.json.id);

    expect(be.stats().by_path['/api/reports']).toBe(2);
    expect(callsWithKey(be, filler.json.id)).toBe(1);
    expect(callsWithKey(be, report.json.id)).toBe(1);
  });

  it('reports the position of queued jobs in their route', async () => {
    const first = await submit(gw.url, '/api/echo?ms=800', { method: 'PUT' });
    const second = await submit(gw.url, '/api/echo?ms=10', { method: 'PUT' });
    const third = await submit(gw.url, '/api/echo?ms=10', { method: 'PUT' });
    await waitState(gw.url, first.location!, 'running');
    const [s2, s3] = await Promise.all([status(gw.url, second.location!), status(gw.url, third.location!)]);
    expect(s2.json).toMatchObject({ state: 'queued', position: 1 });
    expect(s3.json).toMatchObject({ state: 'queued', position: 2 });
    expect(s3.headers['retry-after']).toBeDefined();
    for (const job of [first, second, third]) expect((await waitFinal(gw.url, job.location!)).status).toBe(303);
  });
});

describe('Prefer: respond-async', () => {
  it('with wait=5 on a 1 s request returns the real response directly', async () => {
    be.resetStats();
    const res = await submit(gw.url, '/api/echo?ms=1000', { headers: { prefer: 'respond-async, wait=5' }, body: 'hello' });
    expect(res.status).toBe(200);
    expect(res.headers['preference-applied']).toBe('wait=5');
    expect(res.json.method).toBe('POST');
    expect(res.json.body_bytes).toBe(5);
    // Sluice honours the preferences itself; the backend does not see them.
    expect(res.json.headers['prefer']).toBeUndefined();
    const resultPath = res.headers['content-location'] as string;
    expect(resultPath).toMatch(new RegExp(`^${PREFIX}[A-Za-z0-9_-]{32}/result$`));
    const again = await get(gw.url + resultPath);
    expect(again.body.equals(res.body)).toBe(true);
    expect(be.stats().by_path['/api/echo']).toBe(1);
  });

  it('with wait=1 on a 3 s request answers 202 after the wait and still calls the backend once', async () => {
    be.resetStats();
    const res = await submit(gw.url, '/api/echo?ms=3000', { headers: { prefer: 'respond-async, wait=1' }, body: 'slow' });
    expect(res.status).toBe(202);
    expect(res.headers['preference-applied']).toBe('respond-async, wait=1');
    expect(res.json.state).toBe('running');
    const done = await waitFinal(gw.url, res.location!);
    expect(done.status).toBe(303);
    const result = await get(`${gw.url}${res.location}/result`);
    expect(JSON.parse(result.text).body_bytes).toBe(4);
    expect(be.stats().by_path['/api/echo']).toBe(1);
    expect(callsWithKey(be, res.json.id)).toBe(1);
  });

  it('without wait answers 202 at once on a route that has no job block', async () => {
    const res = await submit(gw.url, '/api/live/7', { method: 'GET', headers: { prefer: 'respond-async' } });
    expect(res.status).toBe(202);
    expect(res.headers['preference-applied']).toBe('respond-async');
    expect((await waitFinal(gw.url, res.location!)).status).toBe(303);
    const result = await get(`${gw.url}${res.location}/result`);
    expect(result.status).toBe(200);
    expect(result.headers['cache-control']).toBe('no-store');
    expect(JSON.parse(result.text).id).toBe('7');
  });

  it('leaves requests without the preference on the interactive path', async () => {
    const res = await get(`${gw.url}/api/echo?ms=10`, { method: 'POST', body: 'x' });
    expect(res.status).toBe(200);
    expect(res.headers['location']).toBeUndefined();
    expect(res.headers['content-location']).toBeUndefined();
  });
});

describe('Idempotency-Key', () => {
  it('returns the existing job for a resubmission and runs the work once', async () => {
    be.resetStats();
    const key = `order-${randomBytes(6).toString('hex')}`;
    const first = await submit(gw.url, '/api/reports?ms=600', { headers: { 'idempotency-key': key }, body: 'same' });
    const second = await submit(gw.url, '/api/reports?ms=600', { headers: { 'idempotency-key': key }, body: 'same' });
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(second.json.id).toBe(first.json.id);
    await waitFinal(gw.url, first.location!);
    // After it finished, a resubmission is answered with the stored result.
    const third = await submit(gw.url, '/api/reports?ms=600', { headers: { 'idempotency-key': key }, body: 'same' });
    expect(third.status).toBe(201);
    expect(third.json.idempotency_key).toBe(key);
    expect(third.headers['content-location']).toBe(`${PREFIX}${first.json.id}/result`);
    expect(be.stats().by_path['/api/reports']).toBe(1);
    expect(callsWithKey(be, key)).toBe(1);
  });

  it('refuses a key reused for a different request with 422', async () => {
    const key = `k-${randomBytes(6).toString('hex')}`;
    const first = await submit(gw.url, '/api/reports?ms=10', { headers: { 'idempotency-key': key }, body: 'one' });
    expect(first.status).toBe(202);
    const other = await submit(gw.url, '/api/reports?ms=10', { headers: { 'idempotency-key': key }, body: 'two' });
    expect(other.status).toBe(422);
    expect(other.headers['x-sluice-error']).toBe('idempotency_key_reused');
    await waitFinal(gw.url, first.location!);
  });
});

describe('job resources', () => {
  it('cancels a queued job, which never reaches the backend', async () => {
    be.resetStats();
    const running = await submit(gw.url, '/api/echo?ms=1200', { method: 'PUT' });
    const queued = await submit(gw.url, '/api/echo?ms=10', { method: 'PUT' });
    await waitState(gw.url, running.location!, 'running');
    const canceled = await get(gw.url + queued.location!, { method: 'DELETE' });
    expect(canceled.status).toBe(200);
    expect(JSON.parse(canceled.text)).toMatchObject({ id: queued.json.id, state: 'canceled' });
    expect((await waitFinal(gw.url, running.location!)).status).toBe(303);
    // The lane is free again: a later job runs, the canceled one still does not.
    const later = await submit(gw.url, '/api/echo?ms=10', { method: 'PUT' });
    expect((await waitFinal(gw.url, later.location!)).status).toBe(303);
    expect(callsWithKey(be, queued.json.id)).toBe(0);
    expect(be.stats().by_path['/api/echo']).toBe(2);
    const final = await status(gw.url, queued.location!);
    expect(final.json.state).toBe('canceled');
    const result = await get(`${gw.url}${queued.location}/result`);
    expect(result.status).toBe(409);
    expect(result.headers['x-sluice-error']).toBe('job_canceled');
  });

  it('aborts a running job upstream when it is canceled', async () => {
    be.resetStats();
    const job = await submit(gw.url, '/api/echo?ms=3000', { method: 'PUT' });
    await waitState(gw.url, job.location!, 'running');
    const canceled = await get(gw.url + job.location!, { method: 'DELETE' });
    expect(JSON.parse(canceled.text).state).toBe('canceled');
    // The backend sees its client (Sluice) go away mid-request.
    await until(() => be.stats().abandoned >= 1, 10_000, 'the backend to count the aborted call');
    expect((await status(gw.url, job.location!)).json.state).toBe('canceled');
    const next = await submit(gw.url, '/api/echo?ms=10', { method: 'PUT' });
    expect((await waitFinal(gw.url, next.location!)).status).toBe(303);
  });

  it('answers 404 for unknown and malformed ids', async () => {
    const unknown = randomBytes(24).toString('base64url');
    for (const path of [PREFIX + unknown, `${PREFIX}${unknown}/result`, `${PREFIX}not-an-id`, `${PREFIX}${unknown}/other`]) {
      const res = await get(gw.url + path);
      expect(res.status, path).toBe(404);
      expect(res.headers['x-sluice-error'], path).toBe('job_not_found');
    }
    const del = await get(gw.url + PREFIX + unknown, { method: 'DELETE' });
    expect(del.status).toBe(404);
  });

  it('answers 409 for the result of an unfinished job, and 405 for other methods', async () => {
    const job = await submit(gw.url, '/api/echo?ms=800', { method: 'PUT' });
    const early = await get(`${gw.url}${job.location}/result`);
    expect(early.status).toBe(409);
    expect(early.headers['x-sluice-error']).toBe('job_not_finished');
    expect(early.headers['retry-after']).toBeDefined();
    const post = await get(gw.url + job.location!, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    await waitFinal(gw.url, job.location!);
  });

  it('long-polls with ?wait until the state changes', async () => {
    const job = await submit(gw.url, '/api/echo?ms=700', { method: 'PATCH' });
    await waitState(gw.url, job.location!, 'running');
    // Without the long-poll this would answer 200 running at once.
    const changed = await status(gw.url, job.location!, 20);
    expect(changed.status).toBe(303);
    expect(changed.json.state).toBe('succeeded');
  });

  it('deletes results after result_ttl, and on DELETE of a finished job', async () => {
    const job = await submit(gw.url, '/api/echo?ms=10', { method: 'PATCH' });
    await waitFinal(gw.url, job.location!);
    expect((await get(`${gw.url}${job.location}/result`)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1200));
    expect((await get(gw.url + job.location!)).status).toBe(404);
    expect((await get(`${gw.url}${job.location}/result`)).status).toBe(404);

    const other = await submit(gw.url, '/api/echo?ms=10', { method: 'PUT' });
    await waitFinal(gw.url, other.location!);
    expect((await get(gw.url + other.location!, { method: 'DELETE' })).status).toBe(204);
    expect((await get(`${gw.url}${other.location}/result`)).status).toBe(404);
  });
});

describe('admin', () => {
  it('reports jobs by state in /status and lists them in /jobs', async () => {
    const job = await submit(gw.url, '/api/reports?ms=10', { body: 'a' });
    await waitFinal(gw.url, job.location!);
    const st = await json(`${gw.adminUrl}/status`);
    expect(st.jobs.store).toBe('memory');
    expect(st.jobs.by_state.succeeded).toBeGreaterThanOrEqual(1);
    expect(st.jobs).toHaveProperty('oldest_queued_age_ms');
    const list = await json(`${gw.adminUrl}/jobs?state=succeeded&limit=500`);
    expect(list.jobs.some((j: { id: string }) => j.id === job.json.id)).toBe(true);
    expect(list.jobs.every((j: { state: string }) => j.state === 'succeeded')).toBe(true);
    expect((await get(`${gw.adminUrl}/jobs?state=bogus`)).status).toBe(400);
  });
});
