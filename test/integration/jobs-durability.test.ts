// Durability of jobs on a real SQLite file: Sluice runs as a real process (`npm run build`
// first) and is killed with SIGKILL while jobs are queued, running, or being submitted; a
// new process on the same store must bring every acknowledged job to a final state, and
// run a job twice only if it was running at the kill (then as on_restart says).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TestBackend } from '../../src/testing/backend.js';
import { backend, backendYaml, sluice, startCliSluice, until, writeTempConfig, type SluiceProcess } from '../helpers/harness.js';
import { callsWithKey, status, submit, waitFinal } from '../jobs/job-client.js';

let be: TestBackend;
let dir: string;
const procs: SluiceProcess[] = [];

beforeAll(async () => {
  be = await backend({ slots: 20, latencyMs: 20 });
});

afterEach(async () => {
  for (const p of procs.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) {
      p.child.kill('SIGKILL');
      await p.exited;
    }
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

afterAll(async () => {
  await be?.close();
});

function configFor(dbPath: string): string {
  return writeTempConfig(`listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
logging: { level: silent, access_log: false }
${backendYaml(be, 20)}
jobs: { store: sqlite, path: ${JSON.stringify(dbPath)} }
routes:
  - name: rerun-jobs
    match: { path: /api/reports, methods: [POST] }
    job: { max_slots: 2, on_restart: rerun }
  - name: fail-jobs
    match: { path: /api/echo, methods: [POST] }
    job: { max_slots: 2, on_restart: fail }
`);
}

async function start(config: string) {
  const proc = await startCliSluice(['--config', config]);
  procs.push(proc);
  return proc;
}

async function kill(proc: SluiceProcess): Promise<void> {
  proc.child.kill('SIGKILL');
  await proc.exited;
}

describe('SIGKILL', () => {
  it('resumes queued jobs in order, re-runs or fails running ones per on_restart, and loses none', async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-durable-'));
    const config = configFor(join(dir, 'jobs.db'));
    be.resetStats();
    const first = await start(config);
    const reruns = [];
    const fails = [];
    for (let i = 0; i < 5; i++) {
      reruns.push(await submit(first.url, `/api/reports?ms=1500&i=${i}`, { body: `r${i}` }));
      fails.push(await submit(first.url, `/api/echo?ms=1500&i=${i}`, { body: `f${i}` }));
    }
    expect([...reruns, ...fails].every((a) => a.status === 202)).toBe(true);
    await until(async () => (await Promise.all([reruns[1]!, fails[1]!].map((a) => status(first.url, a.location!))))
      .every((s) => s.json.state === 'running'), 10_000, 'two jobs of each route to run');
    await kill(first);
    // What the backend had started before the kill: the jobs that were running.
    const startedBefore = new Set(be.stats().idempotency_keys);
    const second = await start(config);
    for (const a of [...reruns, ...fails]) await waitFinal(second.url, a.location!, 60_000);

    for (const [i, a] of reruns.entries()) {
      const final = (await status(second.url, a.location!)).json;
      expect(final.state, `rerun job ${i}`).toBe('succeeded');
      const wasRunning = startedBefore.has(a.json.id);
      expect(wasRunning, `rerun job ${i}`).toBe(i < 2);
      // Re-run with the same Idempotency-Key, so a deduplicating backend could tell.
      expect(callsWithKey(be, a.json.id), `rerun job ${i}`).toBe(wasRunning ? 2 : 1);
      expect(final.attempts).toBe(wasRunning ? 2 : 1);
    }
    for (const [i, a] of fails.entries()) {
      const final = (await status(second.url, a.location!)).json;
      const wasRunning = startedBefore.has(a.json.id);
      expect(wasRunning, `fail job ${i}`).toBe(i < 2);
      expect(final.state, `fail job ${i}`).toBe(wasRunning ? 'failed' : 'succeeded');
      if (wasRunning) expect(final.error.code).toBe('job_interrupted');
      expect(callsWithKey(be, a.json.id), `fail job ${i}`).toBe(1);
    }
    // Queued jobs resumed in submission order (two lanes: neighbours may swap).
    const order = be.stats().idempotency_keys.filter((k) => reruns.some((a) => a.json.id === k));
    const resumed = reruns.slice(2).map((a) => order.lastIndexOf(a.json.id));
    resumed.forEach((pos, i) => { if (i >= 2) expect(pos).toBeGreaterThan(resumed[i - 2]!); });
  });

  it('keeps every job it acknowledged when killed in the middle of a burst of submissions', async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-durable-'));
    const config = configFor(join(dir, 'jobs.db'));
    be.resetStats();
    const first = await start(config);
    const accepted: string[] = [];
    let stop = false;
    const submitter = async (lane: number) => {
      for (let i = 0; !stop && i < 500; i++) {
        try {
          const res = await submit(first.url, `/api/reports?ms=30&lane=${lane}&i=${i}`, { body: `${lane}-${i}` });
          if (res.status === 202) accepted.push(res.json.id);
        } catch {
          return; // the process is gone: this submission was never acknowledged
        }
      }
    };
    const lanes = Array.from({ length: 8 }, (_, lane) => submitter(lane));
    await until(() => accepted.length >= 40, 20_000, '40 acknowledged jobs');
    await kill(first);
    stop = true;
    await Promise.all(lanes);
    const startedBefore = new Set(be.stats().idempotency_keys);
    const acknowledged = [...accepted];

    const second = await start(config);
    for (const id of acknowledged) {
      const done = await waitFinal(second.url, `/_sluice/jobs/${id}`, 60_000);
      expect(done.json.state).toBe('succeeded');
      const calls = callsWithKey(be, id);
      // Once, or twice if it was running at the kill.
      expect(calls === 1 || (calls === 2 && startedBefore.has(id)), `job ${id} ran ${calls} times`).toBe(true);
    }
  });
});

describe('graceful shutdown', () => {
  it('leaves queued jobs in the store and re-runs the ones cut off by the grace period', async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-durable-'));
    const yaml = `${backendYaml(be, 20)}
jobs: { store: sqlite, path: ${JSON.stringify(join(dir, 'jobs.db'))} }
routes:
  - name: jobs
    match: { path: /api/reports, methods: [POST] }
    job: { max_slots: 1 }
`;
    be.resetStats();
    const first = await sluice(yaml);
    const running = await submit(first.url, '/api/reports?ms=2000', { body: 'a' });
    const queued = await submit(first.url, '/api/reports?ms=10', { body: 'b' });
    await until(async () => (await status(first.url, running.location!)).json.state === 'running', 5000, 'the first job to run');
    const { drained } = await first.app.shutdown(200);
    expect(drained).toBe(true); // no client request was in flight; the job was cut off separately
    expect(callsWithKey(be, queued.json.id)).toBe(0);

    const second = await sluice(yaml);
    try {
      const st = await (await fetch(`${second.adminUrl}/status`)).json() as { jobs: { store: string } };
      expect(st.jobs.store).toBe('sqlite');
      expect((await waitFinal(second.url, running.location!)).json.attempts).toBe(2);
      expect((await waitFinal(second.url, queued.location!)).status).toBe(303);
      expect(callsWithKey(be, running.json.id)).toBe(2);
      expect(callsWithKey(be, queued.json.id)).toBe(1);
    } finally {
      await second.close();
    }
  });
});
