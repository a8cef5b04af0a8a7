// What the pipeline, the job resources and the admin server need from long jobs, whichever
// queue runs them: the in-process JobService (SQLite or memory store) on one instance, or
// the BullMQ-backed jobs of a cluster (src/cluster/bull-jobs.ts), where a job submitted on
// one instance can be polled, cancelled and run on any. Reads are async because a shared
// queue lives across the network; stats() stays synchronous for /status and is allowed to
// be a recent snapshot.
import type { CompiledConfig, CompiledRoute } from '../config/compile.js';
import type { JobTracer } from '../telemetry/job-tracing.js';
import type { JobService, JobStats, JobView, Submission } from './service.js';
import type { JobRecord, JobState, StoredResult } from './types.js';

export interface JobApi {
  readonly prefix: string;
  readonly tracer: JobTracer;
  start(): void;
  /** A reload: routes' job settings for jobs started from now on. */
  reconfigure(config: CompiledConfig): void;
  isJobRoute(route: CompiledRoute): boolean;
  routeWaitMs(route: CompiledRoute): number;
  /** Durable before it resolves: a 202 is only ever sent for a stored job. */
  submit(submission: Submission, idempotencyKey: string | undefined, traceSubmission: (jobId: string) => string | undefined): Promise<{ view: JobView; created: boolean }>;
  view(id: string): Promise<JobView | undefined>;
  result(id: string): Promise<StoredResult | undefined>;
  waitFor(id: string, done: (job: JobRecord) => boolean, timeoutMs: number, signal: AbortSignal): Promise<JobRecord | undefined>;
  cancelOrDelete(id: string): Promise<'canceled' | 'deleted' | undefined>;
  list(state: JobState | undefined, limit: number): Promise<JobRecord[]>;
  stats(): JobStats;
  drain(graceMs: number): Promise<boolean>;
  close(): Promise<void>;
}

/** The in-process job service behind the async interface (its calls are synchronous underneath). */
export function localJobApi(service: JobService): JobApi {
  return {
    prefix: service.prefix,
    tracer: service.tracer,
    start: () => service.start(),
    reconfigure: (config) => service.reconfigure(config),
    isJobRoute: (route) => service.isJobRoute(route),
    routeWaitMs: (route) => service.routeWaitMs(route),
    submit: async (submission, key, trace) => service.submit(submission, key, trace),
    view: async (id) => service.view(id),
    result: async (id) => service.result(id),
    waitFor: (id, done, timeoutMs, signal) => service.waitFor(id, done, timeoutMs, signal),
    cancelOrDelete: async (id) => service.cancelOrDelete(id),
    list: async (state, limit) => service.list(state, limit),
    stats: () => service.stats(),
    drain: (graceMs) => service.drain(graceMs),
    close: async () => service.close(),
  };
}
