import type { RunResult } from './execute.js';
import { OUTCOMES, type WorkloadResult } from './loadgen/index.js';
import { floorSection, idleTargetsSection, profilesSection } from './floor-report.js';
import type { BenchResults, ScenarioResult } from './results-types.js';

/** Generator dispatch lag above this makes a run's latency partly the client's; flagged. */
export const LAG_WARN_MS = 20;

const OUTCOME_LABEL: Record<string, string> = {
  shed: 'shed 503', http5xx: '5xx', http_other: 'other', timeout: 'timeout', conn_error: 'conn err',
};

const fmt = (x: number | null | undefined, digits = 0): string =>
  x === null || x === undefined || Number.isNaN(x) ? '–' : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

const ms = (x: number): string => (x >= 100 ? fmt(x) : fmt(x, 1));

function errorsCell(w: WorkloadResult): string {
  const parts = OUTCOMES.filter((o) => o !== 'ok' && w.counts[o] > 0).map((o) => `${OUTCOME_LABEL[o]} ${fmt(w.counts[o])}`);
  return parts.length ? parts.join(', ') : '0';
}

function runRows(run: RunResult): string[] {
  if (run.error) return [`| ${run.system} | ${run.iteration} | – | – | – | – | – | – | – | failed: ${run.error.split('\n')[0]} | – | – | – | – | – |`];
  return run.workloads.map((w, i) => {
    const first = i === 0;
    const be = first ? run.backend : null;
    const proc = first ? run.process : null;
    return [
      '', run.system, run.iteration, w.name, fmt(w.offeredRate, w.offeredRate < 100 ? 1 : 0), fmt(w.goodput, 1),
      ms(w.latency.p50), ms(w.latency.p90), ms(w.latency.p99), ms(w.latency.max), errorsCell(w),
      first ? fmt(be?.executions) : '', first ? fmt(be?.abandoned) : '', first ? fmt(be?.inflightMax) : '',
      first ? fmt(proc?.cpuS, 2) : '', first ? fmt(proc?.peakRssMiB, 1) : '', '',
    ].join(' | ').trim();
  });
}

function workloadNotes(run: RunResult, w: WorkloadResult): string[] {
  const notes: string[] = [];
  const x = w.extra ?? {};
  const tag = `${run.system} #${run.iteration}, ${w.name}`;
  if (typeof x.jobsAccepted === 'number' && x.jobsAccepted > 0) {
    const sub = x.submitLatency as { p50: number; p99: number };
    notes.push(`${tag}: ${x.jobsAccepted} jobs accepted (202), submit p50 ${ms(sub.p50)} ms / p99 ${ms(sub.p99)} ms; the latency columns are submit-to-result completion times (${x.jobPolls} polls).`);
  }
  if (w.kind === 'idle') {
    const cp = x.connectPhase as { opened: number; failed: number; ms: number };
    notes.push(`${tag}: opened ${fmt(cp.opened)} connections (${fmt(cp.failed)} failed) in ${fmt(cp.ms)} ms; open at end ${fmt(x.openAtEnd as number)}, fewest open ${fmt(x.openMin as number)}; closed by server while idle ${fmt(x.closedByServer as number)}, reconnects ${fmt(x.reconnects as number)}.`);
  }
  if (w.kind === 'upload') {
    notes.push(`${tag}: ${fmt(w.sent)} uploads by ${x.clients} clients, ${fmt(x.mismatches as number)} sha256 mismatches; the latency columns are upload start to response (pacing floor ${fmt(x.transferFloorS as number, 1)} s); goodput is per second of the ${fmt(x.wallS as number, 1)} s the uploads took.`);
  }
  if (w.kind === 'closed' && run.process) {
    const genCores = (x.generatorCpuS as number) / w.durationS;
    notes.push(`${tag}: ${fmt(w.goodput)} req/s at ${(x.concurrency as number)} connections; server CPU ${fmt(run.process.cpuS, 2)} s = ${fmt(run.process.cpuPerRequestUs)} µs per request; generator ${fmt(genCores, 2)} cores.`);
    if (genCores > 0.85) notes.push(`⚠ ${tag}: the generator used most of a core, so this req/s is the client's limit; compare CPU per request instead.`);
  }
  if (w.sendLag.p99 > LAG_WARN_MS) {
    notes.push(`⚠ ${tag}: generator dispatch lag p99 ${ms(w.sendLag.p99)} ms (> ${LAG_WARN_MS} ms): the machine was saturated and part of this latency is the client's.`);
  }
  if (typeof x.unsettled === 'number' && x.unsettled > 0) notes.push(`⚠ ${tag}: ${x.unsettled} requests had not settled when the run ended.`);
  return notes;
}

/** Sluice's own counters from /status, when it reports them (shape owned by Sluice). */
function statusNotes(run: RunResult): string[] {
  const st = run.sluiceStatus as { cache?: Record<string, unknown>; coalesce?: Record<string, unknown> } | undefined;
  const num = (o: Record<string, unknown> | undefined, k: string): number | undefined => (typeof o?.[k] === 'number' ? (o[k] as number) : undefined);
  const hits = num(st?.cache, 'hits');
  const misses = num(st?.cache, 'misses');
  const saved = num(st?.coalesce, 'followers_saved');
  if (hits === undefined && saved === undefined) return [];
  const parts: string[] = [];
  if (hits !== undefined && misses !== undefined && hits > 0) {
    parts.push(`cache hits ${fmt(hits)} / misses ${fmt(misses)} (${fmt((100 * hits) / (hits + misses), 1)}% hit)`);
  }
  if (saved !== undefined && saved > 0) parts.push(`${fmt(saved)} requests coalesced onto another's backend call`);
  return parts.length ? [`${run.system} #${run.iteration}: Sluice /status: ${parts.join('; ')}.`] : [];
}

/** Unrelated processes using this much CPU make a run's numbers suspect. */
export const OTHER_CPU_WARN_CORES = 0.25;

function runNotes(run: RunResult, cores: number): string[] {
  const m = run.machine;
  if (!m || m.otherCores < OTHER_CPU_WARN_CORES) return [];
  // A backend the bench did not start (Gunicorn) has no known pid: its CPU lands in "other".
  const who = m.backendAccounted ? 'processes outside the benchmark' : 'processes other than the generator and Sluice (the backend included)';
  const mark = m.backendAccounted ? '⚠ ' : '';
  return [`${mark}${run.system} #${run.iteration}: ${who} used ${fmt(m.otherCores, 2)} of ${cores} cores during this run (machine busy ${fmt(m.busyCores, 2)} cores).`];
}

function scenarioSection(s: ScenarioResult, cores: number): string {
  if (s.floor) return floorSection(s);
  const head = [
    `## ${s.id} ${s.title}`,
    '',
    `Load: ${s.load}. Systems alternate: ${s.systems.join(', ')}.`,
    '',
    '| system | run | workload | offered/s | goodput/s | p50 ms | p90 ms | p99 ms | max ms | errors | backend executions | abandoned | backend inflight max | Sluice CPU s | peak RSS MiB |',
    '|---|---|---|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|',
  ];
  const rows = s.runs.flatMap(runRows);
  const notes = s.runs.flatMap((r) => [...runNotes(r, cores), ...statusNotes(r), ...r.workloads.flatMap((w) => workloadNotes(r, w))]);
  const targets = s.id === 'S5' ? idleTargetsSection(s) : [];
  return [...head, ...rows, '', ...notes.map((n) => `- ${n}`), '', ...targets].join('\n');
}

function preamble(r: BenchResults): string {
  const m = r.machine;
  const sc = r.selfCheck;
  return [
    '# Sluice benchmark',
    '',
    `Run ${r.startedAt} → ${r.finishedAt}, mode **${r.mode}**${r.mode === 'full' ? ' (each scenario alternates its systems twice)' : ' (short runs, lower rates, once each)'}.`,
    '',
    `- Machine: ${m.cpuModel}, ${m.cores} cores, ${fmt(m.memTotalMiB / 1024, 1)} GiB; Node ${m.node} on ${m.platform} ${m.kernel}; open files limit ${fmt(m.openFilesLimit)}.`,
    `- Backend: ${r.backend.kind === 'test' ? 'the Sluice test backend' : r.backend.kind === 'gthread' ? 'the test backend\'s Gunicorn gthread model (10 x 5)' : 'Flask under Gunicorn'} at ${r.backend.url}, ${r.backend.slots} slots, ${r.backend.latency}.`,
    `- Generator self-check at ${fmt(sc.rate)} req/s against an in-process server that answers at once: p99 ${ms(sc.latencyP99Ms)} ms, dispatch lag p99 ${ms(sc.sendLagP99Ms)} ms — ${sc.passed ? 'passed' : 'FAILED'}.`,
    '- Generator, Sluice and backend share this machine; their CPU use competes. Latency is measured from each',
    '  request\'s scheduled send time (open loop, no coordinated omission) and the percentiles are over ok (2xx)',
    '  responses; goodput is ok responses per second, from the first scheduled send to the last ok answer (never',
    '  less than the sending window). "direct" sends the load straight to the backend.',
    '- Backend executions and abandoned work are read after the backend finished everything queued in the run.',
    '',
    ...r.notes.map((n) => `- ${n}`),
    '',
    '![latency](latency.svg)',
    '',
    '![goodput](goodput.svg)',
    '',
  ].join('\n');
}

export function renderMarkdown(r: BenchResults): string {
  const config = r.sluiceConfig ? ['## Sluice configuration used', '', '```yaml', r.sluiceConfig.trimEnd(), '```', ''] : [];
  return [preamble(r), ...r.scenarios.map((s) => scenarioSection(s, r.machine.cores)), ...profilesSection(r), ...config].join('\n');
}
