// The job slot budget: a backlog of jobs never takes more than job.max_slots backend slots,
// and interactive requests keep being served from the rest while the backlog drains.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { TestBackend } from '../../src/testing/backend.js';
import { backend, backendYaml, get, json, sluice, type RunningSluice } from '../helpers/harness.js';
import { callsWithKey, FINAL, status, submit, waitFinal } from '../jobs/job-client.js';

let be: TestBackend;
let gw: RunningSluice;

beforeAll(async () => {
  be = await backend({ slots: 5, latencyMs: 50 });
  gw = await sluice(`${backendYaml(be, 5)}
jobs: { store: memory }
routes:
  - name: reports
    match: { path: /api/reports, methods: [POST] }
    priority: low
    timeout: 120s
    job: { max_slots: 2 }
  - name: api
    match: { path: /api/* }
    priority: high
    timeout: 10s
`);
});

afterAll(async () => {
  await gw?.close();
  await be?.close();
});

it('runs at most max_slots jobs at once while interactive GETs keep being served', async () => {
  be.resetStats();
  const accepted = await Promise.all(Array.from({ length: 20 }, (_, i) => submit(gw.url, `/api/reports?ms=300&n=${i}`, { body: `job ${i}` })));
  expect(accepted.every((a) => a.status === 202)).toBe(true);
  const ids = accepted.map((a) => a.json.id as string);

  const st = await json(`${gw.adminUrl}/status`);
  expect(st.jobs.by_state.queued).toBeGreaterThanOrEqual(15);
  expect(st.jobs.oldest_queued_age_ms).toBeGreaterThanOrEqual(0);
  const queuedList = await json(`${gw.adminUrl}/jobs?state=queued`);
  expect(queuedList.count).toBe(st.jobs.by_state.queued);
  // The backlog waits in the job store, not in the interactive queue.
  expect(st.queue.waiting).toBe(0);

  // One interactive client, one request at a time: the backend can then run at most 2 jobs + 1 GET.
  let served = 0;
  let servedDuringBacklog = 0;
  const statuses = new Set<number>();
  let groupPeak = 0;
  for (let i = 0; ; i++) {
    const res = await get(`${gw.url}/api/live/${i}?ms=50`);
    statuses.add(res.status);
    served++;
    const [last, groups] = await Promise.all([
      status(gw.url, accepted.at(-1)!.location!),
      json(`${gw.adminUrl}/status`).then((s) => s.slots.groups as { name: string; inflight: number }[]),
    ]);
    groupPeak = Math.max(groupPeak, groups.find((g) => g.name === 'job:reports')?.inflight ?? 0);
    if (last.status === 303 || FINAL.has(last.json.state)) break;
    servedDuringBacklog++;
    if (i > 2000) throw new Error('backlog never drained');
  }
  expect([...statuses]).toEqual([200]);
  expect(servedDuringBacklog).toBeGreaterThanOrEqual(10);
  expect(groupPeak).toBeLessThanOrEqual(2);

  for (const a of accepted) expect((await waitFinal(gw.url, a.location!)).status).toBe(303);
  const stats = be.stats();
  expect(stats.by_path['/api/reports']).toBe(20);
  for (const id of ids) expect(callsWithKey(be, id)).toBe(1);
  // Exact, from the backend's own count: never more than 2 jobs + the 1 GET at once, and
  // the jobs did run two at a time (so the cap was reached, not just never tested).
  expect(stats.inflight_max).toBeLessThanOrEqual(3);
  expect(stats.inflight_max).toBeGreaterThanOrEqual(2);
  expect(Object.keys(stats.by_path).filter((p) => p.startsWith('/api/live/')).length).toBe(served);
});

it('runs queued jobs of a route in submission order', async () => {
  be.resetStats();
  const accepted = [];
  for (let i = 0; i < 6; i++) accepted.push(await submit(gw.url, `/api/reports?ms=100&order=${i}`, { body: `${i}` }));
  for (const a of accepted) await waitFinal(gw.url, a.location!);
  const order = be.stats().idempotency_keys;
  const ids = accepted.map((a) => a.json.id as string);
  // Two lanes run side by side, so neighbours may swap; nothing starts more than one place early.
  ids.forEach((id, i) => expect(Math.abs(order.indexOf(id) - i)).toBeLessThanOrEqual(1));
});
