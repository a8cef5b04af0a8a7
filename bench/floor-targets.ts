// The cost targets Sluice is held to, as ratios to the Node floor measured in the same
// run (S6), plus the idle-connections budget (S5). Medians over the rounds are compared,
// so one disturbed round does not decide a verdict.
import type { RunResult } from './execute.js';
import type { ClosedGenerator } from './loadgen/index.js';
import type { FloorPlan, SystemName } from './scenarios.js';

export interface TargetCheck {
  name: string;
  /** The target in words, e.g. "≥ 0.75 x node-http". */
  limit: string;
  /** The measured value in words. */
  measured: string;
  value: number | null;
  /** null when a system it needs was not measured. */
  met: boolean | null;
}

export interface FloorSummary {
  generator: ClosedGenerator;
  plan: FloorPlan;
  targets: TargetCheck[];
}

/** One system on one workload, medians over the rounds that did not fail. */
export interface SystemMedians {
  system: SystemName;
  rounds: number;
  rps: number;
  p50: number;
  p99: number;
  cpuUsPerReq: number | null;
  rssMiB: number | null;
}

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function mediansOf(runs: RunResult[], workload: string, system: SystemName): SystemMedians | null {
  const mine = runs.filter((r) => r.system === system && !r.error && r.workloads[0]?.name === workload);
  if (mine.length === 0) return null;
  const w = mine.map((r) => r.workloads[0]!);
  const cpu = mine.flatMap((r) => (r.process?.cpuPerRequestUs == null ? [] : [r.process.cpuPerRequestUs]));
  const rss = mine.flatMap((r) => (r.process ? [r.process.rssMaxSampledMiB] : []));
  return {
    system, rounds: mine.length,
    rps: median(w.map((x) => x.goodput)), p50: median(w.map((x) => x.latency.p50)), p99: median(w.map((x) => x.latency.p99)),
    cpuUsPerReq: cpu.length ? median(cpu) : null, rssMiB: rss.length ? median(rss) : null,
  };
}

const r2 = (x: number): number => Math.round(x * 100) / 100;

function ratioCheck(name: string, a: number | null | undefined, b: number | null | undefined, op: '≥' | '≤', limit: number, floorName: string, unit: string): TargetCheck {
  const limitText = `${op} ${limit} x ${floorName}`;
  if (a == null || b == null || !(b > 0)) return { name, limit: limitText, measured: 'not measured', value: null, met: null };
  const ratio = a / b;
  return {
    name, limit: limitText, value: r2(ratio), met: op === '≥' ? ratio >= limit : ratio <= limit,
    measured: `${r2(ratio)} (${r2(a)} / ${r2(b)} ${unit})`,
  };
}

export function floorTargets(plan: FloorPlan, runs: RunResult[]): TargetCheck[] {
  const hitFloor = plan.workloads.find((w) => w.name === 'cache hit')?.floor ?? 'node-http';
  const uncFloor = plan.workloads.find((w) => w.name === 'uncacheable')?.floor ?? 'node-proxy';
  const hit = (s: SystemName) => mediansOf(runs, 'cache hit', s);
  const unc = (s: SystemName) => mediansOf(runs, 'uncacheable', s);
  const sluiceHit = hit('sluice');
  const traced = hit('sluice-traced');
  const tracingCost = sluiceHit && traced && sluiceHit.rps > 0 ? 1 - traced.rps / sluiceHit.rps : null;
  return [
    ratioCheck('cache hit: throughput', sluiceHit?.rps, hit(hitFloor)?.rps, '≥', 0.75, hitFloor, 'req/s'),
    ratioCheck('cache hit: p99', sluiceHit?.p99, hit(hitFloor)?.p99, '≤', 2, hitFloor, 'ms'),
    ratioCheck('uncacheable proxied: CPU per request', unc('sluice')?.cpuUsPerReq, unc(uncFloor)?.cpuUsPerReq, '≤', 1.3, uncFloor, 'µs'),
    {
      name: 'tracing at sample_ratio 0.1: cache-hit throughput cost',
      limit: '≤ 5% of untraced Sluice',
      value: tracingCost === null ? null : r2(tracingCost * 100),
      met: tracingCost === null ? null : tracingCost <= 0.05,
      measured: tracingCost === null ? 'not measured' : `${(tracingCost * 100).toFixed(1)}% (${r2(traced!.rps)} vs ${r2(sluiceHit!.rps)} req/s)`,
    },
  ];
}

/** Upper bounds for S5's Sluice runs: RSS while the connections are held, and p99 meanwhile. */
export const IDLE_RSS_LIMIT_MIB = 150;
export const IDLE_P99_LIMIT_MS = 20;

/** The worst run of each Sluice system of S5 (defaults, --compact-heap) against the idle-connection budget. */
export function idleTargets(runs: RunResult[], connections: number): TargetCheck[] {
  const held = `${connections.toLocaleString('en-US')} idle keep-alive clients`;
  return (['sluice', 'sluice-compact'] as const).flatMap((system): TargetCheck[] => {
    const label = system === 'sluice' ? 'Sluice' : 'Sluice --compact-heap';
    const mine = runs.filter((r) => r.system === system && !r.error && r.workloads[0]);
    if (mine.length === 0) {
      return [
        { name: `${held}: ${label} RSS while held`, limit: `≤ ${IDLE_RSS_LIMIT_MIB} MiB`, measured: 'not measured', value: null, met: null },
        { name: `${held}: ${label}, p99 of requests meanwhile`, limit: `≤ ${IDLE_P99_LIMIT_MS} ms`, measured: 'not measured', value: null, met: null },
      ];
    }
    const rss = Math.max(...mine.map((r) => r.process?.rssMaxSampledMiB ?? NaN));
    const p99 = Math.max(...mine.map((r) => r.workloads[0]!.latency.p99));
    return [
      { name: `${held}: ${label} RSS while held`, limit: `≤ ${IDLE_RSS_LIMIT_MIB} MiB`, value: rss, met: rss <= IDLE_RSS_LIMIT_MIB, measured: `${rss} MiB (highest sampled VmRSS, worst of ${mine.length} runs)` },
      { name: `${held}: ${label}, p99 of requests meanwhile`, limit: `≤ ${IDLE_P99_LIMIT_MS} ms`, value: p99, met: p99 <= IDLE_P99_LIMIT_MS, measured: `${p99} ms (worst of ${mine.length} runs)` },
    ];
  });
}
