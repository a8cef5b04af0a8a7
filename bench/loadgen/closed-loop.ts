import { closeAgent, exchange, newAgent, outcomeOf } from './http.js';
import { DEFAULT_TIMEOUT_MS } from './open-loop.js';
import { finishTally, newTally, recordOutcome, type WorkloadResult } from './outcome.js';

export interface ClosedLoopSpec {
  name: string;
  origin: string;
  path: string;
  /** Append a sequence number to the path, so every request's URL is different. */
  unique?: boolean;
  /** Workers, each with one request outstanding at a time. */
  concurrency: number;
  durationS: number;
  /** Unmeasured lead-in that opens connections and warms the JIT on both ends. */
  warmupS: number;
  timeoutMs?: number;
  /** Called at the edges of the measured window (e.g. to sample server CPU there). */
  onMeasureStart?: () => void;
  onMeasureEnd?: () => void;
}

/**
 * Closed loop: throughput, not latency under a schedule, is the number here; each
 * worker sends its next request as soon as the previous one finished.
 */
export async function runClosedLoop(spec: ClosedLoopSpec): Promise<WorkloadResult> {
  const agent = newAgent();
  const tally = newTally();
  const timeoutMs = spec.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const t0 = performance.now();
  const measureFrom = t0 + spec.warmupS * 1000;
  const endAt = measureFrom + spec.durationS * 1000;
  let measuring = false;
  // The generator's own CPU in the window tells whether it, not the server, was the limit.
  let cpu0 = process.cpuUsage();
  let generatorCpuS = 0;
  const begin = (): void => {
    measuring = true;
    cpu0 = process.cpuUsage();
    spec.onMeasureStart?.();
  };
  const finish = (): void => {
    if (!measuring) return;
    measuring = false;
    const cpu = process.cpuUsage(cpu0);
    generatorCpuS = (cpu.user + cpu.system) / 1e6;
    spec.onMeasureEnd?.();
  };
  const startTimer = setTimeout(begin, spec.warmupS * 1000);
  const endTimer = setTimeout(finish, endAt - t0);
  let seq = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < endAt) {
      const sentAt = performance.now();
      const path = spec.unique ? `${spec.path}${seq++}` : spec.path;
      const ex = await exchange(agent, { origin: spec.origin, method: 'GET', path, deadline: sentAt + timeoutMs });
      if (!measuring) continue;
      tally.sent++;
      recordOutcome(tally, outcomeOf(ex), performance.now() - sentAt, ex.kind === 'response' ? ex.status : undefined);
    }
  };
  try {
    await Promise.all(Array.from({ length: spec.concurrency }, worker));
    finish();
    const result = finishTally(tally, { name: spec.name, kind: 'closed', offeredRate: 0, durationS: spec.durationS });
    result.offeredRate = result.goodput;
    result.extra = {
      generator: 'node',
      concurrency: spec.concurrency,
      warmupS: spec.warmupS,
      achievedRate: Math.round(tally.sent / spec.durationS),
      generatorCpuS: Math.round(generatorCpuS * 100) / 100,
    };
    return result;
  } finally {
    clearTimeout(startTimer);
    clearTimeout(endTimer);
    await closeAgent(agent);
  }
}
