// The job service: what the pipeline, the job resources and the admin server use. It owns
// the store (opened on first use, or at start when there is something to resume), the
// runner, expiry, and the in-process notifications that let a waiting client answer the
// moment a job changes state.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { CompiledConfig, CompiledRoute } from '../config/compile.js';
import type { SluiceConfig } from '../config/schema.js';
import { SluiceError } from '../errors.js';
import type { HeaderMap } from '../http/headers.js';
import type { SlotQueue } from '../slots/slot-queue.js';
import { NO_JOB_TRACING, type JobTracer } from '../telemetry/job-tracing.js';
import type { UpstreamEnv } from '../upstream/call-upstream.js';
import { LiveJobs } from './live-jobs.js';
import type { AttemptEnv } from './attempt.js';
import { MemoryJobStore } from './memory-store.js';
import { JobRunner } from './runner.js';
import { JobWatchers } from './job-watchers.js';
import { SqliteJobStore } from './sqlite-store.js';
import type { JobStore } from './store.js';
import { FINAL_STATES, JOB_STATES, type JobRecord, type JobState, type StoredResult } from './types.js';

const SWEEP_INTERVAL_MS = 30_000;
/** 24 random bytes: 192 bits, as base64url (32 characters). */
const ID_BYTES = 24;
export const JOB_ID_PATTERN = /^[A-Za-z0-9_-]{32}$/;

export interface JobServiceOptions {
  readonly config: CompiledConfig;
  readonly queue: SlotQueue;
  /** How its attempts call the backend (upstream/call-upstream.ts). */
  readonly upstream: UpstreamEnv;
  readonly via: string;
  /** Submission and attempt spans; no-ops by default. */
  readonly tracer?: JobTracer;
  readonly warn?: (message: string, err?: unknown) => void;
  readonly now?: () => number;

}

export interface Submission {
  readonly route: CompiledRoute;
  readonly method: string;
  readonly target: string;
  /** End-to-end client headers, already without the async preferences. */
  readonly headers: HeaderMap;
  readonly clientAddress: string;
  /** The original client (behind trusted proxies), for limits.per_client.max_jobs. */
  readonly client?: string;
  readonly body: Buffer;
}

/** A job as its status resource shows it. */
export interface JobView {
  readonly job: JobRecord;
  /** 1-based place among its route's queued jobs, when queued. */
  readonly position: number | undefined;
  /** Seconds a poller should wait, while the job is not finished. */
  readonly retryAfterSeconds: number | undefined;
}

export interface JobStats {
  readonly store: JobStore['kind'] | 'sqlite (not opened)' | 'bullmq';
  readonly by_state: Record<JobState, number>;
  readonly oldest_queued_age_ms: number;
  readonly running_here: number;
}

export class JobService {
  readonly prefix: string;
  readonly tracer: JobTracer;
  private readonly storeConfig: SluiceConfig['jobs'];
  private store: JobStore | undefined;
  private readonly runner: JobRunner;
  private readonly watchers = new JobWatchers();
  private readonly live = new LiveJobs();
  private readonly now: () => number;
  private readonly warn: (message: string, err?: unknown) => void;
  private sweeper: NodeJS.Timeout | undefined;
  private closing = false;

  constructor(private readonly options: JobServiceOptions) {
    const raw = options.config.raw;
    this.prefix = raw.jobs.prefix;
    this.storeConfig = raw.jobs;
    this.tracer = options.tracer ?? NO_JOB_TRACING;
    this.now = options.now ?? Date.now;
    this.warn = options.warn ?? ((message, err) => process.emitWarning(err === undefined ? message : `${message}: ${String(err)}`));
    this.runner = new JobRunner({
      config: options.config,
      queue: options.queue,
      attemptEnv: { upstream: options.upstream, via: options.via, limits: raw.limits },
      store: () => this.openStore(),
      tracer: this.tracer,
      onChange: (id) => this.notify(id),
      warn: this.warn,
      now: this.now,
    });
  }

  /**
   * Opens the store if it holds work or jobs are configured, settles jobs a previous
   * process left running (per on_restart), and resumes the queue. A SQLite store that does
   * not exist yet is created only when the first job arrives.
   */
  start(): void {
    this.sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.sweeper.unref();
    const configured = this.options.config.routes.some((r) => r.job !== undefined);
    if (this.storeConfig.store === 'memory' || configured || existsSync(this.storeConfig.path)) this.openStore();
    if (!this.store) return;
    this.recoverInterrupted(this.store);
    for (const route of this.store.queuedRoutes()) this.runner.poke(route);
  }

  /** A reload: new route settings for submissions and for jobs claimed from now on. */
  reconfigure(config: CompiledConfig): void {
    (this.options as { config: CompiledConfig }).config = config;
    this.runner.reconfigure(config);
  }

  /** Whether every request on this route becomes a job (others do when the client prefers it). */
  isJobRoute(route: CompiledRoute): boolean {
    return route.job !== undefined;
  }

  /** The wait (ms) a route applies when the client names none. */
  routeWaitMs(route: CompiledRoute): number {
    return this.runner.settings(route.name).job.wait;
  }

  /**
   * Stores the job (durably, before this returns) and lets the runner know. With an
   * Idempotency-Key already used on this route, the existing job is returned instead.
   * `traceSubmission` runs only for a new job, with its id, and returns its traceparent.
   */
  submit(submission: Submission, idempotencyKey: string | undefined, traceSubmission: (jobId: string) => string | undefined): { view: JobView; created: boolean } {
    const { route, method, target, body } = submission;
    const fingerprint = createHash('sha256').update(`${method} ${target}\n`).update(body).digest('base64url');
    const now = this.now();
    let stored: { job: JobRecord; created: boolean };
    try {
      const store = this.openStore();
      const existing = idempotencyKey === undefined ? undefined : store.findByKey(route.name, idempotencyKey, now);
      if (existing && existing.fingerprint !== fingerprint) {
        throw new SluiceError('idempotency_key_reused', `this key belongs to a different ${existing.method} request`);
      }
      if (!existing) this.checkQuota(route, submission.client ?? submission.clientAddress);
      const id = randomBytes(ID_BYTES).toString('base64url');
      stored = existing ? { job: existing, created: false } : store.insert({
        id, route: route.name, idempotencyKey: idempotencyKey ?? null, fingerprint, createdAt: now,
        request: { method, target, headers: submission.headers, clientAddress: submission.clientAddress, body },
        submissionTrace: traceSubmission(id) ?? null,
      }, now);
    } catch (err) {
      if (err instanceof SluiceError) throw err;
      // The store's own message names files on this machine: it goes to the log, not to the client.
      this.warn('job store failed', err);
      throw new SluiceError('job_store_failed', undefined, { cause: err });
    }
    // Stored: from here on nothing may turn the answer into an error, or the client would resubmit.
    if (stored.created) {
      this.live.add(stored.job.id, route.name, submission.client ?? submission.clientAddress);
      this.runner.poke(route.name);
    }
    return { view: this.viewOrBare(stored.job), created: stored.created };
  }

  view(id: string): JobView | undefined {
    const job = this.get(id);
    if (!job) return undefined;
    const position = job.state === 'queued' ? this.store!.position(job) : undefined;
    const retryAfterSeconds = FINAL_STATES.has(job.state) ? undefined : this.runner.estimateSeconds(job, position);
    return { job, position, retryAfterSeconds };
  }

  result(id: string): StoredResult | undefined {
    return this.store?.result(id, this.now());
  }

  /**
   * Resolves once `done(job)` holds, the time is up, the client is gone or Sluice is
   * stopping; with the job as it is then (undefined if it no longer exists).
   */
  async waitFor(id: string, done: (job: JobRecord) => boolean, timeoutMs: number, signal: AbortSignal): Promise<JobRecord | undefined> {
    const job = this.get(id);
    if (!job || done(job) || timeoutMs <= 0 || this.closing || signal.aborted) return job;
    await this.watchers.wait(id, timeoutMs, signal, (finish) => {
      const now = this.get(id);
      if (!now || done(now) || this.closing) finish();
    });
    return this.get(id);
  }

  /**
   * DELETE on a job: a queued or running job is canceled (a running backend call is
   * aborted); a finished one is deleted with its result. Undefined when there is no such job.
   */
  cancelOrDelete(id: string): 'canceled' | 'deleted' | undefined {
    const job = this.get(id);
    if (!job) return undefined;
    if (FINAL_STATES.has(job.state)) return this.store!.delete(id) ? 'deleted' : undefined;
    const { job: settings } = this.runner.settings(job.route);
    const now = this.now();
    if (this.store!.cancel(id, now, now + settings.result_ttl) === undefined) return undefined;
    this.runner.abort(id, new SluiceError('job_canceled'));
    this.notify(id);
    return 'canceled';
  }

  list(state: JobState | undefined, limit: number): JobRecord[] {
    return this.store?.list({ state, limit }, this.now()) ?? [];
  }

  stats(): JobStats {
    const now = this.now();
    const empty = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    const oldest = this.store?.oldestQueuedAt();
    return {
      store: this.store?.kind ?? 'sqlite (not opened)',
      by_state: this.store?.countByState(now) ?? empty,
      oldest_queued_age_ms: oldest === undefined ? 0 : Math.max(0, now - oldest),
      running_here: this.runner.runningCount,
    };
  }

  /** Stops starting jobs, answers every waiting client now, and lets running attempts finish within the grace period. */
  async drain(graceMs: number): Promise<boolean> {
    this.closing = true;
    clearInterval(this.sweeper);
    for (const id of this.watchers.ids()) this.notify(id);
    return this.runner.drain(graceMs);
  }

  /** Closes the store; call after drain and after the gateway has stopped taking requests. */
  close(): void {
    this.closing = true;
    clearInterval(this.sweeper);
    this.store?.close();
  }

  private viewOrBare(job: JobRecord): JobView {
    try {
      return this.view(job.id) ?? { job, position: undefined, retryAfterSeconds: 1 };
    } catch (err) {
      this.warn(`job ${job.id.slice(0, 8)}: status could not be read after submission`, err);
      return { job, position: undefined, retryAfterSeconds: 1 };
    }
  }

  private get(id: string): JobRecord | undefined {
    if (!JOB_ID_PATTERN.test(id)) return undefined;
    return this.store?.get(id, this.now());
  }

  private openStore(): JobStore {
    this.store ??= this.storeConfig.store === 'memory' ? new MemoryJobStore() : new SqliteJobStore(this.storeConfig.path);
    return this.store;
  }

  private recoverInterrupted(store: JobStore): void {
    const now = this.now();
    for (const job of store.running()) {
      const { job: settings } = this.runner.settings(job.route);
      const attempt = `attempt ${job.attempts} was running when Sluice stopped`;
      if (settings.on_restart === 'rerun') {
        store.endAttempt(job.id, { state: 'queued', notBefore: 0, error: { code: 'job_interrupted', message: `${attempt}; running it again` } });
      } else {
        store.endAttempt(job.id, {
          state: 'failed', at: now, expiresAt: now + settings.result_ttl, result: null,
          error: { code: 'job_interrupted', message: `${attempt} (on_restart: fail)` },
        });
      }
    }
  }

  private sweep(): void {
    try {
      this.store?.deleteExpired(this.now());
    } catch (err) {
      this.warn('expired jobs could not be deleted', err);
    }
  }

  /** Refuses a new job over its route's job.max_queued or its client's per_client.max_jobs. */
  private checkQuota(route: CompiledRoute, client: string): void {
    const { job } = this.runner.settings(route.name);
    if (this.live.ofRoute(route.name) >= job.max_queued) {
      throw new SluiceError('jobs_full', `route ${route.name} allows ${job.max_queued}`, { retryAfterSeconds: 5 });
    }
    const perClient = this.options.config.raw.limits.per_client.max_jobs;
    if (perClient > 0 && this.live.ofClient(client) >= perClient) {
      throw new SluiceError('client_limit', `${perClient} unfinished jobs per client (limits.per_client.max_jobs)`, { retryAfterSeconds: 5 });
    }
  }

  private notify(id: string): void {
    if (this.live.has(id)) {
      const job = this.get(id);
      if (!job || FINAL_STATES.has(job.state)) this.live.remove(id);
    }
    this.watchers.wake(id);
  }
}
