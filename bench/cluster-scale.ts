// Scale-out bench: one, two and three Sluice instances sharing one test backend (50 slots,
// 100 ms) through a private Redis, on the hot-read and unique-overload scenarios (S1, S2),
// plus one instance without Redis for the cost of shared slots. The load is split evenly
// over the instances, as a load balancer in front of them would.
//   npm run build && node dist/bench/cluster-scale.js [--quick] [--only S1:2,S2:3]
// Writes bench/results/cluster-latest.json and prints a Markdown table.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { stringify } from 'yaml';
import { readBackendStats, resetBackendStats, waitBackendIdle } from './backend-stats.js';
import { runOpenLoop, type KeySpec, type WorkloadResult } from './loadgen/index.js';
import { ProcessGroup, type ChildServer } from './procs.js';
import { benchConfig } from './sluice-config.js';

const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'dist/src/cli.js');
const SLOTS = 50;

interface Scenario { id: 'S1' | 'S2'; name: string; path: string; keys: KeySpec; rate: number }
const quick = process.argv.includes('--quick');
/** `--only S1:2,S2:3` runs just those scenario x instance-count pairs ("1n" is one instance without Redis). */
const only = process.argv[process.argv.indexOf('--only') + 1]?.split(',');
const selected = (scenario: string, label: string) => !process.argv.includes('--only') || !!only?.includes(`${scenario}:${label === '1 (no Redis)' ? '1n' : label}`);
const DURATION_S = quick ? 4 : 12;
const SCENARIOS: Scenario[] = [
  { id: 'S1', name: 'hot reads', path: '/api/items/{key}', keys: { kind: 'zipf', n: 1000, s: 1.0 }, rate: quick ? 600 : 1000 },
  { id: 'S2', name: 'unique overload', path: '/api/live/{key}', keys: { kind: 'unique' }, rate: quick ? 600 : 750 },
];
const SETUPS = [
  { label: '1 (no Redis)', instances: 1, cluster: false },
  { label: '1', instances: 1, cluster: true },
  { label: '2', instances: 2, cluster: true },
  { label: '3', instances: 3, cluster: true },
];

interface Row {
  scenario: string; instances: string; offered: number; goodput: number; p50: number; p99: number;
  errors: Record<string, number>; backendRuns: number; backendInflightMax: number;
  leaseExchangeP50Ms: number | null; leaseExchangeP99Ms: number | null; leaseExchanges: number;
}

async function main(): Promise<void> {
  const procs = new ProcessGroup();
  const { startRedis } = await import(pathToFileURL(join(ROOT, 'scripts/test-redis.mjs')).href) as { startRedis: () => Promise<{ url: string; stop(): Promise<void> }> };
  const redis = await startRedis();
  const rows: Row[] = [];
  try {
    const backend = await procs.spawnServer({
      name: 'test backend',
      args: [CLI, 'backend', '--port', '0', '--slots', String(SLOTS), '--latency', '100ms', '--report-latency', '2s'],
      ready: /listening on (http:\/\/[^\s]+)/,
    });
    for (const scenario of SCENARIOS) {
      for (const setup of SETUPS) {
        if (!selected(scenario.id, setup.label)) continue;
        const instances = await startInstances(procs, backend.url, redis.url, setup.instances, setup.cluster, `${scenario.id}-${setup.label}`);
        try {
          await waitBackendIdle(backend.url, 15_000);
          await resetBackendStats(backend.url);
          const results = await Promise.all(instances.map((inst, i) => runOpenLoop({
            name: scenario.name, origin: inst.url, method: 'GET', path: scenario.path, keys: scenario.keys,
            rate: scenario.rate / instances.length, durationS: DURATION_S, seed: i + 1,
            // Behind a load balancer every instance sees the client's Host; coalescing keys on it.
            headers: { host: 'api.example' },
          })));
          const stats = await readBackendStats(backend.url);
          const lease = setup.cluster ? await leaseQuantiles(instances.map((i) => i.adminUrl)) : { p50: null, p99: null, count: 0 };
          rows.push(summarize(scenario, setup.label, results, stats, lease));
          if (setup.cluster) {
            const status = await Promise.all(instances.map((i) => fetch(`${i.adminUrl}/status`).then((r) => r.json() as Promise<{ cluster: unknown; coalesce: unknown; cache: unknown }>)));
            process.stderr.write(`  cluster status: ${JSON.stringify(status.map((s) => ({ cluster: s.cluster, coalesce: s.coalesce })))}\n`);
          }
          process.stderr.write(`${scenario.id} x ${setup.label}: ${JSON.stringify(rows.at(-1))}\n`);
        } finally {
          await Promise.all(instances.map((i) => i.stop()));
        }
      }
    }
  } finally {
    await procs.close();
    await redis.stop();
  }
  const outDir = join(ROOT, 'bench/results');
  mkdirSync(outDir, { recursive: true });
  const meta = { at: new Date().toISOString(), mode: quick ? 'quick' : 'full', cpu: cpus()[0]?.model, cores: cpus().length, node: process.version, durationS: DURATION_S };
  writeFileSync(join(outDir, 'cluster-latest.json'), JSON.stringify({ meta, rows }, null, 2) + '\n');
  process.stdout.write(table(rows, meta) + '\n');
}

async function startInstances(procs: ProcessGroup, backendUrl: string, redisUrl: string, count: number, cluster: boolean, run: string): Promise<Array<ChildServer & { adminUrl: string }>> {
  const prefix = `bench-${run.replace(/[^A-Za-z0-9]/g, '')}-${Date.now()}:`;
  return Promise.all(Array.from({ length: count }, async (_, i) => {
    const workDir = mkdtempSync(join(tmpdir(), 'sluice-cluster-bench-'));
    const config: Record<string, unknown> = benchConfig({ backendUrl, slots: SLOTS, workDir });
    // Each instance takes a third of the slots while Redis is away; never reached here.
    if (cluster) config.cluster = { redis: redisUrl, instance_id: `i${i}`, lease_ttl: '10s', fallback_slots: Math.floor(SLOTS / count), key_prefix: prefix };
    const file = join(workDir, 'sluice.yaml');
    writeFileSync(file, stringify(config));
    const child = await procs.spawnServer({ name: `sluice ${i}`, args: [CLI, 'start', '--config', file], ready: /listening on (http:\/\/[^\s]+)/, alsoWaitFor: /admin on http:\/\// });
    const adminUrl = child.startupLines.map((l) => /admin on (http:\/\/[^\s/]+)/.exec(l)?.[1]).find(Boolean)!;
    if (cluster) await waitShared(adminUrl);
    return { ...child, adminUrl };
  }));
}

async function waitShared(adminUrl: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ready = await fetch(`${adminUrl}/readyz`).then((r) => r.json() as Promise<{ slots?: string }>, () => ({ slots: undefined }));
    if (ready.slots === 'shared') return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${adminUrl}: not in shared mode after 10 s`);
}

/** p50/p99 of the lease-exchange histogram summed over instances (bucket resolution, interpolated). */
async function leaseQuantiles(adminUrls: string[]): Promise<{ p50: number | null; p99: number | null; count: number }> {
  const buckets = new Map<number, number>();
  for (const url of adminUrls) {
    const text = await fetch(`${url}/metrics`).then((r) => r.text());
    for (const m of text.matchAll(/^sluice_cluster_lease_exchange_seconds_bucket\{le="([^"]+)"\} (\d+)/gm)) {
      const le = m[1] === '+Inf' ? Infinity : Number(m[1]);
      buckets.set(le, (buckets.get(le) ?? 0) + Number(m[2]));
    }
  }
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  const q = (p: number): number | null => {
    if (total === 0) return null;
    const rank = p * total;
    let prevLe = 0;
    let prevCount = 0;
    for (const [le, count] of sorted) {
      if (count >= rank) {
        if (!Number.isFinite(le)) return prevLe * 1000;
        return (prevLe + (le - prevLe) * ((rank - prevCount) / Math.max(1, count - prevCount))) * 1000;
      }
      prevLe = le;
      prevCount = count;
    }
    return null;
  };
  return { p50: round(q(0.5)), p99: round(q(0.99)), count: total };
}

function summarize(s: Scenario, label: string, results: WorkloadResult[], stats: Awaited<ReturnType<typeof readBackendStats>>, lease: { p50: number | null; p99: number | null; count: number }): Row {
  const errors: Record<string, number> = {};
  for (const r of results) for (const [k, v] of Object.entries(r.counts)) if (k !== 'ok' && v > 0) errors[k] = (errors[k] ?? 0) + v;
  // Percentiles of the merged load are not recoverable from per-instance summaries: the
  // p50 is the median instance's and the p99 the worst instance's.
  const p50s = results.map((r) => r.latency.p50).sort((a, b) => a - b);
  return {
    scenario: `${s.id} ${s.name}`, instances: label, offered: s.rate,
    goodput: round(results.reduce((sum, r) => sum + r.goodput, 0))!, p50: p50s[Math.floor(p50s.length / 2)]!, p99: Math.max(...results.map((r) => r.latency.p99)),
    errors, backendRuns: stats?.executions ?? -1, backendInflightMax: stats?.inflightMax ?? -1,
    leaseExchangeP50Ms: lease.p50, leaseExchangeP99Ms: lease.p99, leaseExchanges: lease.count,
  };
}

function table(rows: Row[], meta: Record<string, unknown>): string {
  const head = `Run of ${String(meta.at).slice(0, 10)} (${meta.mode}, ${meta.durationS} s per run), ${meta.cpu}, ${meta.cores} cores, Node ${meta.node}; test backend 50 slots, 100 ms; load split evenly over the instances; generator, instances, Redis and backend share the machine.\n\n`;
  const lines = [
    '| scenario | instances | offered/s | goodput/s | p50 ms | p99 ms | errors | backend runs | backend in-flight max | lease exchange p50 / p99 ms |',
    '|---|---|--:|--:|--:|--:|---|--:|--:|--:|',
    ...rows.map((r) => `| ${r.scenario} | ${r.instances} | ${r.offered} | ${r.goodput} | ${r.p50} | ${r.p99} | ${Object.entries(r.errors).map(([k, v]) => `${k} ${v}`).join(', ') || '0'} | ${r.backendRuns} | ${r.backendInflightMax} | ${r.leaseExchangeP50Ms === null ? '–' : `${r.leaseExchangeP50Ms} / ${r.leaseExchangeP99Ms}`} |`),
  ];
  return head + lines.join('\n');
}

function round(x: number | null): number | null {
  return x === null ? null : Math.round(x * 100) / 100;
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
