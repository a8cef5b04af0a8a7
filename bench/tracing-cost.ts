// What tracing costs: throughput, p99 and Sluice CPU per request with `tracing.exporter:
// none` against `otlp` at sample_ratio 1.0 (and 0.1), through a cache-hit route, so Sluice's
// own work (parse, route, cache lookup, respond, observe) is all that is measured. Sluice runs as a
// child process (the built CLI), and so does an OTLP/HTTP sink; the load generator and the
// test backend run here. Runs alternate (none, otlp, none, otlp, ...) so drift hits both alike.
// Each run measures twice: at a fixed arrival rate (open loop), for Sluice's CPU time per
// request and the p99 at equal load; then closed loop, for the throughput. On a small
// machine the load generator competes with Sluice for CPU, so the report also gives the
// throughput one core would sustain at the measured cost (1000 / CPU ms per request).
// Where `taskset` exists and there are two CPUs or more, Sluice gets CPU 1 to itself and
// everything else shares CPU 0, so the load generator does not blur Sluice's numbers.
//
//   npm run build && node dist/bench/tracing-cost.js [--rounds 5] [--seconds 8] [--rate 1500] [--concurrency 64]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { stringify } from 'yaml';
import { startTestBackend } from '../src/testing/backend.js';
import { runClosedLoop, runOpenLoop } from './loadgen/index.js';
import { ProcSampler } from './proc-stats.js';
import { startOtlpSink } from './otlp-sink.js';
import { ProcessGroup } from './procs.js';

/** none; otlp at sample_ratio 1.0 (the target); otlp at 0.1, the usual production setting. */
const MODES = ['none', 'otlp', 'otlp-0.1'] as const;
type Mode = (typeof MODES)[number];

interface Sample {
  mode: Mode;
  /** Closed loop: throughput and latency at that throughput. */
  rps: number;
  p50: number;
  p99: number;
  /** Open loop at the fixed rate: latency at equal load. */
  fixedP50: number;
  fixedP99: number;
  errors: number;
  sluiceCpuS: number;
  cpuMsPerKReq: number;
  cacheHitShare: number;
}

const CLI = resolve(import.meta.dirname, '../src/cli.js');
// Fresh for an hour: every measured request is a cache hit.
const PATH = '/api/items/1?cache_control=public%2C%20max-age%3D3600';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '5' }, seconds: { type: 'string', default: '8' },
      rate: { type: 'string', default: '1500' }, concurrency: { type: 'string', default: '64' },
    },
  });
  const rounds = Number(values.rounds);
  const seconds = Number(values.seconds);
  const concurrency = Number(values.concurrency);
  const rate = Number(values.rate);
  const backend = await startTestBackend({ port: 0, slots: 50, latencyMs: 5, reportLatencyMs: 100 });
  const pinned = availableParallelism() >= 2 && pin(process.pid, 0);
  const procs = new ProcessGroup();
  const sink = await startOtlpSink(procs);
  if (pinned) pin(sink.pid, 0);
  const samples: Sample[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      for (const mode of MODES) {
        const sample = await measure(procs, mode, { backendUrl: backend.url, sinkUrl: sink.url, seconds, concurrency, rate, pinned });
        samples.push(sample);
        process.stderr.write(`round ${round + 1} ${mode}: ${sample.rps} req/s closed loop; at ${rate} req/s: p99 ${sample.fixedP99} ms, ${sample.cpuMsPerKReq} CPU ms per 1000 requests\n`);
      }
    }
  } finally {
    await procs.close();
    await backend.close();
  }
  process.stdout.write(report(samples, { rounds, seconds, concurrency, rate, pinned }));
}

async function measure(procs: ProcessGroup, mode: Mode, o: { backendUrl: string; sinkUrl: string; seconds: number; concurrency: number; rate: number; pinned: boolean }): Promise<Sample> {
  const config = writeConfig(mode, o.backendUrl, o.sinkUrl);
  const sluice = await procs.spawnServer({
    name: `sluice (${mode})`,
    args: [CLI, 'start', '--config', config],
    ready: /listening on (http:\/\/\S+)/,
    alsoWaitFor: /admin on http:\/\/\S+\/status/,
  });
  const admin = /admin on (http:\/\/\S+)\/status/.exec(sluice.startupLines.join('\n'))![1]!;
  if (o.pinned) pin(sluice.pid, 1);
  try {
    await (await request(sluice.url + PATH)).body.dump();
    // Lead-in: connections opened and both ends' JIT warm before anything is measured.
    await runClosedLoop({ name: 'warmup', origin: sluice.url, path: PATH, concurrency: o.concurrency, durationS: 2, warmupS: 1 });
    const sampler = new ProcSampler(sluice.pid);
    sampler.start();
    const fixed = await runOpenLoop({ name: `tracing-${mode}-fixed`, origin: sluice.url, method: 'GET', path: PATH, keys: { kind: 'fixed', key: '1' }, rate: o.rate, durationS: o.seconds });
    const usage = sampler.stop();
    const closed = await runClosedLoop({ name: `tracing-${mode}`, origin: sluice.url, path: PATH, concurrency: o.concurrency, durationS: o.seconds, warmupS: 1 });
    const metrics = await (await request(`${admin}/metrics`)).body.text();
    const ok = fixed.counts.ok;
    return {
      mode,
      rps: closed.goodput,
      p50: closed.latency.p50,
      p99: closed.latency.p99,
      fixedP50: fixed.latency.p50,
      fixedP99: fixed.latency.p99,
      errors: fixed.sent - fixed.counts.ok + closed.sent - closed.counts.ok,
      sluiceCpuS: usage.cpuS,
      cpuMsPerKReq: ok > 0 ? Math.round((usage.cpuS * 1000 * 1000) / ok * 10) / 10 : 0,
      cacheHitShare: hitShare(metrics),
    };
  } finally {
    await sluice.stop();
  }
}

function writeConfig(mode: Mode, backendUrl: string, sinkUrl: string): string {
  const config = {
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    backend: { servers: [{ url: backendUrl, slots: 50 }] },
    routes: [{ name: 'items', match: { path: '/api/items/*', methods: ['GET', 'HEAD'] }, cache: { enabled: true } }],
    tracing: mode === 'none'
      ? { exporter: 'none' }
      : { exporter: 'otlp', endpoint: sinkUrl, protocol: 'http/protobuf', sample_ratio: mode === 'otlp' ? 1.0 : 0.1 },
    // Identical in both modes: access lines off, so the difference is tracing alone.
    logging: { level: 'warn', access_log: false },
  };
  const file = join(mkdtempSync(join(tmpdir(), 'sluice-tracing-cost-')), 'sluice.yaml');
  writeFileSync(file, stringify(config));
  return file;
}

/** Share of requests answered from the cache, from Sluice's own counters (a plain line scan of counters we wrote). */
function hitShare(metrics: string): number {
  const count = (re: RegExp) => [...metrics.matchAll(re)].reduce((n, m) => n + Number(m[1]), 0);
  const hits = count(/^sluice_cache_requests_total\{[^}]*status="hit"[^}]*\} (\S+)$/gm);
  const all = count(/^sluice_requests_total\{[^}]*\} (\S+)$/gm);
  return all > 0 ? Math.round((hits / all) * 1000) / 1000 : 0;
}

/** Moves every thread of a process to one CPU; false where taskset is missing or refused. */
function pin(pid: number, cpu: number): boolean {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function perCore(cpuMsPerKReq: number): number {
  return cpuMsPerKReq > 0 ? Math.round(1_000_000 / cpuMsPerKReq) : 0;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function report(samples: Sample[], o: { rounds: number; seconds: number; concurrency: number; rate: number; pinned: boolean }): string {
  const of = (mode: Mode) => samples.filter((s) => s.mode === mode);
  const summary = (mode: Mode) => ({
    rps: median(of(mode).map((s) => s.rps)),
    p50: median(of(mode).map((s) => s.p50)),
    p99: median(of(mode).map((s) => s.p99)),
    fixedP50: median(of(mode).map((s) => s.fixedP50)),
    fixedP99: median(of(mode).map((s) => s.fixedP99)),
    cpu: median(of(mode).map((s) => s.cpuMsPerKReq)),
    cpuRange: `${Math.min(...of(mode).map((s) => s.cpuMsPerKReq))}-${Math.max(...of(mode).map((s) => s.cpuMsPerKReq))}`,
    hits: Math.min(...of(mode).map((s) => s.cacheHitShare)),
    errors: of(mode).reduce((n, s) => n + s.errors, 0),
    range: `${Math.min(...of(mode).map((s) => s.rps))}-${Math.max(...of(mode).map((s) => s.rps))}`,
  });
  const none = summary('none');
  const pct = (a: number, b: number) => `${(((b - a) / a) * 100).toFixed(1)}%`;
  // Runs alternate, so run i of each mode saw about the same machine: compare them in pairs.
  const paired = (mode: Mode, value: (s: Sample) => number) => {
    const changes = of('none').flatMap((n, i) => {
      const t = of(mode)[i];
      return t ? [(value(t) - value(n)) / value(n)] : [];
    });
    return `${(median(changes) * 100).toFixed(1)}%`;
  };
  const verdict = (mode: Mode, label: string) => {
    const m = summary(mode);
    return `- ${label}: CPU per request ${pct(none.cpu, m.cpu)} between medians, ${paired(mode, (s) => s.cpuMsPerKReq)} median of paired runs ` +
      `(per-core throughput ${pct(perCore(none.cpu), perCore(m.cpu))}); p99 at equal load ${pct(none.fixedP99, m.fixedP99)}; ` +
      `closed-loop throughput ${pct(none.rps, m.rps)} between medians, ${paired(mode, (s) => s.rps)} median of paired runs.`;
  };
  return [
    `Tracing cost, cache-hit route, ${o.rounds} runs per mode alternating (medians); per run ${o.seconds} s at a fixed ${o.rate} req/s (open loop), then ${o.seconds} s closed loop with ${o.concurrency} connections. ` +
      (o.pinned ? 'Sluice pinned to CPU 1, load generator, backend and OTLP sink to CPU 0.' : 'Processes not pinned to CPUs.'),
    '',
    `| tracing | CPU ms / 1000 req at ${o.rate} req/s (range) | req/s per core at that cost | p50 / p99 ms at ${o.rate} req/s | closed-loop req/s (range) | closed-loop p99 ms | cache hits | errors |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    row('none', none),
    row('otlp, sample_ratio 1.0', summary('otlp')),
    row('otlp, sample_ratio 0.1', summary('otlp-0.1')),
    '',
    verdict('otlp', 'sample_ratio 1.0'),
    verdict('otlp-0.1', 'sample_ratio 0.1'),
    '',
  ].join('\n');
}

function row(label: string, m: { cpu: number; cpuRange: string; fixedP50: number; fixedP99: number; rps: number; range: string; p99: number; hits: number; errors: number }): string {
  return `| ${label} | ${m.cpu} (${m.cpuRange}) | ${perCore(m.cpu)} | ${m.fixedP50} / ${m.fixedP99} | ${m.rps} (${m.range}) | ${m.p99} | ${(m.hits * 100).toFixed(1)}% | ${m.errors} |`;
}

main().catch((err: unknown) => {
  process.stderr.write(`tracing-cost: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
