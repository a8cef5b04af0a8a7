// Long jobs in a cluster: the same job API as one instance (jobs/api.ts), on BullMQ queues
// in Redis, so a job submitted on any instance can be polled, waited for and cancelled on
// any other, runs on whichever instance has room, and survives the instance that took it.
//
// Mapping to BullMQ: the job id is Sluice's 192-bit id; waiting/prioritized and delayed
// (backoff) read as `queued`, active as `running`, completed as `succeeded`, failed as
// `failed`. Cancelling writes a tombstone (read as `canceled` until result_ttl), removes a
// queued job and aborts a running one on whichever instance runs it (pub/sub). Results
// live in Redis next to the job for result_ttl. An Idempotency-Key is a Redis key per
// route naming the job that holds it.
import { createHash, randomBytes } from 'node:crypto';
import type { Job, JobState as BullState } from 'bullmq';
import { Redis } from 'ioredis';
import type { CompiledConfig, CompiledRoute } from '../config/compile.js';
import { jobDefaults } from '../config/schema.js';
import { SluiceError } from '../errors.js';
import type { JobApi } from '../jobs/api.js';
import type { JobStats, JobView, Submission } from '../jobs/service.js';
import { FINAL_STATES, JOB_STATES, type JobError, type JobRecord, type JobState, type StoredResult } from '../jobs/types.js';
import type { AttemptEnv } from '../jobs/attempt.js';
import { JobWatchers } from '../jobs/job-watchers.js';
import type { JobTracer } from '../telemetry/job-tracing.js';
import { Lane, type JobData, type JobReturn, type LaneSlots } from './bull-lane.js';
import type { RedisLink } from './redis-link.js';

const JOB_ID_PATTERN = /^[A-Za-z0-9_-]{32}$/;
/** Jobs made with Prefer: respond-async on routes without `job:` share this lane. */
const PREFER_LANE = '_prefer';
const STATS_EVERY_MS = 1_000;
const IDEMPOTENCY_HOLD_MS = 24 * 3_600_000;

export interface BullJobsOptions {
  readonly config: CompiledConfig;
  readonly redisUrl: string;
  readonly link: RedisLink;
  readonly keyPrefix: string;
  readonly instanceId: string;
  readonly lockMs: number;
  readonly slots: LaneSlots;
  readonly attemptEnv: AttemptEnv;
  readonly tracer: JobTracer;
  readonly warn: (message: string, err?: unknown) => void;
}

export class BullJobs implements JobApi {
  readonly prefix: string;
  readonly tracer: JobTracer;
  private readonly connection: Redis;
  private readonly lanes = new Map<string, Lane>();
  private readonly watchers = new JobWatchers();
  private readonly cancelChannel: string;
  private snapshot: JobStats;
  private statsTimer: NodeJS.Timeout | undefined;
  private closing = false;
  private config: CompiledConfig;

  constructor(private readonly options: BullJobsOptions) {
    this.config = options.config;
    this.prefix = options.config.raw.jobs.prefix;
    this.tracer = options.tracer;
    this.cancelChannel = `${options.keyPrefix}jobs:cancel`;
    // BullMQ's own connection: it queues commands while reconnecting, as its workers need.
    this.connection = new Redis(options.redisUrl, { maxRetriesPerRequest: null, lazyConnect: true, retryStrategy: (n) => Math.min(n * 100, 2_000) });
    this.connection.on('error', () => {});
    const bullPrefix = `${options.keyPrefix}bull`;
    const lane = (name: string, job: CompiledRoute['job']) => new Lane({
      name, connection: this.connection, bullPrefix, job: job ?? jobDefaults(), routeOf: (r) => this.route(r),
      slots: options.slots, attemptEnv: options.attemptEnv, tracer: options.tracer, lockMs: options.lockMs,
      saveResult: (id, result, ttl) => this.saveResult(id, result, ttl),
      onEvent: (id) => this.notify(id), warn: (message, err) => this.warnOnce(message, err),
    });
    for (const route of options.config.routes) if (route.job) this.lanes.set(route.name, lane(route.name, route.job));
    this.lanes.set(PREFER_LANE, lane(PREFER_LANE, undefined));
    options.link.onMessage(this.cancelChannel, (id) => {
      for (const l of this.lanes.values()) l.cancel(id);
      this.notify(id);
    });
    const empty = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    this.snapshot = { store: 'bullmq', by_state: empty, oldest_queued_age_ms: 0, running_here: 0 };
  }

  /**
   * A reload: the routes a job's attempt uses (timeouts, headers) come from the new config.
   * The lanes themselves (which routes have one, their max_slots) are fixed at start: a
   * cluster-wide concurrency changes with a restart of the instances.
   */
  reconfigure(config: CompiledConfig): void {
    this.config = config;
  }

  start(): void {
    this.connection.connect().catch(() => {});
    const startLanes = () => {
      for (const lane of this.lanes.values()) lane.start().catch(() => { /* retried when Redis is back */ });
    };
    startLanes();
    this.options.link.onUp(startLanes);
    this.statsTimer = setInterval(() => void this.refreshStats(), STATS_EVERY_MS);
    this.statsTimer.unref();
  }

  isJobRoute(route: CompiledRoute): boolean {
    return route.job !== undefined;
  }

  routeWaitMs(route: CompiledRoute): number {
    return (route.job ?? jobDefaults()).wait;
  }

  async submit(submission: Submission, idempotencyKey: string | undefined, traceSubmission: (jobId: string) => string | undefined): Promise<{ view: JobView; created: boolean }> {
    const { route, method, target, body } = submission;
    const fingerprint = createHash('sha256').update(`${method} ${target}\n`).update(body).digest('base64url');
    const id = randomBytes(24).toString('base64url');
    const redis = this.options.link.client;
    // BullMQ would hold the add until Redis is back; the client is better told now.
    if (this.options.link.health !== 'up') throw new SluiceError('job_store_failed', 'the job queue (Redis) is unreachable');
    try {
      if (idempotencyKey !== undefined) {
        const key = this.idempotencyKey(route.name, idempotencyKey);
        const holder = await redis.set(key, id, 'PX', IDEMPOTENCY_HOLD_MS, 'NX') === 'OK' ? id : await redis.get(key);
        if (holder && holder !== id) {
          const existing = await this.view(holder);
          if (existing) {
            if (existing.job.fingerprint !== fingerprint) throw new SluiceError('idempotency_key_reused', `this key belongs to a different ${existing.job.method} request`);
            return { view: existing, created: false };
          }
          await redis.set(key, id, 'PX', IDEMPOTENCY_HOLD_MS);
        }
      }
      const data: JobData = {
        route: route.name, fingerprint, idempotencyKey: idempotencyKey ?? null, createdAt: Date.now(),
        request: { method, target, headers: submission.headers, clientAddress: submission.clientAddress, body: body.toString('base64') },
        submissionTrace: traceSubmission(id) ?? null, attempts: 0, lastError: null, notBefore: 0,
      };
      const ttlSeconds = Math.ceil((route.job ?? jobDefaults()).result_ttl / 1000);
      // Added (and so in Redis) before the 202: BullMQ's add resolves once Redis has the job.
      await this.laneFor(route).queue.add('job', data, {
        jobId: id, attempts: 1, removeOnComplete: { age: ttlSeconds }, removeOnFail: { age: ttlSeconds },
      });
    } catch (err) {
      if (err instanceof SluiceError) throw err;
      throw new SluiceError('job_store_failed', (err as Error).message, { cause: err });
    }
    const view = (await this.view(id).catch(() => undefined)) ?? { job: bareRecord(id, route.name, method, target, fingerprint), position: undefined, retryAfterSeconds: 1 };
    return { view, created: true };
  }

  async view(id: string): Promise<JobView | undefined> {
    if (!JOB_ID_PATTERN.test(id)) return undefined;
    const tombstone = await this.options.link.client.get(this.tombstoneKey(id));
    if (tombstone) return { job: JSON.parse(tombstone) as JobRecord, position: undefined, retryAfterSeconds: undefined };
    const found = await this.find(id);
    if (!found) return undefined;
    const { job, lane } = found;
    const state = await job.getState();
    const record = await this.record(job, state);
    if (!record) return undefined;
    let position: number | undefined;
    if (record.state === 'queued') position = await this.position(lane, id, state);
    const retryAfterSeconds = FINAL_STATES.has(record.state) ? undefined : estimate(lane, record, position);
    return { job: record, position, retryAfterSeconds };
  }

  async result(id: string): Promise<StoredResult | undefined> {
    const stored = await this.options.link.client.hgetallBuffer(this.resultKey(id));
    if (!stored.meta || !stored.body) return undefined;
    const meta = JSON.parse(stored.meta.toString('utf8')) as { status: number; headers: StoredResult['headers'] };
    return { status: meta.status, headers: meta.headers, body: stored.body };
  }

  async waitFor(id: string, done: (job: JobRecord) => boolean, timeoutMs: number, signal: AbortSignal): Promise<JobRecord | undefined> {
    const first = (await this.view(id))?.job;
    if (!first || done(first) || timeoutMs <= 0 || this.closing || signal.aborted) return first;
    // Woken by the lane's QueueEvents (any instance's change), then looks at the job itself.
    await this.watchers.wait(id, timeoutMs, signal, (finish) => {
      void this.view(id).then((v) => { if (!v || done(v.job) || this.closing) finish(); }, finish);
    });
    return (await this.view(id))?.job;
  }

  async cancelOrDelete(id: string): Promise<'canceled' | 'deleted' | undefined> {
    const view = await this.view(id);
    if (!view) return undefined;
    const redis = this.options.link.client;
    const found = await this.find(id);
    if (FINAL_STATES.has(view.job.state)) {
      await found?.job.remove().catch(() => {});
      await redis.del(this.resultKey(id), this.tombstoneKey(id));
      if (view.job.idempotencyKey) await redis.del(this.idempotencyKey(view.job.route, view.job.idempotencyKey));
      return 'deleted';
    }
    const now = Date.now();
    const ttl = (this.route(view.job.route).job ?? jobDefaults()).result_ttl;
    const canceled: JobRecord = { ...view.job, state: 'canceled', finishedAt: now, expiresAt: now + ttl, hasResult: false };
    await redis.set(this.tombstoneKey(id), JSON.stringify(canceled), 'PX', ttl);
    // A queued job is removed; an active one is locked by its worker, which the channel reaches.
    if (view.job.state === 'queued') await found?.job.remove().catch(() => {});
    await redis.publish(this.cancelChannel, id);
    return 'canceled';
  }

  async list(state: JobState | undefined, limit: number): Promise<JobRecord[]> {
    const types = state === undefined ? ['waiting', 'delayed', 'active', 'completed', 'failed'] : bullStatesOf(state);
    const records: JobRecord[] = [];
    for (const lane of this.lanes.values()) {
      if (types.length === 0) break;
      for (const job of await lane.queue.getJobs(types as BullState[], 0, limit - 1, false)) {
        const record = await this.record(job as Job<JobData, JobReturn>, await job.getState());
        if (record && (state === undefined || record.state === state)) records.push(record);
      }
    }
    return records.sort((a, b) => b.createdAt - a.createdAt).slice(0, limit);
  }

  stats(): JobStats {
    let running = 0;
    for (const lane of this.lanes.values()) running += lane.running;
    return { ...this.snapshot, running_here: running };
  }

  async drain(graceMs: number): Promise<boolean> {
    this.closing = true;
    clearInterval(this.statsTimer);
    for (const id of this.watchers.ids()) this.notify(id);
    const results = await Promise.all([...this.lanes.values()].map((lane) => lane.close(graceMs)));
    return results.every(Boolean);
  }

  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.statsTimer);
    this.connection.disconnect();
  }

  private route(name: string): CompiledRoute {
    const routes = this.config.routes;
    return routes.find((r) => r.name === name) ?? routes.at(-1)!;
  }

  private laneFor(route: CompiledRoute): Lane {
    return this.lanes.get(route.job ? route.name : PREFER_LANE)!;
  }

  private async find(id: string): Promise<{ job: Job<JobData, JobReturn>; lane: Lane } | undefined> {
    for (const lane of this.lanes.values()) {
      const job = await lane.queue.getJob(id);
      if (job) return { job, lane };
    }
    return undefined;
  }

  private async record(job: Job<JobData, JobReturn>, state: BullState | 'unknown'): Promise<JobRecord | undefined> {
    const data = job.data;
    const ttl = (this.route(data.route).job ?? jobDefaults()).result_ttl;
    const mapped = sluiceState(state);
    if (!mapped) return undefined;
    const finishedAt = FINAL_STATES.has(mapped) ? job.finishedOn ?? Date.now() : null;
    // Finished and past result_ttl: absent, even before BullMQ's own clean-up removes it.
    if (finishedAt !== null && finishedAt + ttl <= Date.now()) return undefined;
    const error = mapped === 'failed' ? failure(job.failedReason) : mapped === 'queued' ? data.lastError : null;
    const hasResult = mapped === 'succeeded' ? job.returnvalue?.hasResult === true
      : mapped === 'failed' ? (await this.options.link.client.exists(this.resultKey(job.id!))) === 1 : false;
    return {
      id: job.id!, seq: job.timestamp, route: data.route, state: mapped, method: data.request.method, target: data.request.target,
      idempotencyKey: data.idempotencyKey, fingerprint: data.fingerprint, attempts: data.attempts, createdAt: data.createdAt,
      startedAt: job.processedOn ?? null, finishedAt, notBefore: data.notBefore, expiresAt: finishedAt === null ? null : finishedAt + ttl,
      error, hasResult, submissionTrace: data.submissionTrace,
    };
  }

  /** 1-based place in the lane's wait list (BullMQ pushes at the head and takes from the tail). */
  private async position(lane: Lane, id: string, state: BullState | 'unknown'): Promise<number> {
    const redis = this.options.link.client;
    const length = await redis.llen(lane.waitKey);
    if (state !== 'waiting') return length + 1;
    const index = await redis.lpos(lane.waitKey, id);
    return index === null ? 1 : length - index;
  }

  private async saveResult(id: string, result: StoredResult, ttlMs: number): Promise<void> {
    const key = this.resultKey(id);
    await this.options.link.client.multi()
      .hset(key, 'meta', JSON.stringify({ status: result.status, headers: result.headers }), 'body', result.body)
      .pexpire(key, ttlMs)
      .exec();
  }

  private async refreshStats(): Promise<void> {
    if (this.options.link.health !== 'up') return;
    try {
      const by = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
      let oldest: number | undefined;
      for (const lane of this.lanes.values()) {
        const c = await lane.queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed');
        by.queued += (c.waiting ?? 0) + (c.prioritized ?? 0) + (c.delayed ?? 0);
        by.running += c.active ?? 0;
        by.succeeded += c.completed ?? 0;
        by.failed += c.failed ?? 0;
        const [first] = await lane.queue.getJobs(['waiting'], 0, 0, true);
        if (first) oldest = Math.min(oldest ?? Infinity, first.timestamp);
      }
      this.snapshot = { ...this.snapshot, by_state: by, oldest_queued_age_ms: oldest === undefined ? 0 : Math.max(0, Date.now() - oldest) };
    } catch {
      // Keep the last snapshot; /status shows it until Redis answers again.
    }
  }

  private lastWarned = new Map<string, number>();

  /** BullMQ reports every failed reconnect; the Redis link already said Redis is down, so only other errors are news, once a minute. */
  private warnOnce(message: string, err: unknown): void {
    if (this.options.link.health !== 'up') return;
    const now = Date.now();
    if ((this.lastWarned.get(message) ?? 0) + 60_000 > now) return;
    this.lastWarned.set(message, now);
    this.options.warn(`${message}: ${err instanceof Error ? err.message : String(err)}`);
  }

  private notify(id: string): void {
    this.watchers.wake(id);
  }

  private idempotencyKey(route: string, key: string): string {
    return `${this.options.keyPrefix}jobs:idem:${route}:${createHash('sha256').update(key).digest('base64url')}`;
  }

  private resultKey(id: string): string {
    return `${this.options.keyPrefix}jobs:result:${id}`;
  }

  private tombstoneKey(id: string): string {
    return `${this.options.keyPrefix}jobs:canceled:${id}`;
  }
}

function sluiceState(state: BullState | 'unknown'): JobState | undefined {
  switch (state) {
    case 'waiting': case 'prioritized': case 'waiting-children': case 'delayed': return 'queued';
    case 'active': return 'running';
    case 'completed': return 'succeeded';
    case 'failed': return 'failed';
    default: return undefined;
  }
}

function bullStatesOf(state: JobState): string[] {
  return { queued: ['waiting', 'prioritized', 'delayed'], running: ['active'], succeeded: ['completed'], failed: ['failed'], canceled: [] }[state];
}

/** The failure Sluice recorded, or BullMQ's own words (a stalled job with on_restart: fail). */
function failure(reason: string | undefined): JobError {
  try {
    const parsed = JSON.parse(reason ?? '') as JobError;
    if (parsed && typeof parsed.code === 'string') return parsed;
  } catch { /* not ours */ }
  if (reason === 'job_canceled') return { code: 'job_canceled', message: 'canceled while running' };
  return { code: 'job_interrupted', message: `the instance running it stopped (${reason ?? 'no detail'})` };
}

function estimate(lane: Lane, job: JobRecord, position: number | undefined): number {
  const serviceMs = lane.serviceMs ?? 1_000;
  const now = Date.now();
  let ms: number;
  if (job.state === 'running') ms = Math.max(serviceMs - (now - (job.startedAt ?? now)), serviceMs / 4);
  else if (job.notBefore > now) ms = job.notBefore - now + serviceMs;
  else ms = Math.ceil((position ?? 1) / lane.max) * serviceMs;
  return Math.min(3600, Math.max(1, Math.ceil(ms / 1000)));
}

function bareRecord(id: string, route: string, method: string, target: string, fingerprint: string): JobRecord {
  const now = Date.now();
  return {
    id, seq: now, route, state: 'queued', method, target, idempotencyKey: null, fingerprint, attempts: 0, createdAt: now,
    startedAt: null, finishedAt: null, notBefore: 0, expiresAt: null, error: null, hasResult: false, submissionTrace: null,
  };
}
