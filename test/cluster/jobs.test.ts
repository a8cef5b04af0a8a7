// Jobs on BullMQ against a real Redis: one job API across instances. A job submitted on A
// is polled to completion and read on B; killing A right after submission loses nothing;
// a route's max_slots holds across the cluster; a cancel on one instance reaches the job.
import { afterEach, describe, expect, inject, it } from 'vitest';
import { backend, json, until, type RunningSluice } from '../helpers/harness.js';
import { clusterPrefix, startInstanceProcess, startInstances } from '../helpers/cluster.js';
import { callsWithKey, status, submit, waitFinal } from '../jobs/job-client.js';

const redisUrl = inject('redisUrl');
const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => {});
});

const REPORTS = `routes:\n  - name: reports\n    match: { path: /api/reports, methods: [POST] }\n    job: { max_slots: 2, result_ttl: 1m }\n`;

async function cluster(count: number, backendUrl: string, extra = REPORTS): Promise<RunningSluice[]> {
  const instances = await startInstances(count, { redisUrl, prefix: clusterPrefix(), backendUrl, slots: 10, extra });
  for (const i of instances) cleanup.push(() => i.close());
  await until(() => instances.every((i) => i.app.cluster?.link.health === 'up' && i.app.cluster.link.subscriber.status === 'ready'), 10_000, 'cluster up');
  return instances;
}

describe('jobs on BullMQ', () => {
  it('a job submitted on A is polled to completion on B, and its result is read on B', async () => {
    const be = await backend({ slots: 10, reportLatencyMs: 300 });
    cleanup.push(() => be.close());
    const [a, b] = await cluster(2, be.url) as [RunningSluice, RunningSluice];
    const accepted = await submit(a.url, '/api/reports', { body: '{"year":2026}', headers: { 'content-type': 'application/json' } });
    expect(accepted.status).toBe(202);
    expect(accepted.location).toMatch(/^\/_sluice\/jobs\/[A-Za-z0-9_-]{32}$/);
    expect(['queued', 'running']).toContain(accepted.json.state);
    const done = await waitFinal(b.url, accepted.location!);
    expect(done.status).toBe(303);
    expect(done.json).toMatchObject({ state: 'succeeded', attempts: 1 });
    // The backend's own answer (the test backend creates reports: 201), read on the other instance.
    const result = await status(b.url, `${accepted.location!}/result`);
    expect(result.status).toBe(201);
    expect(result.json).toBeTypeOf('object');
    expect(callsWithKey(be, accepted.json.id)).toBe(1);
    // A's view agrees, and /status counts it as one cluster-wide job.
    expect((await status(a.url, accepted.location!)).status).toBe(303);
    await until(async () => (await json(`${b.adminUrl}/status`)).jobs.by_state.succeeded === 1, 5_000, 'stats snapshot');
    expect((await json(`${b.adminUrl}/status`)).jobs.store).toBe('bullmq');
  });

  it('the route\'s max_slots is a cluster-wide limit: 10 jobs over three instances never run more than 2 at once', async () => {
    const be = await backend({ slots: 20, reportLatencyMs: 250 });
    cleanup.push(() => be.close());
    const instances = await cluster(3, be.url);
    const accepted = await Promise.all(Array.from({ length: 10 }, (_, n) => submit(instances[n % 3]!.url, '/api/reports', { body: `{"n":${n}}` })));
    expect(accepted.every((s) => s.status === 202)).toBe(true);
    const finals = await Promise.all(accepted.map((s, n) => waitFinal(instances[(n + 1) % 3]!.url, s.location!)));
    expect(finals.every((f) => f.json.state === 'succeeded')).toBe(true);
    expect(be.stats().total).toBe(10);
    expect(be.stats().inflight_max).toBe(2);
  });

  it('a queued job cancelled on another instance never reaches the backend; a running one is aborted', async () => {
    const be = await backend({ slots: 20, reportLatencyMs: 3_000 });
    cleanup.push(() => be.close());
    const extra = `routes:\n  - name: reports\n    match: { path: /api/reports, methods: [POST] }\n    job: { max_slots: 1, result_ttl: 1m }\n`;
    const [a, b] = await cluster(2, be.url, extra) as [RunningSluice, RunningSluice];
    const first = await submit(a.url, '/api/reports', { body: '1' });
    const second = await submit(a.url, '/api/reports', { body: '2' });
    await until(async () => (await status(b.url, first.location!)).json.state === 'running', 10_000, 'first job running');
    const queued = await status(b.url, second.location!);
    expect(queued.json).toMatchObject({ state: 'queued', position: 1 });
    expect((await json(`${b.url}${second.location!}`, { method: 'DELETE' })).state).toBe('canceled');
    expect((await json(`${b.url}${first.location!}`, { method: 'DELETE' })).state).toBe('canceled');
    expect((await status(a.url, first.location!)).json.state).toBe('canceled');
    // The running call is aborted (the backend sees its client leave); the queued one never starts.
    await until(() => be.stats().abandoned >= 1, 10_000, 'the backend to count the aborted call');
    expect(callsWithKey(be, second.json.id)).toBe(0);
    expect((await status(a.url, `${second.location!}/result`)).status).toBe(409);
  });

  it('killing the instance that took a job right after its 202 loses nothing: another instance runs it', async () => {
    const be = await backend({ slots: 10, reportLatencyMs: 500 });
    cleanup.push(() => be.close());
    const options = { redisUrl, prefix: clusterPrefix(), backendUrl: be.url, slots: 10, leaseTtl: '2s', extra: REPORTS };
    const [a, b] = await Promise.all(['a', 'b'].map((name) => startInstanceProcess(name, options)));
    for (const p of [a!, b!]) cleanup.push(async () => { p.child.kill('SIGKILL'); await p.exited; });
    // Submissions are refused while an instance has no Redis, so wait for both to connect.
    for (const p of [a!, b!]) await until(async () => (await json(`${p.adminUrl}/readyz`)).redis === 'up', 10_000, 'connected to Redis');
    const accepted = await submit(a!.url, '/api/reports', { body: '{"kill":"a"}' });
    expect(accepted.status).toBe(202);
    a!.child.kill('SIGKILL');
    await a!.exited;
    const done = await waitFinal(b!.url, accepted.location!, 30_000);
    expect(done.json.state).toBe('succeeded');
    expect(callsWithKey(be, accepted.json.id)).toBeGreaterThanOrEqual(1);
  });
});
