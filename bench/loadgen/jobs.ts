import type { Agent } from 'undici';
import { exchange, headerValue, outcomeOf, type Exchange } from './http.js';
import type { Outcome } from './outcome.js';

export interface JobPolling {
  /** Fixed poll interval; sets the resolution of the measured completion time. */
  pollIntervalMs: number;
  /** Submit-to-result budget for one job. */
  timeoutMs: number;
}

export interface JobResult {
  outcome: Outcome;
  status?: number;
  polls: number;
}

const PENDING = new Set(['queued', 'running', 'pending', 'accepted']);

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function jobStatusWord(body: Buffer): string | undefined {
  try {
    const doc = JSON.parse(body.toString('utf8')) as { status?: unknown; state?: unknown };
    const word = doc.status ?? doc.state;
    return typeof word === 'string' ? word : undefined;
  } catch {
    return undefined;
  }
}

function pathOf(location: string, origin: string): { origin: string; path: string } {
  const u = new URL(location, origin);
  return { origin: u.origin, path: u.pathname + u.search };
}

/** Fetches the result resource a 303 points at; its status is the backend's original. */
async function fetchResult(agent: Agent, ex: Exchange & { kind: 'response' }, origin: string, deadline: number): Promise<JobResult> {
  const loc = headerValue(ex.headers, 'location');
  if (!loc) return { outcome: 'http_other', status: ex.status, polls: 0 };
  const target = pathOf(loc, origin);
  const res = await exchange(agent, { ...target, method: 'GET', deadline });
  return { outcome: outcomeOf(res), status: res.kind === 'response' ? res.status : undefined, polls: 0 };
}

/**
 * Polls a job's status resource (from the 202's Location) until it reports a terminal
 * state, then returns how the job ended. Bounded by count and by the deadline.
 */
export async function followJob(
  agent: Agent,
  submitted: Exchange & { kind: 'response' },
  origin: string,
  deadline: number,
  opts: JobPolling,
): Promise<JobResult> {
  const loc = headerValue(submitted.headers, 'location');
  if (!loc) return { outcome: 'http_other', status: submitted.status, polls: 0 };
  const target = pathOf(loc, origin);
  const maxPolls = Math.ceil(opts.timeoutMs / opts.pollIntervalMs) + 1;
  for (let polls = 1; polls <= maxPolls; polls++) {
    await sleep(opts.pollIntervalMs);
    if (performance.now() >= deadline) return { outcome: 'timeout', polls };
    const ex = await exchange(agent, { ...target, method: 'GET', deadline });
    if (ex.kind !== 'response') return { outcome: outcomeOf(ex), polls };
    if (ex.status === 303) return { ...(await fetchResult(agent, ex, target.origin, deadline)), polls };
    if (ex.status === 202) continue;
    if (ex.status !== 200) return { outcome: outcomeOf(ex), status: ex.status, polls };
    const word = jobStatusWord(ex.body);
    if (word && PENDING.has(word)) continue;
    if (word === 'failed' || word === 'error') return { outcome: 'http5xx', status: ex.status, polls };
    return { outcome: 'ok', status: ex.status, polls };
  }
  return { outcome: 'timeout', polls: maxPolls };
}
