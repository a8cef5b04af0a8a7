import type { Agent } from 'undici';
import { closeAgent, exchange, newAgent, outcomeOf } from './http.js';
import { followJob, type JobPolling } from './jobs.js';
import { makeKeySampler, type KeySpec } from './keys.js';
import { newHistogram, recordMs, summarize } from './histogram.js';
import { deliveryWindowS, finishTally, newTally, recordOutcome, round2, type Tally, type WorkloadResult } from './outcome.js';
import { runSchedule } from './schedule.js';

export const DEFAULT_TIMEOUT_MS = 10_000;

export interface OpenLoopSpec {
  name: string;
  /** e.g. http://127.0.0.1:8000 */
  origin: string;
  method: 'GET' | 'POST';
  /** Path template; `{key}` is replaced by a sampled key. */
  path: string;
  keys: KeySpec;
  rate: number;
  durationS: number;
  timeoutMs?: number;
  headers?: Record<string, string>;
  /** Request body for POSTs; the index makes each one distinct. */
  body?: (i: number) => string;
  /** When set, a 202 with Location is a job: poll it, and count the job's result. */
  jobs?: JobPolling;
  seed?: number;
  /** Share an agent (and its warm connections) across runs; the caller closes it. */
  agent?: Agent;
}

interface JobStats {
  submitLatency: ReturnType<typeof newHistogram>;
  accepted: number;
  polls: number;
}

async function oneRequest(
  agent: Agent,
  spec: OpenLoopSpec,
  tally: Tally,
  jobStats: JobStats,
  path: string,
  i: number,
  scheduledAt: number,
): Promise<void> {
  const timeoutMs = spec.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const ex = await exchange(agent, {
    origin: spec.origin,
    method: spec.method,
    path,
    headers: spec.headers,
    body: spec.body?.(i),
    deadline: scheduledAt + timeoutMs,
  });
  if (spec.jobs && ex.kind === 'response' && ex.status === 202) {
    // The submit latency is what the interactive client felt; completion is separate.
    recordMs(jobStats.submitLatency, performance.now() - scheduledAt);
    jobStats.accepted++;
    const job = await followJob(agent, ex, spec.origin, scheduledAt + spec.jobs.timeoutMs, spec.jobs);
    jobStats.polls += job.polls;
    recordOutcome(tally, job.outcome, performance.now() - scheduledAt, job.status);
    return;
  }
  recordOutcome(tally, outcomeOf(ex), performance.now() - scheduledAt, ex.kind === 'response' ? ex.status : undefined);
}

/** Runs one open-loop HTTP workload and returns its summary. */
export async function runOpenLoop(spec: OpenLoopSpec): Promise<WorkloadResult> {
  const agent = spec.agent ?? newAgent();
  const tally = newTally();
  const jobStats: JobStats = { submitLatency: newHistogram(), accepted: 0, polls: 0 };
  const nextKey = makeKeySampler(spec.keys, spec.seed ?? 1);
  const timeoutMs = spec.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const drainMs = Math.max(timeoutMs, spec.jobs?.timeoutMs ?? 0) + 2_000;
  let firstAt = 0;
  try {
    const report = await runSchedule(
      { rate: spec.rate, durationS: spec.durationS, drainTimeoutMs: drainMs, lag: tally.sendLag },
      (i, at) => {
        if (i === 0) firstAt = at;
        tally.sent++;
        const path = spec.path.replace('{key}', encodeURIComponent(nextKey()));
        return oneRequest(agent, spec, tally, jobStats, path, i, at).catch(() => {
          recordOutcome(tally, 'conn_error', performance.now() - at);
        });
      },
    );
    const windowS = deliveryWindowS(tally, firstAt, spec.durationS);
    const extra: Record<string, unknown> = {
      planned: report.planned,
      deliveryWindowS: round2(windowS),
      sendWindowS: Math.round(report.sendWindowMs) / 1000,
      unsettled: report.unsettled,
    };
    if (spec.jobs) {
      extra.jobsAccepted = jobStats.accepted;
      extra.jobPolls = jobStats.polls;
      extra.submitLatency = summarize(jobStats.submitLatency);
    }
    return finishTally(
      tally,
      { name: spec.name, kind: 'open', offeredRate: spec.rate, durationS: spec.durationS, goodputWindowS: windowS },
      extra,
    );
  } finally {
    if (!spec.agent) await closeAgent(agent);
  }
}
