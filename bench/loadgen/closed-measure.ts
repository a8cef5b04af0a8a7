// One closed-loop measurement with whichever generator this machine has: wrk when it is
// on PATH, else the Node generator (bench/loadgen/closed-loop.ts). The measured window is
// bracketed by hooks so the caller samples the server's CPU over exactly that window.
import { runClosedLoop } from './closed-loop.js';
import type { WorkloadResult } from './outcome.js';
import { runWrk, wrkAvailable, wrkResult } from './wrk.js';

export type ClosedGenerator = 'wrk' | 'node';

export interface ClosedMeasureSpec {
  name: string;
  origin: string;
  path: string;
  /** Every request a different URL (a counter appended to the path). */
  unique: boolean;
  connections: number;
  /** wrk threads; the Node generator runs on this process's one event loop. */
  threads: number;
  durationS: number;
  /** Unmeasured lead-in: connections opened, both ends' JIT warm. */
  warmupS: number;
  onMeasureStart?: () => void;
  onMeasureEnd?: () => void;
}

/** `auto` takes wrk when it is installed. */
export function pickGenerator(choice: 'auto' | ClosedGenerator = 'auto'): ClosedGenerator {
  if (choice !== 'auto') return choice;
  return wrkAvailable() ? 'wrk' : 'node';
}

export async function measureClosedLoop(generator: ClosedGenerator, spec: ClosedMeasureSpec): Promise<WorkloadResult> {
  if (generator === 'node') {
    return runClosedLoop({
      name: spec.name, origin: spec.origin, path: spec.path, unique: spec.unique,
      concurrency: spec.connections, durationS: spec.durationS, warmupS: spec.warmupS,
      onMeasureStart: spec.onMeasureStart, onMeasureEnd: spec.onMeasureEnd,
    });
  }
  const wrk = { name: spec.name, origin: spec.origin, path: spec.path, unique: spec.unique, threads: spec.threads, connections: spec.connections };
  if (spec.warmupS > 0) await runWrk({ ...wrk, durationS: spec.warmupS });
  spec.onMeasureStart?.();
  try {
    const run = await runWrk({ ...wrk, durationS: spec.durationS });
    spec.onMeasureEnd?.();
    return wrkResult({ ...wrk, durationS: spec.durationS }, run);
  } catch (err) {
    spec.onMeasureEnd?.();
    throw err;
  }
}
