// One lane of cluster jobs: a BullMQ queue, this instance's worker for it, and its events.
// A route with `job:` has a lane of its own, whose BullMQ global concurrency is the route's
// max_slots, so that many of its jobs run at once across the whole cluster; jobs made with
// `Prefer: respond-async` on other routes share one lane with the default max_slots.
//
// An attempt runs as in one instance (jobs/attempt.ts): a slot from the local queue (which
// draws on the shared slot budget), one backend call, the lease back as soon as the answer
// is read. Sluice's own retry rules decide what happens next, and BullMQ carries them out:
// a retry is the job moved to `delayed` until its backoff ends; a result is stored in
// Redis under the job id with the route's result_ttl; a failure fails the job for good.
// A job whose instance died is found stalled by BullMQ once its lock expires and runs again
// elsewhere (at-least-once), or fails as interrupted with `on_restart: fail`.
import { DelayedError, Queue, QueueEvents, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { CompiledRoute } from '../config/compile.js';
import type { RouteJobConfig } from '../config/schema.js';
import { SluiceError } from '../errors.js';
import { decideEnd, runAttempt, type AttemptEnv } from '../jobs/attempt.js';
import type { JobError, StoredRequest, StoredResult } from '../jobs/types.js';
import type { JobTracer } from '../telemetry/job-tracing.js';

/** What the processor needs from the local slot queue (structural). */
export interface LaneSlots {
  acquire(request: {
    group: unknown; priorityRank: number; queueTimeoutMs: number; signal?: AbortSignal;
    info: { requestId: string; method: string; path: string };
  }): Promise<{ readonly server: { readonly url: string }; release(): void }>;
  group(name: string, caps: { maxSlots?: number }): unknown;
}

export interface JobData {
  readonly route: string;
  readonly request: Omit<StoredRequest, 'body'> & { readonly body: string };
  readonly fingerprint: string;
  readonly idempotencyKey: string | null;
  readonly createdAt: number;
  readonly submissionTrace: string | null;
  /** Backend calls started so far (counts an interrupted one). */
  attempts: number;
  /** The last attempt's error while the job waits for its retry. */
  lastError: JobError | null;
  /** Epoch ms the job's backoff ends, while delayed. */
  notBefore: number;
}

export interface JobReturn { readonly hasResult: boolean }

export interface LaneOptions {
  readonly name: string;
  readonly connection: Redis;
  readonly bullPrefix: string;
  readonly job: Readonly<RouteJobConfig>;
  readonly routeOf: (name: string) => CompiledRoute;
  readonly slots: LaneSlots;
  readonly attemptEnv: AttemptEnv;
  readonly tracer: JobTracer;
  readonly lockMs: number;
  readonly saveResult: (id: string, result: StoredResult, ttlMs: number) => Promise<void>;
  /** Called on every state change this instance sees for a job of the lane. */
  readonly onEvent: (id: string) => void;
  /** BullMQ's own errors; the caller decides whether they are news (not while Redis is known to be down). */
  readonly warn: (message: string, err?: unknown) => void;
}

/** A job waits this long for a slot before it lets others try (it stays in the queue either way). */
const SLOT_WAIT_MS = 10 * 60_000;
const EWMA_WEIGHT = 0.3;

export class Lane {
  readonly queue: Queue<JobData, JobReturn>;
  private worker: Worker<JobData, JobReturn> | undefined;
  private events: QueueEvents | undefined;
  private readonly group: unknown;
  /** Jobs this instance is running now. */
  running = 0;
  serviceMs: number | undefined;

  constructor(private readonly options: LaneOptions) {
    const queueName = `jobs-${options.name}`;
    this.queue = new Queue<JobData, JobReturn>(queueName, { connection: options.connection, prefix: options.bullPrefix });
    this.queue.on('error', (err) => options.warn(`job queue ${options.name}`, err));
    this.group = options.slots.group(`job:${options.name}`, { maxSlots: options.job.max_slots });
  }

  get max(): number {
    return this.options.job.max_slots;
  }

  /** The Redis list BullMQ keeps waiting jobs in (newest at the head). */
  get waitKey(): string {
    return `${this.options.bullPrefix}:${this.queue.name}:wait`;
  }

  /**
   * Sets the cluster-wide concurrency, then starts this instance's worker and events. Safe
   * to call again (each time Redis comes back) until it has succeeded once: the worker only
   * starts after max_slots holds for the whole cluster.
   */
  async start(): Promise<void> {
    if (this.worker || this.closed) return;
    const o = this.options;
    await this.queue.setGlobalConcurrency(o.job.max_slots);
    if (this.worker || this.closed) return;
    this.events = new QueueEvents(this.queue.name, { connection: o.connection.duplicate(), prefix: o.bullPrefix });
    this.events.on('error', () => {});
    for (const event of ['waiting', 'active', 'completed', 'failed', 'delayed', 'removed'] as const) {
      this.events.on(event, ({ jobId }: { jobId: string }) => o.onEvent(jobId));
    }
    this.worker = new Worker<JobData, JobReturn>(this.queue.name, (job, token, signal) => this.process(job, token, signal), {
      connection: o.connection.duplicate(),
      prefix: o.bullPrefix,
      concurrency: o.job.max_slots,
      lockDuration: o.lockMs,
      stalledInterval: o.lockMs,
      // on_restart: fail -> a job whose instance died is failed, not run again.
      maxStalledCount: o.job.on_restart === 'fail' ? 0 : 1_000_000,
    });
    this.worker.on('error', (err) => o.warn(`job worker ${o.name}`, err));
  }

  cancel(id: string): void {
    this.worker?.cancelJob(id, 'job_canceled');
  }

  private closed = false;

  async close(graceMs: number): Promise<boolean> {
    this.closed = true;
    let drained = true;
    if (this.worker) {
      const closing = this.worker.close();
      drained = await Promise.race([closing.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), graceMs).unref())]);
      // Cut off: the jobs stay active in Redis until their lock expires, then count as stalled.
      if (!drained) await this.worker.close(true).catch(() => {});
    }
    await this.events?.close().catch(() => {});
    await this.queue.close().catch(() => {});
    return drained;
  }

  private async process(job: Job<JobData, JobReturn>, token: string | undefined, signal: AbortSignal | undefined): Promise<JobReturn> {
    const o = this.options;
    const data = job.data;
    const route = o.routeOf(data.route);
    const abort = signal ?? new AbortController().signal;
    let lease;
    try {
      lease = await o.slots.acquire({
        group: this.group, priorityRank: route.priorityRank, queueTimeoutMs: SLOT_WAIT_MS, signal: abort,
        info: { requestId: `job:${job.id!.slice(0, 8)}`, method: data.request.method, path: data.request.target.split('?')[0]! },
      });
    } catch (err) {
      if (abort.aborted) throw new UnrecoverableError('job_canceled');
      // Refused by the queue (full, shed): not an attempt; try again in a second.
      await job.moveToDelayed(Date.now() + ((err as SluiceError).retryAfterSeconds ?? 1) * 1000, token);
      throw new DelayedError();
    }
    const attempt = data.attempts + 1;
    this.running++;
    let end;
    try {
      await job.updateData({ ...data, attempts: attempt });
      const trace = o.tracer.attemptStarted({ id: job.id!, route: data.route, method: data.request.method, attempt, submission: data.submissionTrace ?? undefined });
      const request: StoredRequest = { ...data.request, body: Buffer.from(data.request.body, 'base64') };
      const outcome = await runAttempt(o.attemptEnv, { jobId: job.id!, route, job: o.job, request, lease: lease as never, signal: abort, trace });
      if (outcome.kind === 'error' && abort.aborted) {
        trace.end('failed', outcome.error.code);
        throw new UnrecoverableError('job_canceled');
      }
      this.serviceMs = this.serviceMs === undefined ? outcome.durationMs : this.serviceMs + EWMA_WEIGHT * (outcome.durationMs - this.serviceMs);
      end = decideEnd(outcome, attempt, o.job, Date.now());
      trace.end(end.state === 'queued' ? 'retrying' : end.state, end.error?.code);
    } finally {
      lease.release();
      this.running--;
    }
    if (end.state === 'queued') {
      await job.updateData({ ...data, attempts: attempt, lastError: end.error, notBefore: end.notBefore });
      await job.moveToDelayed(end.notBefore, token);
      throw new DelayedError();
    }
    if (end.result) await o.saveResult(job.id!, end.result, o.job.result_ttl);
    if (end.state === 'failed') throw new UnrecoverableError(JSON.stringify(end.error));
    return { hasResult: end.result !== null };
  }
}
