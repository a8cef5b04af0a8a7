// Regenerates the results table in README.md from a bench run, between two markers, so
// the README always shows the latest committed full run rather than hand-copied numbers.
import { readFileSync, writeFileSync } from 'node:fs';
import type { RunResult } from './execute.js';
import type { WorkloadResult } from './loadgen/outcome.js';
import type { BenchResults } from './results-types.js';

export const README_START = '<!-- bench:results:start -->';
export const README_END = '<!-- bench:results:end -->';

const fmt = (n: number | null | undefined, digits = 0): string =>
  n === null || n === undefined || Number.isNaN(n) ? '–' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

function errors(w: WorkloadResult): string {
  const parts = Object.entries(w.counts).filter(([k, v]) => k !== 'ok' && v > 0).map(([k, v]) => `${k} ${fmt(v)}`);
  return parts.length > 0 ? parts.join(', ') : '0';
}

function row(scenario: string, run: RunResult, w: WorkloadResult): string {
  const be = run.backend;
  const proc = run.process;
  return `| ${scenario} | ${run.system} #${run.iteration} | ${w.name} | ${fmt(w.offeredRate)} | ${fmt(w.goodput, 1)} | ${fmt(w.latency.p50, 1)} | ${fmt(w.latency.p99, 1)} | ${errors(w)} | ` +
    `${be ? fmt(be.executions) : '–'} | ${be ? fmt(be.abandoned) : '–'} | ${proc ? fmt(proc.cpuS, 2) : '–'} | ${proc ? fmt(proc.peakRssMiB, 0) : '–'} |`;
}

export function renderReadmeTable(r: BenchResults): string {
  const lines = [
    `Run of ${r.startedAt.slice(0, 10)} (${r.mode} mode), ${r.machine.cpuModel}, ${r.machine.cores} cores, Node ${r.machine.node}; ` +
      `backend: ${r.backend.kind === 'test' ? 'the test backend' : r.backend.kind === 'gthread' ? 'the gthread model' : 'Gunicorn'}, ${r.backend.slots} slots, ${r.backend.latency}. ` +
      'Latency in ms from the scheduled send time, over successful responses; the generator, Sluice and the backend share the machine. ' +
      'Full report: [bench/results/latest.md](bench/results/latest.md).',
    '',
    '| scenario | system | workload | offered/s | goodput/s | p50 | p99 | errors | backend runs | abandoned | Sluice CPU s | Sluice peak RSS MiB |',
    '|---|---|---|--:|--:|--:|--:|---|--:|--:|--:|--:|',
  ];
  for (const s of r.scenarios) {
    for (const run of s.runs) for (const w of run.workloads) lines.push(row(s.id, run, w));
  }
  return lines.join('\n');
}

/** Replaces the text between the markers; returns false when README has no markers. */
export function updateReadme(readmePath: string, r: BenchResults): boolean {
  const text = readFileSync(readmePath, 'utf8');
  const start = text.indexOf(README_START);
  const end = text.indexOf(README_END);
  if (start < 0 || end < start) return false;
  writeFileSync(readmePath, `${text.slice(0, start + README_START.length)}\n${renderReadmeTable(r)}\n${text.slice(end)}`);
  return true;
}
