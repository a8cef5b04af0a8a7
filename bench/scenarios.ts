import type { ClosedLoopSpec, IdleConnSpec, OpenLoopSpec, SlowUploadSpec } from './loadgen/index.js';

/**
 * Scenario definitions. A scenario says what load to offer; bench/execute.ts decides
 * where it goes (straight to the backend, or through Sluice) and what to measure.
 */

/** `sluice-compact`: Sluice started with --compact-heap (S5: what idle connections cost with the small-heap policy). */
export type SystemName = 'direct' | 'sluice' | 'sluice-traced' | 'sluice-compact' | 'node-http' | 'node-proxy';
export type Mode = 'full' | 'quick';
export type ScenarioId = 'S1' | 'S2' | 'S2b' | 'S3' | 'S4' | 'S5' | 'S6';

/** Workloads name their target-independent parts; the executor fills in the target. */
export type WorkloadDef =
  | { kind: 'open'; spec: Omit<OpenLoopSpec, 'origin'> }
  | { kind: 'upload'; spec: Omit<SlowUploadSpec, 'origin'> }
  | { kind: 'idle'; spec: Omit<IdleConnSpec, 'host' | 'port'> }
  | { kind: 'closed'; spec: Omit<ClosedLoopSpec, 'origin' | 'onMeasureStart' | 'onMeasureEnd'> };

export interface Scenario {
  id: ScenarioId;
  title: string;
  /** One line for the report: the load, in the words of the scenario table. */
  load: (mode: Mode) => string;
  /** Systems compared, in the order they alternate. */
  systems: readonly SystemName[];
  workloads: (mode: Mode) => WorkloadDef[];
  /** Set for S6: measured by bench/floor.ts in rounds instead of one run per system. */
  floor?: (mode: Mode) => FloorPlan;
}

const JOB_POLLING = { pollIntervalMs: 250, timeoutMs: 60_000 };

/** Quick mode: short runs and lower rates, still past the backend's capacity where it matters. */
const pick = <T>(mode: Mode, full: T, quick: T): T => (mode === 'full' ? full : quick);

/** Open-loop GETs of /api/live/{key}: `no-store` answers, so only slots can serve them. */
function liveEndpoint(mode: Mode, name: string, keys: OpenLoopSpec['keys'], fullRate: number, quickRate: number, seed?: number): WorkloadDef {
  return {
    kind: 'open',
    spec: {
      name,
      method: 'GET',
      path: '/api/live/{key}',
      keys,
      rate: pick(mode, fullRate, quickRate),
      durationS: pick(mode, 12, 3),
      ...(seed === undefined ? {} : { seed }),
    },
  };
}

function liveReads(mode: Mode, fullRate: number, quickRate: number): WorkloadDef {
  return liveEndpoint(mode, 'live reads', { kind: 'uniform', n: 1000 }, fullRate, quickRate, 3);
}

const S1: Scenario = {
  id: 'S1',
  title: 'hot reads',
  load: (m) => `GET /api/items/{zipf s=1.0 over 1,000 ids} at ${pick(m, '1,000', '600')} req/s`,
  systems: ['direct', 'sluice'],
  workloads: (mode) => [
    {
      kind: 'open',
      spec: {
        name: 'item reads',
        method: 'GET',
        path: '/api/items/{key}',
        keys: { kind: 'zipf', n: 1000, s: 1.0 },
        rate: pick(mode, 1000, 600),
        durationS: pick(mode, 12, 3),
        seed: 1,
      },
    },
  ],
};

/** Every request a different path: nothing to coalesce or cache, only slots to use. */
function uniqueReads(mode: Mode, fullRate: number, quickRate: number): WorkloadDef {
  return liveEndpoint(mode, 'unique reads', { kind: 'unique' }, fullRate, quickRate);
}

const S2: Scenario = {
  id: 'S2',
  title: 'unique overload',
  load: (m) => `GET /api/live/{unique} at ${pick(m, 750, 600)} req/s (capacity 500 req/s)`,
  systems: ['direct', 'node-proxy', 'sluice'],
  workloads: (mode) => [uniqueReads(mode, 750, 600)],
};

/** Below capacity: every slot must really be used for nobody to be refused. */
const S2b: Scenario = {
  id: 'S2b',
  title: 'unique reads at 80%',
  load: (m) => `GET /api/live/{unique} at ${pick(m, 400, 300)} req/s (80% of the 500 req/s capacity)`,
  systems: ['direct', 'node-proxy', 'sluice'],
  workloads: (mode) => [uniqueReads(mode, 400, 300)],
};

const S3: Scenario = {
  id: 'S3',
  title: 'slow uploaders',
  load: (m) =>
    `60 clients POST ${pick(m, '256', '64')} KiB at 32 KiB/s to /api/upload, plus GET /api/live/{key} at ${pick(m, 200, 100)} req/s`,
  systems: ['direct', 'sluice'],
  workloads: (mode) => [
    liveReads(mode, 200, 100),
    {
      kind: 'upload',
      spec: {
        name: 'slow uploads',
        path: '/api/upload',
        clients: 60,
        bytes: pick(mode, 256, 64) * 1024,
        bytesPerSec: 32 * 1024,
        durationS: pick(mode, 12, 3),
      },
    },
  ],
};

const S4: Scenario = {
  id: 'S4',
  title: 'long jobs mixed',
  load: (m) =>
    `POST /api/reports (2 s) at 15/s plus GET /api/live/{key} at 300/s for ${pick(m, 12, 3)} s; via Sluice reports are jobs (202, poll, result)`,
  systems: ['direct', 'sluice'],
  workloads: (mode) => [
    liveReads(mode, 300, 300),
    {
      kind: 'open',
      spec: {
        name: 'reports (completion)',
        method: 'POST',
        path: '/api/reports',
        keys: { kind: 'fixed', key: '' },
        rate: 15,
        durationS: pick(mode, 12, 3),
        headers: { 'content-type': 'application/json' },
        body: (i) => JSON.stringify({ report: i, kind: 'bench' }),
        jobs: JOB_POLLING,
      },
    },
  ],
};

const S5: Scenario = {
  id: 'S5',
  title: 'idle connections',
  load: (m) =>
    pick(m, '10,000 keep-alive connections, each GET /health every 10 s for 20 s', '1,000 keep-alive connections, each GET /health every 2 s for 4 s')
    + '; Sluice at its defaults and with --compact-heap',
  systems: ['direct', 'sluice', 'sluice-compact'],
  workloads: (mode) => [
    {
      kind: 'idle',
      spec: {
        name: 'idle connections',
        path: '/health',
        connections: pick(mode, 10_000, 1_000),
        intervalS: pick(mode, 10, 2),
        durationS: pick(mode, 20, 4),
      },
    },
  ],
};

/** Workloads of the floor comparison: each system is measured closed loop, in rounds. */
export interface FloorWorkload {
  name: string;
  path: string;
  /** Every request's URL different (a counter appended to the path). */
  unique: boolean;
  /** In the order they alternate within a round. */
  systems: readonly SystemName[];
  /** The system the ratios are taken against. */
  floor: SystemName;
}

export interface FloorPlan {
  rounds: number;
  connections: number;
  /** wrk threads. */
  threads: number;
  durationS: number;
  warmupS: number;
  workloads: FloorWorkload[];
}

/**
 * S6 measures what Sluice costs against the Node floor in the same run (bench/floor.ts):
 * a cache hit against bare node:http serving the same bytes (the Node proxy, which has to
 * go to the backend, and Sluice with tracing at 0.1 alongside), and an uncacheable proxied
 * request against node:http + one undici Pool (the backend direct for reference).
 */
const S6: Scenario = {
  id: 'S6',
  title: 'cost against the Node floor',
  load: (m) => {
    const p = floorPlan(m);
    return `closed loop, ${p.connections} connections (wrk -t${p.threads} when installed), ${p.durationS} s per measurement after ${p.warmupS} s warm-up, ` +
      `${p.rounds} round(s) alternating the systems; GET /api/items/1 (a cache hit in Sluice) and GET /health?c={unique} (the uncached health route)`;
  },
  systems: ['node-http', 'sluice', 'sluice-traced', 'node-proxy', 'direct'],
  workloads: () => [],
  floor: (m) => floorPlan(m),
};

function floorPlan(mode: Mode): FloorPlan {
  return {
    rounds: pick(mode, 3, 1),
    connections: pick(mode, 100, 50),
    threads: 2,
    durationS: pick(mode, 10, 3),
    warmupS: pick(mode, 2, 1),
    workloads: [
      { name: 'cache hit', path: '/api/items/1', unique: false, systems: ['node-http', 'sluice', 'sluice-traced', 'node-proxy'], floor: 'node-http' },
      { name: 'uncacheable', path: '/health?c=', unique: true, systems: ['node-proxy', 'sluice', 'direct'], floor: 'node-proxy' },
    ],
  };
}

export const SCENARIOS: readonly Scenario[] = [S1, S2, S2b, S3, S4, S5, S6];

export function findScenario(id: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.id.toLowerCase() === id.toLowerCase());
}

/** Highest open-loop arrival rate a scenario offers at once (for the generator self-check). */
export function peakOpenRate(s: Scenario, mode: Mode): number {
  let total = 0;
  for (const w of s.workloads(mode)) {
    if (w.kind === 'open') total += w.spec.rate;
    if (w.kind === 'idle') total += w.spec.connections / w.spec.intervalS;
  }
  return total;
}
