// A flame summary of V8 .cpuprofile files (from `node --cpu-prof`): the top functions by
// self time, and self time rolled up by package or Sluice source area, so a profile can
// be read in a terminal or a report without DevTools. Several files (e.g. one per Sluice
// process of a bench run) are summed.
//   node dist/bench/profile-summary.js [--top N] FILE.cpuprofile...
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface FunctionSelf {
  name: string;
  /** url:line (1-based), or empty for V8's own entries like (garbage collector). */
  location: string;
  area: string;
  selfMs: number;
}

export interface ProfileSummary {
  files: number;
  /** Sampled time in milliseconds, idle included. */
  totalMs: number;
  idleMs: number;
  functions: FunctionSelf[];
  areas: { area: string; selfMs: number }[];
}

const OTHER_PACKAGE_AREAS: Record<string, string> = {
  // pino's own writers and serializers count as pino.
  'sonic-boom': 'pino', 'thread-stream': 'pino', 'fast-redact': 'pino', 'pino-std-serializers': 'pino',
  'quick-format-unescaped': 'pino', 'on-exit-leak-free': 'pino', 'atomic-sleep': 'pino', 'fast-safe-stringify': 'pino',
  // prom-client's summary quantiles.
  tdigest: 'prom-client', bintrees: 'prom-client',
};

/** Which package or Sluice source directory a function belongs to. */
export function areaOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === '') return functionName.startsWith('(') ? functionName : 'node:internal';
  if (url.startsWith('node:')) return 'node:internal';
  const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1];
  if (pkg) {
    if (pkg.startsWith('@opentelemetry/')) return '@opentelemetry';
    return OTHER_PACKAGE_AREAS[pkg] ?? pkg;
  }
  // The first directory under src/ (or bench/) names the area: src/pipeline/phases/x.js is src/pipeline.
  const src = /\/(?:dist\/)?(src|bench)\/(.+)$/.exec(url);
  if (src) {
    const dir = src[2]!.split('/');
    return dir.length > 1 ? `sluice ${src[1]}/${dir[0]}` : `sluice ${src[1]}`;
  }
  return 'other';
}

/**
 * Self time per node: sample i lasts until sample i+1 (timeDeltas[i + 1]); the last one
 * until the profile's end, as DevTools draws it.
 */
function selfTimesUs(p: CpuProfile): Map<number, number> {
  const self = new Map<number, number>();
  let t = p.startTime;
  const stamps = p.timeDeltas.map((d) => (t += d));
  for (let i = 0; i < p.samples.length; i++) {
    const end = i + 1 < stamps.length ? stamps[i + 1]! : p.endTime;
    const id = p.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + Math.max(0, end - stamps[i]!));
  }
  return self;
}

export function summarizeProfiles(profiles: CpuProfile[]): ProfileSummary {
  const byFunction = new Map<string, FunctionSelf>();
  const byArea = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  for (const p of profiles) {
    const nodes = new Map(p.nodes.map((n) => [n.id, n]));
    for (const [id, us] of selfTimesUs(p)) {
      const frame = nodes.get(id)?.callFrame;
      if (!frame) continue;
      totalUs += us;
      if (frame.functionName === '(idle)') {
        idleUs += us;
        continue;
      }
      const location = frame.url ? `${frame.url.replace(/^file:\/\//, '')}:${frame.lineNumber + 1}` : '';
      const name = frame.functionName || '(anonymous)';
      const key = `${name}\0${location}`;
      const area = areaOf(frame);
      const entry = byFunction.get(key) ?? { name, location, area, selfMs: 0 };
      entry.selfMs += us / 1000;
      byFunction.set(key, entry);
      byArea.set(area, (byArea.get(area) ?? 0) + us / 1000);
    }
  }
  return {
    files: profiles.length,
    totalMs: totalUs / 1000,
    idleMs: idleUs / 1000,
    functions: [...byFunction.values()].sort((a, b) => b.selfMs - a.selfMs),
    areas: [...byArea].map(([area, selfMs]) => ({ area, selfMs })).sort((a, b) => b.selfMs - a.selfMs),
  };
}

export function readProfile(file: string): CpuProfile {
  return JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
}

/** Shortens a location to what identifies it: the path from node_modules/ or src/ on. */
function shortLocation(location: string): string {
  const m = /(?:node_modules\/.*|(?:dist\/)?(?:src|bench)\/.*)$/.exec(location);
  return m ? m[0] : location;
}

/** Markdown tables: top functions by self time, then the rollup by area. Percentages are of busy (non-idle) time. */
export function renderSummary(s: ProfileSummary, top = 15): string {
  const busy = Math.max(1e-9, s.totalMs - s.idleMs);
  const pct = (ms: number): string => `${((100 * ms) / busy).toFixed(1)}%`;
  const ms = (x: number): string => x.toFixed(1);
  return [
    `${s.files} profile(s), ${ms(s.totalMs)} ms sampled, ${ms(s.idleMs)} ms idle; percentages of the ${ms(busy)} ms busy.`,
    '',
    `| # | function | location | area | self ms | % |`,
    '|--:|---|---|---|--:|--:|',
    ...s.functions.slice(0, top).map((f, i) => `| ${i + 1} | ${f.name} | ${shortLocation(f.location) || '–'} | ${f.area} | ${ms(f.selfMs)} | ${pct(f.selfMs)} |`),
    '',
    '| area | self ms | % |',
    '|---|--:|--:|',
    ...s.areas.map((a) => `| ${a.area} | ${ms(a.selfMs)} | ${pct(a.selfMs)} |`),
    '',
  ].join('\n');
}

function main(argv: string[]): void {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { top: { type: 'string', default: '15' } } });
  if (positionals.length === 0) {
    process.stderr.write('usage: profile-summary.js [--top N] FILE.cpuprofile...\n');
    process.exit(2);
  }
  process.stdout.write(renderSummary(summarizeProfiles(positionals.map(readProfile)), Number(values.top)));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main(process.argv.slice(2));
