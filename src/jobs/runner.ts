// Runs queued jobs through the shared slot queue. Each route has a lane that claims at most
// job.max_slots jobs at a time (in creation order) and asks the slot queue for a lease for
// each, in the group `job:<route>` capped at max_slots: so jobs never take more than their
// share, and the rest of a long backlog waits in the durable store, not in the interactive
// queue where it would count against queue limits and timeouts.
import type { CompiledConfig, CompiledRoute } from '../config/compile.js';
import type { RouteJobConfig } from '../config/schema.js';
import { SluiceError } from '../errors.js';
import type { SlotGroup, SlotLease, SlotQueue } from '../slots/slot-queue.js';
import type { JobAttemptOutcome, JobTracer } from '../telemetry/job-tracing.js';
import { decideEnd, runAttempt, type AttemptEnv } from './attempt.js';
import type { JobStore } from './store.js';
import type { JobRecord } from './types.js';

/** A job waits this long for a slot before it lets others try (it stays queued either way). */
const SLOT_WAIT_MS = 10 * 60_000;
/** Estimate used before a route has finished any attempt. */
const DEFAULT_SERVICE_MS = 1000;
const STORE_RETRY_MS = 1000;
const EWMA_WEIGHT = 0.3;
const TRACE_OUTCOME: Record<'succeeded' | 'failed' | 'queued', JobAttemptOutcome> = { succeeded: 'succeeded', failed: 'failed', queued: 'retrying' };

export interface JobSettings {
  readonly route: CompiledRoute;
  readonly job: Readonly<RouteJobConfig>;
}

class Lane {
  /** Claimed jobs (waiting for a slot, or running), by id; aborting one cancels its wait or call. */
  readonly claimed = new Map<string, AbortController>();
  readonly group: SlotGroup;
  timer: NodeJS.Timeout | undefined;
  /** After the slot queue refused a job (full, shed), the lane rests until then. */
  restUntil = 0;
  serviceMs: number | undefined;

  constructor(public settings: JobSettings, queue: SlotQueue) {
    this.group = queue.group(`job:${settings.route.name}`, { maxSlots: settings.job.max_slots });
  }

  recordDuration(ms: number): void {
    this.serviceMs = this.serviceMs === undefined ? ms : this.serviceMs + EWMA_WEIGHT * (ms - this.serviceMs);
  }
}

export interface RunnerOptions {
  config: CompiledConfig;
  readonly queue: SlotQueue;
  readonly attemptEnv: AttemptEnv;
  readonly store: () => JobStore;
  readonly tracer: JobTracer;
  /** Called after every state change a job goes through here. */
  readonly onChange: (id: string) => void;
  readonly warn: (message: string, err?: unknown) => void;
  readonly now: () => number;
}

export class JobRunner {
  private readonly lanes = new Map<string, Lane>();
  private readonly executions = new Set<Promise<void>>();
  /** Jobs whose backend call is in progress, with when this attempt started (epoch ms). */
  private readonly runningSince = new Map<string, number>();
  private stopping = false;

  constructor(private readonly options: RunnerOptions) {}

  /** A reload: jobs claimed from now on run with the new route settings and caps. */
  reconfigure(config: CompiledConfig): void {
    this.options.config = config;
    for (const [name, lane] of this.lanes) {
      lane.settings = this.settings(name);
      this.options.queue.reconfigureGroup(`job:${name}`, { maxSlots: lane.settings.job.max_slots, reservedSlots: 0 });
      this.poke(name);
    }
  }

  /** The route and job settings a job of this route runs with (defaults for Prefer jobs). */
  settings(routeName: string): JobSettings {
    const routes = this.options.config.routes;
    // A route removed from the config since the job was queued: the catch-all runs it.
    const route = routes.find((r) => r.name === routeName) ?? routes.at(-1)!;
    return { route, job: route.jobSettings };
  }

  /** Starts claiming due jobs of a route (after a submission, a finished attempt, or at start). Never throws. */
  poke(routeName: string): void {
    if (this.stopping) return;
    const lane = this.lane(routeName);
    clearTimeout(lane.timer);
    lane.timer = undefined;
    const now = this.options.now();
    if (now < lane.restUntil) return this.wakeAt(lane, routeName, lane.restUntil);
    try {
      const store = this.options.store();
      while (lane.claimed.size < lane.settings.job.max_slots) {
        const job = store.nextDue(routeName, new Set(lane.claimed.keys()), now);
        if (!job) break;
        this.start(lane, job);
      }
      const wake = store.nextWakeAt(routeName, now);
      if (wake !== undefined) this.wakeAt(lane, routeName, wake);
    } catch (err) {
      // The store failed to read (disk trouble): the jobs are still there; look again soon.
      this.options.warn(`jobs of route ${routeName} could not be read from the store`, err);
      this.wakeAt(lane, routeName, now + STORE_RETRY_MS);
    }
  }

  /** Cancels a job's wait for a slot or its backend call. */
  abort(id: string, reason: SluiceError): void {
    for (const lane of this.lanes.values()) lane.claimed.get(id)?.abort(reason);
  }

  get runningCount(): number {
    let n = 0;
    for (const lane of this.lanes.values()) n += lane.group.inflight;
    return n;
  }

  /** Seconds until the job is likely done, for Retry-After: from recent attempt durations and its place in line. */
  estimateSeconds(job: JobRecord, position: number | undefined): number {
    const lane = this.lane(job.route);
    const serviceMs = lane.serviceMs ?? DEFAULT_SERVICE_MS;
    const now = this.options.now();
    let ms: number;
    // Past the usual duration, the end is not predictable: poll a few times per duration.
    if (job.state === 'running') ms = Math.max(serviceMs - (now - (this.runningSince.get(job.id) ?? now)), serviceMs / 4);
    else if (job.notBefore > now) ms = job.notBefore - now + serviceMs;
    else ms = Math.ceil((position ?? 1) / lane.settings.job.max_slots) * serviceMs;
    return Math.min(3600, Math.max(1, Math.ceil(ms / 1000)));
  }

  /**
   * Stops claiming jobs and gives running attempts until the grace period to finish. Jobs
   * still waiting for a slot stay queued; attempts cut off stay `running` in the store and
   * are handled per on_restart at the next start.
   */
  async drain(graceMs: number): Promise<boolean> {
    this.stopping = true;
    for (const lane of this.lanes.values()) {
      clearTimeout(lane.timer);
      for (const [id, abort] of lane.claimed) if (!this.runningSince.has(id)) abort.abort(new SluiceError('shutting_down'));
    }
    let timer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      Promise.allSettled([...this.executions]).then(() => true),
      new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), graceMs); }),
    ]);
    clearTimeout(timer);
    if (!drained) {
      for (const lane of this.lanes.values()) for (const abort of lane.claimed.values()) abort.abort(new SluiceError('shutting_down'));
      await Promise.allSettled([...this.executions]);
    }
    return drained;
  }

  private lane(routeName: string): Lane {
    let lane = this.lanes.get(routeName);
    if (!lane) {
      lane = new Lane(this.settings(routeName), this.options.queue);
      this.lanes.set(routeName, lane);
    }
    return lane;
  }

  private wakeAt(lane: Lane, routeName: string, at: number): void {
    clearTimeout(lane.timer);
    lane.timer = setTimeout(() => this.poke(routeName), Math.max(0, at - this.options.now()));
    lane.timer.unref();
  }

  private start(lane: Lane, job: JobRecord): void {
    const abort = new AbortController();
    lane.claimed.set(job.id, abort);
    const execution = this.execute(lane, job, abort.signal)
      .catch((err: unknown) => this.options.warn(`job ${job.id.slice(0, 8)}: attempt bookkeeping failed`, err))
      .finally(() => {
        lane.claimed.delete(job.id);
        this.runningSince.delete(job.id);
        this.executions.delete(execution);
        this.poke(job.route);
      });
    this.executions.add(execution);
  }

  private async execute(lane: Lane, job: JobRecord, signal: AbortSignal): Promise<void> {
    const lease = await this.acquire(lane, job, signal);
    if (!lease) return;
    if (signal.aborted) {
      // Granted in the same tick it was canceled or Sluice began stopping.
      lease.release();
      return;
    }
    const store = this.options.store();
    let request;
    try {
      request = store.startAttempt(job.id, this.options.now());
    } catch (err) {
      lease.release();
      throw err;
    }
    if (!request) {
      // Canceled while it waited for the slot.
      lease.release();
      return;
    }
    this.runningSince.set(job.id, this.options.now());
    this.options.onChange(job.id);
    const attempt = job.attempts + 1;
    const { route, job: settings } = lane.settings;
    const trace = this.options.tracer.attemptStarted({
      id: job.id, route: job.route, method: job.method, attempt, submission: job.submissionTrace ?? undefined,
    });
    const outcome = await runAttempt(this.options.attemptEnv, { jobId: job.id, route, job: settings, request, lease, signal, trace });
    // Canceled (already recorded) or cut off by shutdown (left running for the next start).
    if (outcome.kind === 'error' && signal.aborted) {
      trace.end('failed', outcome.error.code);
      return;
    }
    lane.recordDuration(outcome.durationMs);
    const end = decideEnd(outcome, attempt, settings, this.options.now());
    trace.end(TRACE_OUTCOME[end.state], end.error?.code);
    if (store.endAttempt(job.id, end)) this.options.onChange(job.id);
  }

  private async acquire(lane: Lane, job: JobRecord, signal: AbortSignal): Promise<SlotLease | undefined> {
    const { route } = lane.settings;
    try {
      return await this.options.queue.acquire({
        group: lane.group,
        priorityRank: route.priorityRank,
        queueTimeoutMs: SLOT_WAIT_MS,
        signal,
        // The id is a capability: views and logs get a prefix that cannot be used to read the job.
        info: { requestId: `job:${job.id.slice(0, 8)}`, method: job.method, path: job.target.split('?')[0]! },
      });
    } catch (err) {
      if (!signal.aborted) {
        const seconds = err instanceof SluiceError ? err.retryAfterSeconds ?? 1 : 1;
        lane.restUntil = this.options.now() + Math.max(1, seconds) * 1000;
      }
      return undefined;
    }
  }
}
