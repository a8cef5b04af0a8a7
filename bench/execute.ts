import {
  runClosedLoop,
  runIdleConnections,
  runOpenLoop,
  runSlowUploads,
  type WorkloadResult,
} from './loadgen/index.js';
import { readBackendStats, resetBackendStats, waitBackendIdle, type BackendStats } from './backend-stats.js';
import { MachineMeter, ProcSampler, type MachineLoad, type ProcessUsage } from './proc-stats.js';
import type { Mode, Scenario, SystemName, WorkloadDef } from './scenarios.js';
import { startTarget, type Target, type TargetEnv } from './targets.js';

export interface RunResult {
  system: SystemName;
  iteration: number;
  startedAt: string;
  wallS: number;
  workloads: WorkloadResult[];
  /** Backend counters for this run, read after the backend went idle again. */
  backend: BackendStats | null;
  /** Sluice (or the node:http baseline) during the load window. */
  process: (ProcessUsage & { cpuPerRequestUs: number | null }) | null;
  /** CPU seconds of the bench process itself (generator) during the run. */
  generatorCpuS: number;
  /** Whole-machine CPU during the load, and the part used by unrelated processes. */
  machine: (MachineLoad & { backendAccounted: boolean }) | null;
  /** Milliseconds spent waiting for the backend to finish leftovers before the run. */
  backendSettleMs: number | null;
  sluiceStatus?: unknown;
  error?: string;
}

export interface ExecEnv extends TargetEnv {
  mode: Mode;
  log: (line: string) => void;
}

/** Longest wait for a backend to work off its backlog between runs. */
const SETTLE_MAX_MS = 90_000;

function workloadRunner(def: WorkloadDef, target: Target, sampler: ProcSampler | undefined, usage: { value?: ProcessUsage }) {
  switch (def.kind) {
    case 'open':
      return runOpenLoop({ ...def.spec, origin: target.origin });
    case 'upload':
      return runSlowUploads({ ...def.spec, origin: target.origin });
    case 'idle':
      return runIdleConnections({ ...def.spec, host: target.host, port: target.port });
    case 'closed':
      // Closed loop measures CPU per request, so sampling follows its measured window.
      return runClosedLoop({
        ...def.spec,
        origin: target.origin,
        onMeasureStart: () => sampler?.start(),
        onMeasureEnd: () => {
          if (sampler) usage.value = sampler.stop();
        },
      });
  }
}

async function fetchStatus(adminUrl: string | undefined): Promise<unknown> {
  if (!adminUrl) return undefined;
  try {
    const res = await fetch(new URL('/status', adminUrl), { signal: AbortSignal.timeout(3_000) });
    const text = await res.text();
    // Keep the report small: a status document that huge is not worth storing per run.
    return text.length < 50_000 ? JSON.parse(text) : { truncated: true, bytes: text.length };
  } catch {
    return undefined;
  }
}

function okRequests(results: WorkloadResult[]): number {
  return results.reduce((n, r) => n + r.counts.ok, 0);
}

async function loadTarget(defs: WorkloadDef[], target: Target, backendPid: number | undefined) {
  const ownPids = [process.pid, target.pid, backendPid].filter((p): p is number => p !== undefined);
  const meter = new MachineMeter(ownPids);
  const sampler = target.pid !== undefined ? new ProcSampler(target.pid) : undefined;
  const usage: { value?: ProcessUsage } = {};
  const closedLoop = defs.some((d) => d.kind === 'closed');
  if (!closedLoop) sampler?.start();
  const cpu0 = process.cpuUsage();
  const workloads = await Promise.all(defs.map((d) => workloadRunner(d, target, sampler, usage)));
  const cpu = process.cpuUsage(cpu0);
  if (!closedLoop && sampler) usage.value = sampler.stop();
  const machine = meter.stop();
  return { workloads, usage: usage.value, machine, generatorCpuS: Math.round((cpu.user + cpu.system) / 1e4) / 100 };
}

/** One scenario on one system: settle, reset, start the target, load it, collect. */
export async function runOnce(s: Scenario, system: SystemName, iteration: number, env: ExecEnv): Promise<RunResult> {
  const started = performance.now();
  const base: RunResult = {
    system, iteration, startedAt: new Date().toISOString(), wallS: 0, workloads: [], backend: null,
    process: null, generatorCpuS: 0, machine: null, backendSettleMs: null,
  };
  let target: Target | undefined;
  try {
    base.backendSettleMs = await waitBackendIdle(env.backendUrl, SETTLE_MAX_MS);
    await resetBackendStats(env.backendUrl);
    target = await startTarget(system, env, '/api/items/1');
    env.log(`${s.id} ${system} #${iteration}: load on ${target.origin}`);
    const { workloads, usage, machine, generatorCpuS } = await loadTarget(s.workloads(env.mode), target, env.backendPid);
    base.workloads = workloads;
    base.generatorCpuS = generatorCpuS;
    base.machine = { ...machine, backendAccounted: env.backendPid !== undefined };
    if (usage) {
      const ok = okRequests(workloads);
      base.process = { ...usage, cpuPerRequestUs: ok > 0 ? Math.round((usage.cpuS * 1e6) / ok) : null };
    }
    base.sluiceStatus = await fetchStatus(target.adminUrl);
    await target.stop();
    target = undefined;
    // Executions include work the backend still runs for clients that already left.
    await waitBackendIdle(env.backendUrl, SETTLE_MAX_MS);
    base.backend = await readBackendStats(env.backendUrl);
  } catch (err) {
    base.error = err instanceof Error ? err.message : String(err);
    env.log(`${s.id} ${system} #${iteration}: failed: ${base.error}`);
  } finally {
    await target?.stop();
    base.wallS = Math.round(performance.now() - started) / 1000;
  }
  return base;
}
