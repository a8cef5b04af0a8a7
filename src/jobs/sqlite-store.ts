// The embedded durable job store: one SQLite file in WAL mode, committed with
// synchronous=FULL so a stored job survives a crash of Sluice or of the machine. The file
// is locked exclusively: two Sluice processes sharing one store would both run its queued
// jobs, so the second one is refused at start.
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { StartupError } from '../errors.js';
import type { JobStore } from './store.js';
import { JOB_STATES, type AttemptEnd, type JobRecord, type JobState, type NewJob, type StoredRequest, type StoredResult } from './types.js';

const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS jobs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  route TEXT NOT NULL,
  state TEXT NOT NULL,
  method TEXT NOT NULL,
  target TEXT NOT NULL,
  idempotency_key TEXT,
  fingerprint TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER,
  not_before INTEGER NOT NULL DEFAULT 0,
  expires_at INTEGER,
  error_code TEXT,
  error_message TEXT,
  submission_trace TEXT,
  client_address TEXT NOT NULL,
  request_headers TEXT NOT NULL,
  result_status INTEGER,
  result_headers TEXT,
  -- Blobs last: reading the columns before them does not touch their overflow pages.
  request_body BLOB NOT NULL,
  result_body BLOB
);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idempotency ON jobs(route, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs(route, state, seq);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, seq);
CREATE INDEX IF NOT EXISTS jobs_expiry ON jobs(expires_at) WHERE expires_at IS NOT NULL;
`;

const RECORD_COLUMNS = `seq, id, route, state, method, target, idempotency_key, fingerprint, attempts, created_at,
  started_at, finished_at, not_before, expires_at, error_code, error_message, submission_trace, result_status IS NOT NULL AS has_result`;

interface RecordRow {
  seq: number; id: string; route: string; state: JobState; method: string; target: string;
  idempotency_key: string | null; fingerprint: string; attempts: number; created_at: number;
  started_at: number | null; finished_at: number | null; not_before: number; expires_at: number | null;
  error_code: string | null; error_message: string | null; submission_trace: string | null; has_result: number;
}

function toRecord(row: RecordRow): JobRecord {
  return {
    id: row.id, seq: row.seq, route: row.route, state: row.state, method: row.method, target: row.target,
    idempotencyKey: row.idempotency_key, fingerprint: row.fingerprint, attempts: row.attempts,
    createdAt: row.created_at, startedAt: row.started_at, finishedAt: row.finished_at,
    notBefore: row.not_before, expiresAt: row.expires_at,
    error: row.error_code ? { code: row.error_code, message: row.error_message ?? '' } : null,
    hasResult: row.has_result === 1,
    submissionTrace: row.submission_trace,
  };
}

export class SqliteJobStore implements JobStore {
  readonly kind = 'sqlite';
  private readonly db: Database.Database;
  private readonly sql;

  constructor(readonly path: string) {
    // The file holds request headers (credentials included) and results: owner only. It is
    // created 0600 before SQLite opens it because SQLite gives the -wal and -shm files it
    // creates the database file's mode; a chmod afterwards would leave the WAL readable.
    if (!existsSync(path)) {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      closeSync(openSync(path, 'a', 0o600));
    }
    for (const file of [path, `${path}-wal`, `${path}-shm`]) {
      if (existsSync(file) && (statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
    }
    // timeout 0: a store locked by another process is an error now, not a hang.
    this.db = new Database(path, { timeout: 0 });
    try {
      this.db.pragma('locking_mode = EXCLUSIVE');
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.migrate();
    } catch (err) {
      this.db.close();
      if ((err as { code?: string }).code === 'SQLITE_BUSY') {
        throw new StartupError(`job store ${path} is in use by another Sluice process (each process needs its own jobs.path)`, { cause: err });
      }
      throw err;
    }
    this.sql = this.prepare();
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) throw new Error(`job store ${this.path} has schema version ${version}; this Sluice knows ${SCHEMA_VERSION}`);
    // BEGIN IMMEDIATE takes the exclusive lock now rather than at the first job.
    this.db.exec(`BEGIN IMMEDIATE; ${SCHEMA} PRAGMA user_version = ${SCHEMA_VERSION}; COMMIT;`);
  }

  private prepare() {
    const db = this.db;
    const live = '(expires_at IS NULL OR expires_at > @now)';
    return {
      get: db.prepare<{ id: string; now: number }, RecordRow>(`SELECT ${RECORD_COLUMNS} FROM jobs WHERE id = @id AND ${live}`),
      byKey: db.prepare<{ route: string; key: string }, RecordRow>(`SELECT ${RECORD_COLUMNS} FROM jobs WHERE route = @route AND idempotency_key = @key`),
      insert: db.prepare(`INSERT INTO jobs (id, route, state, method, target, idempotency_key, fingerprint, created_at,
        submission_trace, client_address, request_headers, request_body) VALUES (@id, @route, 'queued', @method, @target, @key,
        @fingerprint, @createdAt, @trace, @clientAddress, @headers, @body)`),
      start: db.prepare<{ id: string; at: number }, { method: string; target: string; request_headers: string; client_address: string; request_body: Buffer }>(
        `UPDATE jobs SET state = 'running', attempts = attempts + 1, started_at = COALESCE(started_at, @at)
         WHERE id = @id AND state = 'queued' RETURNING method, target, request_headers, client_address, request_body`),
      finish: db.prepare(`UPDATE jobs SET state = @state, finished_at = @at, expires_at = @expiresAt, error_code = @errorCode,
        error_message = @errorMessage, result_status = @status, result_headers = @headers, result_body = @body
        WHERE id = @id AND state = 'running'`),
      retry: db.prepare(`UPDATE jobs SET state = 'queued', not_before = @notBefore, error_code = @errorCode, error_message = @errorMessage
        WHERE id = @id AND state = 'running'`),
      stateOf: db.prepare<{ id: string }, { state: JobState }>(`SELECT state FROM jobs WHERE id = @id`),
      cancel: db.prepare(`UPDATE jobs SET state = 'canceled', finished_at = @at, expires_at = @expiresAt
        WHERE id = @id AND state IN ('queued', 'running')`),
      delete: db.prepare<{ id: string }>(`DELETE FROM jobs WHERE id = @id`),
      result: db.prepare<{ id: string; now: number }, { result_status: number; result_headers: string; result_body: Buffer }>(
        `SELECT result_status, result_headers, result_body FROM jobs WHERE id = @id AND result_status IS NOT NULL AND ${live}`),
      due: db.prepare<{ route: string; now: number; limit: number }, RecordRow>(
        `SELECT ${RECORD_COLUMNS} FROM jobs WHERE route = @route AND state = 'queued' AND not_before <= @now ORDER BY seq LIMIT @limit`),
      wake: db.prepare<{ route: string; now: number }, { at: number | null }>(
        `SELECT MIN(not_before) AS at FROM jobs WHERE route = @route AND state = 'queued' AND not_before > @now`),
      position: db.prepare<{ route: string; seq: number }, { n: number }>(
        `SELECT COUNT(*) AS n FROM jobs WHERE route = @route AND state = 'queued' AND seq < @seq`),
      queuedRoutes: db.prepare<[], { route: string }>(`SELECT DISTINCT route FROM jobs WHERE state = 'queued'`),
      list: db.prepare<{ now: number; limit: number }, RecordRow>(`SELECT ${RECORD_COLUMNS} FROM jobs WHERE ${live} ORDER BY seq DESC LIMIT @limit`),
      listState: db.prepare<{ state: string; now: number; limit: number }, RecordRow>(
        `SELECT ${RECORD_COLUMNS} FROM jobs WHERE state = @state AND ${live} ORDER BY seq DESC LIMIT @limit`),
      counts: db.prepare<{ now: number }, { state: JobState; n: number }>(`SELECT state, COUNT(*) AS n FROM jobs WHERE ${live} GROUP BY state`),
      oldestQueued: db.prepare<[], { at: number | null }>(`SELECT MIN(created_at) AS at FROM jobs WHERE state = 'queued'`),
      running: db.prepare<[], RecordRow>(`SELECT ${RECORD_COLUMNS} FROM jobs WHERE state = 'running' ORDER BY seq`),
      expire: db.prepare<{ now: number }>(`DELETE FROM jobs WHERE expires_at IS NOT NULL AND expires_at <= @now`),
    };
  }

  insert(job: NewJob, now: number): { job: JobRecord; created: boolean } {
    return this.db.transaction(() => {
      if (job.idempotencyKey !== null) {
        const existing = this.sql.byKey.get({ route: job.route, key: job.idempotencyKey });
        if (existing && (existing.expires_at === null || existing.expires_at > now)) return { job: toRecord(existing), created: false };
        if (existing) this.sql.delete.run({ id: existing.id });
      }
      this.sql.insert.run({
        id: job.id, route: job.route, method: job.request.method, target: job.request.target, key: job.idempotencyKey,
        fingerprint: job.fingerprint, createdAt: job.createdAt, trace: job.submissionTrace, clientAddress: job.request.clientAddress,
        headers: JSON.stringify(job.request.headers), body: job.request.body,
      });
      return { job: toRecord(this.sql.get.get({ id: job.id, now })!), created: true };
    })();
  }

  findByKey(route: string, key: string, now: number): JobRecord | undefined {
    const row = this.sql.byKey.get({ route, key });
    return row && (row.expires_at === null || row.expires_at > now) ? toRecord(row) : undefined;
  }

  get(id: string, now: number): JobRecord | undefined {
    const row = this.sql.get.get({ id, now });
    return row ? toRecord(row) : undefined;
  }

  startAttempt(id: string, at: number): StoredRequest | undefined {
    const row = this.sql.start.get({ id, at });
    if (!row) return undefined;
    return { method: row.method, target: row.target, headers: JSON.parse(row.request_headers), clientAddress: row.client_address, body: row.request_body };
  }

  endAttempt(id: string, end: AttemptEnd): boolean {
    if (end.state === 'queued') {
      return this.sql.retry.run({ id, notBefore: end.notBefore, errorCode: end.error.code, errorMessage: end.error.message }).changes === 1;
    }
    return this.sql.finish.run({
      id, state: end.state, at: end.at, expiresAt: end.expiresAt,
      errorCode: end.error?.code ?? null, errorMessage: end.error?.message ?? null,
      status: end.result?.status ?? null, headers: end.result ? JSON.stringify(end.result.headers) : null, body: end.result?.body ?? null,
    }).changes === 1;
  }

  cancel(id: string, at: number, expiresAt: number): JobState | undefined {
    return this.db.transaction(() => {
      const before = this.sql.stateOf.get({ id })?.state;
      if (before !== 'queued' && before !== 'running') return undefined;
      this.sql.cancel.run({ id, at, expiresAt });
      return before;
    })();
  }

  delete(id: string): boolean {
    return this.sql.delete.run({ id }).changes === 1;
  }

  result(id: string, now: number): StoredResult | undefined {
    const row = this.sql.result.get({ id, now });
    return row ? { status: row.result_status, headers: JSON.parse(row.result_headers), body: row.result_body } : undefined;
  }

  nextDue(route: string, exclude: ReadonlySet<string>, now: number): JobRecord | undefined {
    // Claimed jobs are still queued and due, so at most exclude.size rows are skipped.
    const row = this.sql.due.all({ route, now, limit: exclude.size + 1 }).find((r) => !exclude.has(r.id));
    return row ? toRecord(row) : undefined;
  }

  nextWakeAt(route: string, now: number): number | undefined {
    return this.sql.wake.get({ route, now })?.at ?? undefined;
  }

  position(job: JobRecord): number {
    return this.sql.position.get({ route: job.route, seq: job.seq })!.n + 1;
  }

  queuedRoutes(): string[] {
    return this.sql.queuedRoutes.all().map((r) => r.route);
  }

  list(filter: { state?: JobState | undefined; limit: number }, now: number): JobRecord[] {
    const rows = filter.state
      ? this.sql.listState.all({ state: filter.state, now, limit: filter.limit })
      : this.sql.list.all({ now, limit: filter.limit });
    return rows.map(toRecord);
  }

  countByState(now: number): Record<JobState, number> {
    const counts = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    for (const row of this.sql.counts.all({ now })) counts[row.state] = row.n;
    return counts;
  }

  oldestQueuedAt(): number | undefined {
    return this.sql.oldestQueued.get()?.at ?? undefined;
  }

  running(): JobRecord[] {
    return this.sql.running.all().map(toRecord);
  }

  deleteExpired(now: number): number {
    return this.sql.expire.run({ now }).changes;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
