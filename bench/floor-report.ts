// Markdown for S6 (Sluice against the Node floor) and for the cost targets.
import type { RunResult } from './execute.js';
import { idleTargets, mediansOf, type TargetCheck } from './floor-targets.js';
import type { WorkloadResult } from './loadgen/index.js';
import type { BenchResults, ScenarioResult } from './results-types.js';

const fmt = (x: number | null | undefined, digits = 0): string =>
  x === null || x === undefined || Number.isNaN(x) ? '–' : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

const ms = (x: number | null | undefined): string => (x != null && x >= 100 ? fmt(x) : fmt(x, 2));

function errors(w: WorkloadResult): string {
  const n = w.sent - w.counts.ok;
  return n > 0 ? fmt(n) : '0';
}

function roundRow(run: RunResult): string {
  const w = run.workloads[0];
  if (run.error || !w) return `| ${run.system} | ${run.iteration} | failed: ${(run.error ?? 'no result').split('\n')[0]} | | | | | | | |`;
  const p = run.process;
  return `| ${run.system} | ${run.iteration} | ${fmt(w.goodput)} | ${ms(w.latency.p50)} | ${ms(w.latency.p99)} | ${ms(w.latency.max)} | ${errors(w)} | ${fmt(p?.cpuPerRequestUs, 1)} | ${fmt(p?.rssMaxSampledMiB, 1)} | ${fmt(run.machine?.busyCores, 2)} / ${fmt(run.machine?.otherCores, 2)} |`;
}

function workloadTables(s: ScenarioResult, name: string, systems: readonly string[], floor: string): string[] {
  // A failed measurement has no workload result; its error starts with the workload's name.
  const runs = s.runs.filter((r) => r.workloads[0]?.name === name || r.error?.startsWith(`${name}: `));
  const med = systems.map((sys) => mediansOf(s.runs, name, sys as RunResult['system']));
  const base = med.find((m) => m?.system === floor);
  const ratio = (a: number | null | undefined, b: number | null | undefined): string => (a != null && b != null && b > 0 ? fmt(a / b, 2) : '–');
  return [
    `### ${name}`,
    '',
    `Medians over the rounds; ratios to ${floor}.`,
    '',
    '| system | rounds | req/s | p50 ms | p99 ms | CPU µs / request | RSS MiB | req/s ratio | p99 ratio | CPU ratio |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
    ...med.flatMap((m) => (m ? [`| ${m.system} | ${m.rounds} | ${fmt(m.rps)} | ${ms(m.p50)} | ${ms(m.p99)} | ${fmt(m.cpuUsPerReq, 1)} | ${fmt(m.rssMiB, 1)} | ${ratio(m.rps, base?.rps)} | ${ratio(m.p99, base?.p99)} | ${ratio(m.cpuUsPerReq, base?.cpuUsPerReq)} |`] : [])),
    '',
    'Each measurement:',
    '',
    '| system | round | req/s | p50 ms | p99 ms | max ms | errors | CPU µs / request | RSS MiB | machine busy / other cores |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
    ...runs.map(roundRow),
    '',
  ];
}

export function targetsTable(checks: TargetCheck[]): string[] {
  const verdict = (m: boolean | null): string => (m === null ? 'not measured' : m ? 'met' : '**missed**');
  return [
    '| target | limit | measured | verdict |',
    '|---|---|---|---|',
    ...checks.map((c) => `| ${c.name} | ${c.limit} | ${c.measured} | ${verdict(c.met)} |`),
    '',
  ];
}

export function floorSection(s: ScenarioResult): string {
  const f = s.floor!;
  const p = f.plan;
  const gen = f.generator === 'wrk'
    ? `wrk -t${p.threads} -c${p.connections} -d${p.durationS}s --latency (Lua done() hook for the percentiles; statuses ≥ 400 count as errors)`
    : `the Node closed-loop generator with ${p.connections} connections (wrk not found on PATH; on 2 cores it may not saturate bare node:http, which flatters the ratios)`;
  return [
    `## ${s.id} ${s.title}`,
    '',
    `Load: ${s.load}.`,
    '',
    `- Generator: ${gen}. Each measurement follows its own ${p.warmupS} s warm-up on the same system.`,
    `- ${p.rounds} round(s); within a round: ${p.workloads.map((w) => `${w.name}: ${w.systems.join(', ')}`).join('; ')}. Every system was started once and kept running.`,
    '- CPU µs / request: utime + stime of the serving process (/proc/<pid>/stat) over the measured window, divided by its completed responses; for `direct`, the test backend\'s process. RSS: highest VmRSS sampled in the window. Machine cores: busy on the whole machine, and of those not the bench process or the measured server — wrk (about a core when it saturates a server) and anything else running.',
    '- node-http: bare node:http answering the bytes and headers the backend gives for /api/items/1. node-proxy: node:http + one undici Pool of `slots` connections, no queue or cache. node-proxy on the cache hit goes to the backend (100 ms, 50 slots): for reference only.',
    '- sluice: the bench configuration (below) with its default logging: level info, one access line per request written to a file. sluice-traced: the same with tracing exported over OTLP/HTTP at sample_ratio 0.1 to a sink process that discards spans.',
    '',
    '### Targets',
    '',
    ...targetsTable(f.targets),
    ...p.workloads.flatMap((w) => workloadTables(s, w.name, w.systems, w.floor)),
  ].join('\n');
}

/** The S5 budget, when S5 ran (S5 holds the idle connections). */
export function idleTargetsSection(s: ScenarioResult): string[] {
  const connections = Number(/^([\d,]+) keep-alive/.exec(s.load)?.[1]?.replace(/,/g, '') ?? NaN);
  return ['Targets (Sluice while the connections are held):', '', ...targetsTable(idleTargets(s.runs, connections))];
}

export function profilesSection(r: BenchResults): string[] {
  if (!r.profiles?.length) return [];
  return r.profiles.flatMap((p) => [
    `## CPU profile: ${p.label}`,
    '',
    `Sluice ran under \`node --cpu-prof\` (profiles in ${p.dir}; the profiler's overhead is in this run's numbers). Self time, summed over ${p.files} profile(s):`,
    '',
    p.summary,
  ]);
}
