import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Agent } from 'undici';
import { closeAgent, exchange, newAgent, outcomeOf, type Exchange } from './http.js';
import { finishTally, newTally, recordOutcome, type Outcome, type Tally, type WorkloadResult } from './outcome.js';
import { DEFAULT_TIMEOUT_MS } from './open-loop.js';

export interface SlowUploadSpec {
  name: string;
  origin: string;
  path: string;
  clients: number;
  /** Body size of each upload. */
  bytes: number;
  /** Pace of each client's body. */
  bytesPerSec: number;
  /** Clients start new uploads until this much time has passed. */
  durationS: number;
  /** Budget beyond the body's own transfer time. */
  timeoutMs?: number;
  tickMs?: number;
}

/** A body stream that releases `bytesPerSec` bytes per second in small ticks. */
export function pacedBody(data: Buffer, bytesPerSec: number, tickMs: number): Readable {
  const chunk = Math.max(1, Math.ceil((bytesPerSec * tickMs) / 1000));
  let offset = 0;
  let timer: NodeJS.Timeout | undefined;
  const stream = new Readable({
    read() {
      /* data is pushed by the pacing timer, not on demand */
    },
    destroy(err, cb) {
      clearInterval(timer);
      cb(err);
    },
  });
  const push = (): void => {
    if (offset >= data.length) {
      clearInterval(timer);
      stream.push(null);
      return;
    }
    stream.push(data.subarray(offset, offset + chunk));
    offset += chunk;
  };
  timer = setInterval(push, tickMs);
  push();
  return stream;
}

/** ok only when the server echoes the size and digest of what was sent. */
function verifyUpload(ex: Exchange, bytes: number, sha256: string): { outcome: Outcome; mismatch: boolean } {
  const outcome = outcomeOf(ex);
  if (outcome !== 'ok' || ex.kind !== 'response') return { outcome, mismatch: false };
  try {
    const doc = JSON.parse(ex.body.toString('utf8')) as { bytes?: number; sha256?: string };
    if (doc.bytes === bytes && doc.sha256 === sha256) return { outcome: 'ok', mismatch: false };
  } catch {
    /* fall through: an unparseable answer is a mismatch */
  }
  return { outcome: 'http_other', mismatch: true };
}

interface UploadCounters {
  mismatches: number;
}

async function uploadLoop(
  agent: Agent,
  spec: SlowUploadSpec,
  tally: Tally,
  counters: UploadCounters,
  endAt: number,
): Promise<void> {
  const data = randomBytes(spec.bytes);
  const sha256 = createHash('sha256').update(data).digest('hex');
  const transferMs = (spec.bytes / spec.bytesPerSec) * 1000;
  const budget = transferMs + (spec.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const maxUploads = Math.ceil((spec.durationS * 1000) / transferMs) + 1;
  // Every client uploads at least once, however short the run.
  for (let n = 0; n < maxUploads && (n === 0 || performance.now() < endAt); n++) {
    const started = performance.now();
    const body = pacedBody(data, spec.bytesPerSec, spec.tickMs ?? 100);
    tally.sent++;
    const ex = await exchange(agent, {
      origin: spec.origin,
      method: 'POST',
      path: spec.path,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(spec.bytes) },
      body,
      deadline: started + budget,
    });
    body.destroy();
    const { outcome, mismatch } = verifyUpload(ex, spec.bytes, sha256);
    if (mismatch) counters.mismatches++;
    recordOutcome(tally, outcome, performance.now() - started, ex.kind === 'response' ? ex.status : undefined);
  }
}

/**
 * N clients, each uploading back to back at a fixed byte rate until the duration ends.
 * Latency is upload start to response; its floor is bytes / bytesPerSec.
 */
export async function runSlowUploads(spec: SlowUploadSpec): Promise<WorkloadResult> {
  const agent = newAgent();
  const tally = newTally();
  const counters: UploadCounters = { mismatches: 0 };
  const t0 = performance.now();
  const endAt = t0 + spec.durationS * 1000;
  // Stagger starts (over a second at most) so the clients do not connect in one burst.
  const stagger = Math.min(1000, spec.durationS * 500) / Math.max(1, spec.clients);
  try {
    await Promise.all(
      Array.from({ length: spec.clients }, (_, c) =>
        new Promise((r) => setTimeout(r, c * stagger)).then(() => uploadLoop(agent, spec, tally, counters, endAt)),
      ),
    );
    const offeredRate = (spec.clients * spec.bytesPerSec) / spec.bytes;
    const wallS = (performance.now() - t0) / 1000;
    const tickMs = spec.tickMs ?? 100;
    const chunks = Math.ceil(spec.bytes / Math.ceil((spec.bytesPerSec * tickMs) / 1000));
    return finishTally(
      tally,
      { name: spec.name, kind: 'upload', offeredRate: Math.round(offeredRate * 100) / 100, durationS: spec.durationS, goodputWindowS: wallS },
      {
        clients: spec.clients,
        bytes: spec.bytes,
        bytesPerSec: spec.bytesPerSec,
        mismatches: counters.mismatches,
        wallS: Math.round(wallS * 100) / 100,
        // The last chunk leaves (chunks - 1) ticks after the first: no upload can be faster.
        transferFloorS: ((chunks - 1) * tickMs) / 1000,
      },
    );
  } finally {
    await closeAgent(agent);
  }
}
