// A job store that lives and dies with the process: for tests and for deployments that
// accept losing queued jobs on restart. Same contract as the SQLite store.
import type { JobStore } from './store.js';
import { JOB_STATES, type AttemptEnd, type JobRecord, type JobState, type NewJob, type StoredRequest, type StoredResult } from './types.js';

interface Entry {
  record: JobRecord;
  readonly request: StoredRequest;
  result: StoredResult | null;
}

export class MemoryJobStore implements JobStore {
  readonly kind = 'memory';
  /** Insertion order is creation order. */
  private readonly jobs = new Map<string, Entry>();
  private seq = 0;

  insert(job: NewJob, now: number): { job: JobRecord; created: boolean } {
    if (job.idempotencyKey !== null) {
      const existing = this.find((e) => e.record.route === job.route && e.record.idempotencyKey === job.idempotencyKey);
      if (existing && this.isLive(existing, now)) return { job: existing.record, created: false };
      if (existing) this.jobs.delete(existing.record.id);
    }
    const record: JobRecord = {
      id: job.id, seq: ++this.seq, route: job.route, state: 'queued', method: job.request.method, target: job.request.target,
      idempotencyKey: job.idempotencyKey, fingerprint: job.fingerprint, attempts: 0, createdAt: job.createdAt,
      startedAt: null, finishedAt: null, notBefore: 0, expiresAt: null, error: null, hasResult: false,
      submissionTrace: job.submissionTrace,
    };
    this.jobs.set(job.id, { record, request: job.request, result: null });
    return { job: record, created: true };
  }

  findByKey(route: string, key: string, now: number): JobRecord | undefined {
    const entry = this.find((e) => e.record.route === route && e.record.idempotencyKey === key);
    return entry && this.isLive(entry, now) ? entry.record : undefined;
  }

  get(id: string, now: number): JobRecord | undefined {
    const entry = this.jobs.get(id);
    return entry && this.isLive(entry, now) ? entry.record : undefined;
  }

  startAttempt(id: string, at: number): StoredRequest | undefined {
    const entry = this.jobs.get(id);
    if (entry?.record.state !== 'queued') return undefined;
    entry.record = { ...entry.record, state: 'running', attempts: entry.record.attempts + 1, startedAt: entry.record.startedAt ?? at };
    return entry.request;
  }

  endAttempt(id: string, end: AttemptEnd): boolean {
    const entry = this.jobs.get(id);
    if (entry?.record.state !== 'running') return false;
    if (end.state === 'queued') {
      entry.record = { ...entry.record, state: 'queued', notBefore: end.notBefore, error: end.error };
      return true;
    }
    entry.result = end.result;
    entry.record = { ...entry.record, state: end.state, finishedAt: end.at, expiresAt: end.expiresAt, error: end.error, hasResult: end.result !== null };
    return true;
  }

  cancel(id: string, at: number, expiresAt: number): JobState | undefined {
    const entry = this.jobs.get(id);
    const before = entry?.record.state;
    if (!entry || (before !== 'queued' && before !== 'running')) return undefined;
    entry.record = { ...entry.record, state: 'canceled', finishedAt: at, expiresAt };
    return before;
  }

  delete(id: string): boolean {
    return this.jobs.delete(id);
  }

  result(id: string, now: number): StoredResult | undefined {
    const entry = this.jobs.get(id);
    return entry && this.isLive(entry, now) ? entry.result ?? undefined : undefined;
  }

  nextDue(route: string, exclude: ReadonlySet<string>, now: number): JobRecord | undefined {
    return this.find((e) => this.isQueued(e, route) && e.record.notBefore <= now && !exclude.has(e.record.id))?.record;
  }

  nextWakeAt(route: string, now: number): number | undefined {
    let wake: number | undefined;
    for (const e of this.jobs.values()) {
      if (this.isQueued(e, route) && e.record.notBefore > now) wake = Math.min(wake ?? Infinity, e.record.notBefore);
    }
    return wake;
  }

  position(job: JobRecord): number {
    let ahead = 0;
    for (const e of this.jobs.values()) if (this.isQueued(e, job.route) && e.record.seq < job.seq) ahead++;
    return ahead + 1;
  }

  queuedRoutes(): string[] {
    return [...new Set([...this.jobs.values()].filter((e) => e.record.state === 'queued').map((e) => e.record.route))];
  }

  list(filter: { state?: JobState | undefined; limit: number }, now: number): JobRecord[] {
    return [...this.jobs.values()]
      .filter((e) => this.isLive(e, now) && (!filter.state || e.record.state === filter.state))
      .map((e) => e.record)
      .reverse()
      .slice(0, filter.limit);
  }

  countByState(now: number): Record<JobState, number> {
    const counts = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    for (const e of this.jobs.values()) if (this.isLive(e, now)) counts[e.record.state]++;
    return counts;
  }

  oldestQueuedAt(): number | undefined {
    let oldest: number | undefined;
    for (const e of this.jobs.values()) if (e.record.state === 'queued') oldest = Math.min(oldest ?? Infinity, e.record.createdAt);
    return oldest;
  }

  running(): JobRecord[] {
    return [...this.jobs.values()].filter((e) => e.record.state === 'running').map((e) => e.record);
  }

  deleteExpired(now: number): number {
    let deleted = 0;
    for (const [id, e] of this.jobs) {
      if (!this.isLive(e, now)) {
        this.jobs.delete(id);
        deleted++;
      }
    }
    return deleted;
  }

  close(): void {}

  private isLive(entry: Entry, now: number): boolean {
    return entry.record.expiresAt === null || entry.record.expiresAt > now;
  }

  private isQueued(entry: Entry, route: string): boolean {
    return entry.record.route === route && entry.record.state === 'queued';
  }

  private find(predicate: (e: Entry) => boolean): Entry | undefined {
    for (const e of this.jobs.values()) if (predicate(e)) return e;
    return undefined;
  }
}
