// S6: Sluice against the Node floor, measured in the same run. Every system is started
// once; then each round measures every workload on every system in turn (a fresh
// closed-loop measurement each time), so machine drift over the run hits all alike.
import type { ExecEnv, RunResult } from './execute.js';
import { floorTargets } from './floor-targets.js';
import { measureClosedLoop, type ClosedGenerator, type WorkloadResult } from './loadgen/index.js';
import { MachineMeter, ProcSampler, type ProcessUsage } from './proc-stats.js';
import type { ScenarioResult } from './results-types.js';
import type { FloorPlan, FloorWorkload, Scenario, SystemName } from './scenarios.js';
import { startTarget, type Target } from './targets.js';

/** Responses of any status: what the server did work for. */
function completed(w: WorkloadResult): number {
  return w.counts.ok + w.counts.shed + w.counts.http5xx + w.counts.http_other;
}

/** The process whose CPU a system's measurement charges: the server, or for `direct` the backend. */
function measuredPid(target: Target, env: ExecEnv): number | undefined {
  return target.pid ?? (target.system === 'direct' ? env.backendPid : undefined);
}

async function measureOne(w: FloorWorkload, target: Target, round: number, plan: FloorPlan, generator: ClosedGenerator, env: ExecEnv): Promise<RunResult> {
  const started = performance.now();
  const run: RunResult = {
    system: target.system, iteration: round, startedAt: new Date().toISOString(), wallS: 0, workloads: [], backend: null,
    process: null, generatorCpuS: 0, machine: null, backendSettleMs: null,
  };
  const pid = measuredPid(target, env);
  const sampler = pid !== undefined ? new ProcSampler(pid) : undefined;
  let usage: ProcessUsage | undefined;
  let meter: MachineMeter | undefined;
  const cpu0 = process.cpuUsage();
  try {
    const result = await measureClosedLoop(generator, {
      name: w.name, origin: target.origin, path: w.path, unique: w.unique,
      connections: plan.connections, threads: plan.threads, durationS: plan.durationS, warmupS: plan.warmupS,
      onMeasureStart: () => {
        meter = new MachineMeter([process.pid, ...(pid === undefined ? [] : [pid])]);
        sampler?.start();
      },
      onMeasureEnd: () => {
        usage = sampler?.stop();
      },
    });
    run.workloads = [result];
    if (meter) run.machine = { ...meter.stop(), backendAccounted: env.backendPid !== undefined };
    if (usage) {
      const n = completed(result);
      run.process = { ...usage, cpuPerRequestUs: n > 0 ? Math.round(((usage.cpuS * 1e6) / n) * 10) / 10 : null };
    }
  } catch (err) {
    run.error = `${w.name}: ${err instanceof Error ? err.message : String(err)}`;
    env.log(`S6 ${target.system} #${round}: failed: ${run.error}`);
  }
  const cpu = process.cpuUsage(cpu0);
  run.generatorCpuS = Math.round((cpu.user + cpu.system) / 1e4) / 100;
  run.wallS = Math.round(performance.now() - started) / 1000;
  return run;
}

export async function runFloor(s: Scenario, plan: FloorPlan, env: ExecEnv, generator: ClosedGenerator): Promise<ScenarioResult> {
  const systems = [...new Set(plan.workloads.flatMap((w) => w.systems))];
  const targets = new Map<SystemName, Target>();
  const runs: RunResult[] = [];
  try {
    for (const system of systems) targets.set(system, await startTarget(system, env, '/api/items/1'));
    for (let round = 1; round <= plan.rounds; round++) {
      for (const w of plan.workloads) {
        for (const system of w.systems) {
          const run = await measureOne(w, targets.get(system)!, round, plan, generator, env);
          const r = run.workloads[0];
          if (r) env.log(`S6 ${w.name} ${system} #${round}: ${Math.round(r.goodput)} req/s, p99 ${r.latency.p99} ms, ${run.process?.cpuPerRequestUs ?? '–'} µs CPU/req`);
          runs.push(run);
        }
      }
    }
  } finally {
    for (const t of targets.values()) await t.stop();
  }
  return {
    id: s.id, title: s.title, load: s.load(env.mode), systems, runs,
    floor: { generator, plan, targets: floorTargets(plan, runs) },
  };
}
