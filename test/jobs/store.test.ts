// The job store contract, run against both stores (the SQLite one on real files), plus what
// only the SQLite store promises: WAL, an owner-only file, durability across reopen, and
// refusing a second process.
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryJobStore } from '../../src/jobs/memory-store.js';
import { SqliteJobStore } from '../../src/jobs/sqlite-store.js';
import type { JobStore } from '../../src/jobs/store.js';
import type { NewJob } from '../../src/jobs/types.js';

const dirs: string[] = [];
const stores: JobStore[] = [];

function tempPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-jobs-'));
  dirs.push(dir);
  return join(dir, 'nested', 'jobs.db');
}

afterEach(() => {
  for (const s of stores.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

let counter = 0;
function newJob(overrides: Partial<NewJob> & { route?: string } = {}): NewJob {
  counter++;
  return {
    id: `job-${counter}-${'x'.repeat(20)}`,
    route: 'reports',
    idempotencyKey: null,
    fingerprint: `fp-${counter}`,
    createdAt: 1000 + counter,
    submissionTrace: null,
    request: { method: 'POST', target: `/api/reports?n=${counter}`, headers: { 'content-type': 'text/plain', 'x-multi': ['a', 'b'] }, clientAddress: '127.0.0.1', body: Buffer.from(`body ${counter}`) },
    ...overrides,
  };
}

const makers: Record<string, () => JobStore> = {
  memory: () => new MemoryJobStore(),
  sqlite: () => new SqliteJobStore(tempPath()),
};

describe.each(Object.keys(makers))('%s store', (kind) => {
  const make = () => {
    const store = makers[kind]!();
    stores.push(store);
    return store;
  };

  it('stores a job queued, with its request, and runs it once', () => {
    const store = make();
    const job = newJob();
    const { job: rec, created } = store.insert(job, 0);
    expect(created).toBe(true);
    expect(rec).toMatchObject({ id: job.id, state: 'queued', attempts: 0, startedAt: null, hasResult: false, error: null });
    const request = store.startAttempt(job.id, 5000)!;
    expect(request.body.equals(job.request.body)).toBe(true);
    expect(request.headers).toEqual(job.request.headers);
    expect(store.startAttempt(job.id, 5001)).toBeUndefined();
    expect(store.get(job.id, 0)).toMatchObject({ state: 'running', attempts: 1, startedAt: 5000 });
  });

  it('keeps results byte for byte, with repeated headers', () => {
    const store = make();
    const job = newJob();
    store.insert(job, 0);
    store.startAttempt(job.id, 1);
    const body = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 256));
    const headers = { 'content-type': 'application/octet-stream', 'set-cookie': ['a=1', 'b=2'] };
    expect(store.endAttempt(job.id, { state: 'succeeded', at: 10, expiresAt: 100, error: null, result: { status: 201, headers, body } })).toBe(true);
    const result = store.result(job.id, 50)!;
    expect(result.status).toBe(201);
    expect(result.headers).toEqual(headers);
    expect(result.body.equals(body)).toBe(true);
    expect(store.get(job.id, 50)).toMatchObject({ state: 'succeeded', finishedAt: 10, hasResult: true });
  });

  it('hands out due jobs per route in creation order, skipping claimed ones and jobs in backoff', () => {
    const store = make();
    const a = newJob();
    const b = newJob();
    const c = newJob();
    const other = newJob({ route: 'other' });
    for (const j of [a, b, c, other]) store.insert(j, 0);
    expect(store.nextDue('reports', new Set(), 0)?.id).toBe(a.id);
    expect(store.nextDue('reports', new Set([a.id]), 0)?.id).toBe(b.id);
    store.startAttempt(a.id, 1);
    store.endAttempt(a.id, { state: 'queued', notBefore: 500, error: { code: 'upstream_reset', message: 'x' } });
    expect(store.nextDue('reports', new Set(), 100)?.id).toBe(b.id);
    expect(store.nextWakeAt('reports', 100)).toBe(500);
    expect(store.nextDue('reports', new Set(), 500)?.id).toBe(a.id);
    expect(store.position(store.get(c.id, 0)!)).toBe(3);
    expect(store.position(store.get(other.id, 0)!)).toBe(1);
    expect(store.queuedRoutes().sort()).toEqual(['other', 'reports']);
    expect(store.get(a.id, 0)?.error).toEqual({ code: 'upstream_reset', message: 'x' });
  });

  it('returns the live job holding an Idempotency-Key instead of a new one', () => {
    const store = make();
    const first = newJob({ idempotencyKey: 'k1' });
    store.insert(first, 0);
    const again = store.insert(newJob({ idempotencyKey: 'k1' }), 0);
    expect(again).toMatchObject({ created: false, job: { id: first.id } });
    expect(store.findByKey('reports', 'k1', 0)?.id).toBe(first.id);
    // Keys are per route.
    expect(store.insert(newJob({ idempotencyKey: 'k1', route: 'other' }), 0).created).toBe(true);
    // Once the job has expired, the key is free again.
    store.startAttempt(first.id, 1);
    store.endAttempt(first.id, { state: 'succeeded', at: 2, expiresAt: 10, error: null, result: null });
    expect(store.findByKey('reports', 'k1', 10)).toBeUndefined();
    expect(store.insert(newJob({ idempotencyKey: 'k1' }), 10).created).toBe(true);
  });

  it('cancels queued and running jobs only, and a canceled job cannot be finished', () => {
    const store = make();
    const queued = newJob();
    const running = newJob();
    store.insert(queued, 0);
    store.insert(running, 0);
    store.startAttempt(running.id, 1);
    expect(store.cancel(queued.id, 5, 1000)).toBe('queued');
    expect(store.cancel(running.id, 5, 1000)).toBe('running');
    expect(store.cancel(running.id, 6, 1000)).toBeUndefined();
    expect(store.startAttempt(queued.id, 7)).toBeUndefined();
    expect(store.endAttempt(running.id, { state: 'succeeded', at: 8, expiresAt: 100, error: null, result: null })).toBe(false);
    expect(store.get(running.id, 0)).toMatchObject({ state: 'canceled', finishedAt: 5 });
  });

  it('hides expired jobs at once and deletes them on sweep', () => {
    const store = make();
    const job = newJob();
    store.insert(job, 0);
    store.startAttempt(job.id, 1);
    store.endAttempt(job.id, { state: 'failed', at: 2, expiresAt: 100, error: { code: 'internal', message: 'm' }, result: null });
    expect(store.get(job.id, 99)?.state).toBe('failed');
    expect(store.get(job.id, 100)).toBeUndefined();
    expect(store.list({ limit: 10 }, 100)).toEqual([]);
    expect(store.countByState(99).failed).toBe(1);
    expect(store.deleteExpired(100)).toBe(1);
    expect(store.countByState(0).failed).toBe(0);
  });

  it('counts, lists newest first, and reports the oldest queued job and running ones', () => {
    const store = make();
    const jobs = [newJob(), newJob(), newJob()];
    for (const j of jobs) store.insert(j, 0);
    store.startAttempt(jobs[0]!.id, 1);
    expect(store.countByState(0)).toEqual({ queued: 2, running: 1, succeeded: 0, failed: 0, canceled: 0 });
    expect(store.list({ limit: 10 }, 0).map((j) => j.id)).toEqual(jobs.map((j) => j.id).reverse());
    expect(store.list({ state: 'queued', limit: 1 }, 0).map((j) => j.id)).toEqual([jobs[2]!.id]);
    expect(store.oldestQueuedAt()).toBe(jobs[1]!.createdAt);
    expect(store.running().map((j) => j.id)).toEqual([jobs[0]!.id]);
    expect(store.delete(jobs[2]!.id)).toBe(true);
    expect(store.get(jobs[2]!.id, 0)).toBeUndefined();
  });
});

describe('SQLite store on disk', () => {
  it('is in WAL mode, owner-only, and keeps everything across a reopen', () => {
    const path = tempPath();
    const store = new SqliteJobStore(path);
    const job = newJob({ idempotencyKey: 'persist' });
    store.insert(job, 0);
    store.startAttempt(job.id, 1);
    store.close();
    expect(statSync(path).mode & 0o777).toBe(0o600);

    const reopened = new SqliteJobStore(path);
    stores.push(reopened);
    expect(reopened.running().map((j) => j.id)).toEqual([job.id]);
    expect(reopened.findByKey('reports', 'persist', 0)?.id).toBe(job.id);
    // Sequence numbers keep growing after a reopen, so order survives restarts.
    const later = newJob();
    reopened.insert(later, 0);
    expect(reopened.get(later.id, 0)!.seq).toBeGreaterThan(reopened.get(job.id, 0)!.seq);
    reopened.close();
    const raw = new Database(path, { readonly: true });
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    raw.close();
  });

  it('creates the WAL (and any -shm) owner-only while the store is open, and a 0700 directory', () => {
    const previous = process.umask(0o022);
    try {
      const path = tempPath();
      const store = new SqliteJobStore(path);
      stores.push(store);
      store.insert(newJob(), 0);
      const files = [path, `${path}-wal`, `${path}-shm`].filter((f) => existsSync(f));
      expect(files).toContain(`${path}-wal`);
      for (const file of files) expect({ file, mode: statSync(file).mode & 0o777 }).toEqual({ file, mode: 0o600 });
      expect(statSync(join(path, '..')).mode & 0o777).toBe(0o700);
    } finally {
      process.umask(previous);
    }
  });

  it('takes group and other access away from a store file an older version left readable', () => {
    const path = tempPath();
    new SqliteJobStore(path).close();
    chmodSync(path, 0o644);
    const store = new SqliteJobStore(path);
    stores.push(store);
    store.insert(newJob(), 0);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(`${path}-wal`).mode & 0o777).toBe(0o600);
  });

  it('refuses a store that another Sluice holds', () => {
    const path = tempPath();
    const store = new SqliteJobStore(path);
    stores.push(store);
    expect(() => new SqliteJobStore(path)).toThrow(/in use by another Sluice process/);
    store.close();
    const next = new SqliteJobStore(path);
    stores.push(next);
    expect(next.kind).toBe('sqlite');
  });
});
