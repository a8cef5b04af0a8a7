import { DEFAULT_TIMEOUT_MS } from './open-loop.js';
import { deliveryWindowS, finishTally, newTally, recordOutcome, type WorkloadResult } from './outcome.js';
import { RawConnection, type RawAnswer } from './raw-http.js';
import { runSchedule } from './schedule.js';

export interface IdleConnSpec {
  name: string;
  host: string;
  port: number;
  path: string;
  connections: number;
  /** Each connection sends one request per interval. */
  intervalS: number;
  durationS: number;
  timeoutMs?: number;
  /** Connects in flight at once while opening; keeps the listen backlog from overflowing. */
  connectConcurrency?: number;
  /** Stop opening new connections after this long. */
  connectPhaseMs?: number;
}

/** Opens all connections with bounded concurrency and a bounded phase time. */
async function openAll(spec: IdleConnSpec, conns: RawConnection[]): Promise<{ opened: number; failed: number; ms: number }> {
  const t0 = performance.now();
  const phaseEnd = t0 + (spec.connectPhaseMs ?? 60_000);
  let nextIndex = 0;
  let opened = 0;
  let failed = 0;
  const worker = async (): Promise<void> => {
    while (nextIndex < conns.length) {
      const conn = conns[nextIndex++];
      if (!conn) break;
      if (performance.now() > phaseEnd) {
        failed++;
        continue;
      }
      if (await conn.connect()) opened++;
      else failed++;
    }
  };
  const workers = Math.min(spec.connectConcurrency ?? 200, conns.length);
  await Promise.all(Array.from({ length: workers }, worker));
  return { opened, failed, ms: Math.round(performance.now() - t0) };
}

function countOpen(conns: RawConnection[]): number {
  let n = 0;
  for (const c of conns) if (c.open) n++;
  return n;
}

/**
 * C keep-alive connections, each sending GET path every intervalS for durationS. The
 * sends are spread evenly (connection i at offset i*interval/C), which makes the whole
 * thing an open-loop schedule at C/interval requests per second.
 */
export async function runIdleConnections(spec: IdleConnSpec): Promise<WorkloadResult> {
  const tally = newTally();
  const conns = Array.from({ length: spec.connections }, () => new RawConnection(spec.host, spec.port, 10_000));
  const timeoutMs = spec.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const openSamples: number[] = [];
  let sampler: NodeJS.Timeout | undefined;
  try {
    const connectPhase = await openAll(spec, conns);
    sampler = setInterval(() => openSamples.push(countOpen(conns)), 1000);
    const rate = spec.connections / spec.intervalS;
    let firstAt = 0;
    const report = await runSchedule(
      { rate, durationS: spec.durationS, drainTimeoutMs: timeoutMs + 2_000, lag: tally.sendLag },
      async (i, at) => {
        if (i === 0) firstAt = at;
        tally.sent++;
        const conn = conns[i % conns.length];
        const answer: RawAnswer = conn ? await conn.get(spec.path, at + timeoutMs) : { outcome: 'conn_error' };
        recordOutcome(tally, answer.outcome, performance.now() - at, answer.status);
      },
    );
    clearInterval(sampler);
    const openAtEnd = countOpen(conns);
    return finishTally(
      tally,
      { name: spec.name, kind: 'idle', offeredRate: rate, durationS: spec.durationS, goodputWindowS: deliveryWindowS(tally, firstAt, spec.durationS) },
      {
        connections: spec.connections,
        connectPhase,
        openAtEnd,
        openMin: openSamples.length ? Math.min(...openSamples) : openAtEnd,
        closedByServer: conns.reduce((n, c) => n + c.closedByServer, 0),
        reconnects: conns.reduce((n, c) => n + c.reconnects, 0),
        unsettled: report.unsettled,
      },
    );
  } finally {
    clearInterval(sampler);
    for (const c of conns) c.destroy();
  }
}
