// `sluice bench [scenario...] [--quick] [--backend test|gunicorn]`: runs the scenarios
// direct and through Sluice, alternating, and writes bench/results/.
import { updateReadme } from './readme-table.js';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { goodputSvg, latencySvg } from './charts.js';
import { runOnce, type ExecEnv } from './execute.js';
import { runFloor } from './floor.js';
import { pickGenerator, selfCheck, type ClosedGenerator } from './loadgen/index.js';
import { startOtlpSink } from './otlp-sink.js';
import { readProfile, renderSummary, summarizeProfiles } from './profile-summary.js';
import { MachineMeter } from './proc-stats.js';
import { ProcessGroup } from './procs.js';
import { renderMarkdown } from './report.js';
import { benchConfigYaml } from './sluice-config.js';
import type { BenchResults, MachineInfo, ProfileReport, ScenarioResult } from './results-types.js';
import { SCENARIOS, findScenario, peakOpenRate, type Mode, type Scenario, type SystemName } from './scenarios.js';

const USAGE = `Usage: sluice bench [S1 S2 S2b ... S6] [--quick] [--backend test|gthread|gunicorn] [options]
  --quick              short runs at lower rates, each system once (under two minutes)
  --backend KIND       test (default: starts the test backend, 50 slots, 100 ms),
                       gthread (the test backend's Gunicorn gthread model, 10 x 5, with
                       examples/flask-gunicorn's 5 s keep-alive) or
                       gunicorn (uses an app already running, see examples/flask-gunicorn/run.sh)
  --backend-url URL    backend for --backend gunicorn (default http://127.0.0.1:8000)
  --slots N            backend slots (default 50)
  --systems LIST       only these systems, e.g. direct or direct,sluice
  --out DIR            results directory (default bench/results in the package)
  --generator KIND     closed-loop generator for S6: auto (default: wrk when on PATH), wrk or node
  --cpu-prof           run Sluice under node --cpu-prof (profiles in <out>/profiles/<run>/) and
                       print a flame summary (top functions by self time, rollup by package)
  --render FILE        only rewrite latest.md and the charts from a results JSON file`;

export class BenchRefusedError extends Error {}

interface BenchArgs {
  scenarios: Scenario[];
  mode: Mode;
  backendKind: 'test' | 'gthread' | 'gunicorn';
  backendUrl: string;
  slots: number;
  systems: SystemName[] | null;
  outDir: string | null;
  render: string | null;
  generator: 'auto' | ClosedGenerator;
  cpuProf: boolean;
}

function parseFlags(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      quick: { type: 'boolean', default: false },
      backend: { type: 'string', default: 'test' },
      'backend-url': { type: 'string', default: 'http://127.0.0.1:8000' },
      slots: { type: 'string', default: '50' },
      systems: { type: 'string' },
      out: { type: 'string' },
      render: { type: 'string' },
      generator: { type: 'string', default: 'auto' },
      'cpu-prof': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
}

function parseBenchArgs(argv: string[]): BenchArgs {
  let parsed: ReturnType<typeof parseFlags>;
  try {
    parsed = parseFlags(argv);
  } catch (err) {
    return usage((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const scenarios = positionals.length ? positionals.map((id) => findScenario(id) ?? usage(`unknown scenario "${id}"`)) : [...SCENARIOS];
  if (values.backend !== 'test' && values.backend !== 'gthread' && values.backend !== 'gunicorn') usage('--backend must be test, gthread or gunicorn');
  const slots = Number(values.slots);
  if (!Number.isInteger(slots) || slots < 1) usage('--slots must be a positive integer');
  const systems = values.systems ? (values.systems.split(',') as SystemName[]) : null;
  if (!['auto', 'wrk', 'node'].includes(values.generator)) usage('--generator must be auto, wrk or node');
  return {
    scenarios,
    mode: values.quick ? 'quick' : 'full',
    backendKind: values.backend as BenchArgs['backendKind'],
    backendUrl: values['backend-url'],
    slots,
    systems,
    outDir: values.out ?? null,
    render: values.render ?? null,
    generator: values.generator as BenchArgs['generator'],
    cpuProf: values['cpu-prof'],
  };
}

function usage(message: string): never {
  process.stderr.write(`sluice bench: ${message}\n${USAGE}\n`);
  process.exit(2);
}

/** The package root: the nearest directory above this file with Sluice's package.json. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'sluice') return dir;
    dir = dirname(dir);
  }
  throw new Error('cannot find the sluice package root from bench/run');
}

function machineInfo(): MachineInfo {
  const cpuModel = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  let openFilesLimit: number | null = null;
  try {
    openFilesLimit = Number(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim()) || null;
  } catch {
    /* unknown */
  }
  return {
    cpuModel, cores: cpus().length, memTotalMiB: Math.round(totalmem() / 2 ** 20),
    node: process.version, platform: process.platform, kernel: release(), openFilesLimit,
  };
}

function writeAtomic(file: string, data: string): void {
  writeFileSync(`${file}.tmp`, data);
  renameSync(`${file}.tmp`, file);
}

function writeReport(dir: string, results: BenchResults): string {
  mkdirSync(dir, { recursive: true });
  writeAtomic(join(dir, 'latest.md'), renderMarkdown(results));
  writeAtomic(join(dir, 'latency.svg'), latencySvg(results));
  writeAtomic(join(dir, 'goodput.svg'), goodputSvg(results));
  return join(dir, 'latest.md');
}

function writeResults(dir: string, results: BenchResults): string {
  mkdirSync(dir, { recursive: true });
  const stamp = results.startedAt.replace(/[:.]/g, '-');
  const json = `${JSON.stringify(results, null, 2)}\n`;
  writeAtomic(join(dir, `${stamp}.json`), json);
  writeAtomic(join(dir, 'latest.json'), json);
  return writeReport(dir, results);
}
async function startBackend(args: BenchArgs, procs: ProcessGroup, cliPath: string): Promise<{ url: string; pid?: number }> {
  if (args.backendKind === 'gunicorn') {
    const ok = await fetch(new URL('/health', args.backendUrl), { signal: AbortSignal.timeout(3_000) }).then((r) => r.ok, () => false);
    if (!ok) throw new Error(`no backend answering ${args.backendUrl}/health; start examples/flask-gunicorn/run.sh first`);
    return { url: args.backendUrl };
  }
  const child = await procs.spawnServer({
    name: 'test backend',
    args: [cliPath, 'backend', '--port', '0', '--latency', '100ms', '--report-latency', '2s',
      ...(args.backendKind === 'gthread'
        ? ['--model', 'gthread', '--workers', String(args.slots / 5), '--threads', '5', '--keepalive', '5s']
        : ['--slots', String(args.slots)])],
    ready: /listening on (http:\/\/[^\s]+)/,
  });
  return { url: child.url, pid: child.pid };
}

function checkFdLimit(machine: MachineInfo, args: BenchArgs, notes: string[]): void {
  const need = Math.max(0, ...args.scenarios.flatMap((s) => s.workloads(args.mode).map((w) => (w.kind === 'idle' ? w.spec.connections : 0))));
  if (need > 0 && machine.openFilesLimit !== null && machine.openFilesLimit < need + 1024) {
    notes.push(`⚠ open files limit ${machine.openFilesLimit} is below the ${need} idle connections S5 opens (plus headroom); raise it with ulimit -n before the run.`);
  }
}

async function runAll(args: BenchArgs, env: ExecEnv, generator: ClosedGenerator): Promise<ScenarioResult[]> {
  const reps = args.mode === 'full' ? 2 : 1;
  const out: ScenarioResult[] = [];
  for (const s of args.scenarios) {
    if (s.floor) {
      const plan = s.floor(args.mode);
      if (args.systems) for (const w of plan.workloads) w.systems = w.systems.filter((sys) => args.systems!.includes(sys));
      out.push(await runFloor(s, plan, env, generator));
      continue;
    }
    const systems = s.systems.filter((sys) => !args.systems || args.systems.includes(sys));
    const result: ScenarioResult = { id: s.id, title: s.title, load: s.load(args.mode), systems: [...systems], runs: [] };
    for (let iteration = 1; iteration <= reps; iteration++) {
      for (const system of systems) result.runs.push(await runOnce(s, system, iteration, env));
    }
    out.push(result);
  }
  return out;
}

export async function runBenchCommand(argv: string[]): Promise<void> {
  const args = parseBenchArgs(argv);
  const root = packageRoot();
  if (args.render) {
    const results = JSON.parse(readFileSync(args.render, 'utf8')) as BenchResults;
    process.stderr.write(`bench: wrote ${writeReport(args.outDir ?? dirname(args.render), results)}\n`);
    if (results.mode === 'full' && !args.outDir && updateReadme(join(root, 'README.md'), results)) process.stderr.write('bench: updated the results table in README.md\n');
    return;
  }
  const cliPath = join(root, 'dist/src/cli.js');
  const staticServerPath = join(root, 'dist/bench/static-server.js');
  const minimalProxyPath = join(root, 'dist/bench/minimal-proxy.js');
  for (const f of [cliPath, staticServerPath, minimalProxyPath]) if (!existsSync(f)) throw new Error(`${f} is missing; run npm run build`);
  const log = (line: string): void => void process.stderr.write(`bench: ${line}\n`);
  const startedAt = new Date().toISOString();
  const machine = machineInfo();
  const notes: string[] = [];
  checkFdLimit(machine, args, notes);

  const rate = Math.max(...args.scenarios.map((s) => peakOpenRate(s, args.mode)), 100);
  log(`generator self-check at ${rate} req/s`);
  const meter = new MachineMeter([process.pid]);
  const check = await selfCheck({ rate, durationS: args.mode === 'full' ? 3 : 1.5 });
  const load = meter.stop();
  if (!check.passed) {
    throw new BenchRefusedError(
      `refusing to report: the load generator itself is too slow on this machine (${check.reasons.join('; ')}); ` +
        `other processes used ${load.otherCores} of ${machine.cores} cores meanwhile${load.otherCores >= 0.25 ? ', so try again on a quieter machine' : ''}`,
    );
  }

  const outDir = args.outDir ?? join(root, 'bench/results');
  const generator = pickGenerator(args.generator);
  const cpuProfDir = args.cpuProf ? join(outDir, 'profiles', startedAt.replace(/[:.]/g, '-')) : undefined;
  if (args.scenarios.some((s) => s.floor)) log(`closed-loop generator: ${generator}`);
  const procs = new ProcessGroup();
  let results: BenchResults;
  try {
    const backend = await startBackend(args, procs, cliPath);
    const backendUrl = backend.url;
    log(`backend ${backendUrl} (${args.slots} slots), mode ${args.mode}`);
    // S6 measures tracing's cost; its spans go to a sink process that discards them.
    const sink = args.scenarios.some((s) => s.floor) ? await startOtlpSink(procs) : undefined;
    const env: ExecEnv = {
      mode: args.mode, log, procs, cliPath, staticServerPath, minimalProxyPath, backendUrl, backendPid: backend.pid, slots: args.slots,
      cpuProfDir, otlpEndpoint: sink?.url,
    };
    const scenarios = await runAll(args, env, generator);
    const sluiceConfig = benchConfigYaml(backendUrl, args.slots);
    if (cpuProfDir) notes.push(`Sluice ran under node --cpu-prof in this run; its numbers include the profiler's overhead.`);
    results = {
      version: 1, startedAt, finishedAt: new Date().toISOString(), mode: args.mode,
      backend: { kind: args.backendKind, url: backendUrl, slots: args.slots, latency: args.backendKind === 'gunicorn' ? 'as configured' : '100 ms per request, 2 s per report' },
      machine, selfCheck: check, sluiceConfig, scenarios, notes,
    };
  } finally {
    // Profiles are written when the Sluice processes exit.
    await procs.close();
  }
  if (cpuProfDir) {
    results.profiles = profileReports(cpuProfDir, root);
    for (const p of results.profiles) process.stderr.write(`\nCPU profile of ${p.label} (${p.files} file(s) in ${p.dir}):\n${p.summary}\n`);
  }
  const report = writeResults(outDir, results);
  log(`wrote ${report}`);
  // Only a full run into the default place speaks for the project in the README.
  if (args.mode === 'full' && !args.outDir && updateReadme(join(root, 'README.md'), results)) log('updated the results table in README.md');
}

/** One flame summary per system directory under the profile directory. */
function profileReports(dir: string, root: string): ProfileReport[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).sort().flatMap((label) => {
    const files = readdirSync(join(dir, label)).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(dir, label, f));
    if (files.length === 0) return [];
    const summary = renderSummary(summarizeProfiles(files.map(readProfile)), 15);
    return [{ label, dir: relative(root, join(dir, label)), files: files.length, summary }];
  });
}
