import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';

/**
 * The one Sluice configuration the bench runs with, for every scenario: the shape an
 * operator would write for the test backend's API. Adjust it here, nowhere else, and
 * the report shows it verbatim so numbers and settings travel together.
 */
export interface BenchConfigOptions {
  backendUrl: string;
  slots: number;
  /** Where the job store and spilled bodies go; one fresh directory per run. */
  workDir: string;
  /** OTLP export of traces (S6 measures what tracing costs); off when absent, as by default. */
  tracing?: BenchTracing;
}

export interface BenchTracing {
  endpoint: string;
  sampleRatio: number;
}

export function benchConfig(o: BenchConfigOptions): Record<string, unknown> {
  return {
    listen: { host: '127.0.0.1', port: 0 },
    admin: { enabled: true, host: '127.0.0.1', port: 0 },
    backend: { servers: [{ url: o.backendUrl, slots: o.slots }] },
    // Interactive requests are worth more refused early than answered after seconds.
    queue: { max_waiting: 10_000, timeout: '3s', shed: 'early' },
    // S5 holds connections idle for 10 s between requests.
    limits: { keep_alive_timeout: '30s', temp_dir: o.workDir },
    routes: [
      { name: 'health', match: { path: '/health', methods: ['GET', 'HEAD'] }, priority: 'critical', timeout: '5s' },
      {
        name: 'items',
        match: { path: '/api/items/*', methods: ['GET', 'HEAD'] },
        priority: 'high',
        timeout: '10s',
        // Like the peers' nginx setup (proxy_cache_use_stale updating): an expired item is
        // served stale while one background refresh revalidates it.
        cache: { enabled: true, stale_while_revalidate: '10s' },
        coalesce: { enabled: true },
      },
      { name: 'live', match: { path: '/api/live/*', methods: ['GET', 'HEAD'] }, priority: 'high', timeout: '10s' },
      {
        name: 'reports',
        match: { path: '/api/reports', methods: ['POST'] },
        priority: 'low',
        timeout: '120s',
        // Two-second reports leave the interactive path; at most 15 of the 50 slots, so the 30 slots the live reads need stay free.
        job: { max_slots: 15, attempts: 1, timeout: '120s' },
      },
      { name: 'uploads', match: { path: '/api/upload', methods: ['POST'] }, priority: 'normal', max_body: '1MiB', timeout: '60s' },
    ],
    jobs: { store: 'sqlite', path: join(o.workDir, 'jobs.db') },
    // Sluice's default logging: info, one access line per request, written to a file.
    logging: { level: 'info', destination: join(o.workDir, 'sluice.log'), access_log: true },
    shutdown: { grace: '2s' },
    ...(o.tracing ? { tracing: { exporter: 'otlp', endpoint: o.tracing.endpoint, protocol: 'http/protobuf', sample_ratio: o.tracing.sampleRatio } } : {}),
  };
}

/** The config as YAML, with a placeholder work directory (for the report). */
export function benchConfigYaml(backendUrl: string, slots: number): string {
  return stringify(benchConfig({ backendUrl, slots, workDir: '<per-run temp dir>' }));
}

/** Writes the config to a fresh temp directory; returns the file path and the YAML. */
export function writeBenchConfig(backendUrl: string, slots: number, tracing?: BenchTracing): { file: string; yaml: string; workDir: string } {
  const workDir = mkdtempSync(join(tmpdir(), 'sluice-bench-'));
  const yaml = stringify(benchConfig({ backendUrl, slots, workDir, tracing }));
  const file = join(workDir, 'sluice.yaml');
  writeFileSync(file, yaml);
  return { file, yaml, workDir };
}
