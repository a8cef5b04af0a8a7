import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProcessGroup } from './procs.js';
import type { SystemName } from './scenarios.js';
import { writeBenchConfig, type BenchTracing } from './sluice-config.js';

/** Where a run's load goes, and the process (if any) whose cost is measured. */
export interface Target {
  system: SystemName;
  origin: string;
  host: string;
  port: number;
  /** The measured process: Sluice, or the node:http baseline. */
  pid?: number;
  adminUrl?: string;
  /** The YAML Sluice ran with, for the report. */
  configYaml?: string;
  stop(): Promise<void>;
}

export interface TargetEnv {
  procs: ProcessGroup;
  cliPath: string;
  staticServerPath: string;
  /** dist/bench/minimal-proxy.js: the Node floor for a proxy. */
  minimalProxyPath: string;
  backendUrl: string;
  /** Set when the bench started the backend itself (its CPU is then accounted). */
  backendPid?: number;
  slots: number;
  /** When set, Sluice runs under `node --cpu-prof` and writes its profile to <dir>/<system>/. */
  cpuProfDir?: string;
  /** OTLP/HTTP endpoint for `sluice-traced` (tracing at sample_ratio 0.1). */
  otlpEndpoint?: string;
}

/** The sample ratio the tracing-cost target is stated at. */
export const TRACED_SAMPLE_RATIO = 0.1;

function fromUrl(system: SystemName, url: string): Omit<Target, 'stop'> {
  const u = new URL(url);
  return { system, origin: u.origin, host: u.hostname, port: Number(u.port) };
}

/** Stops the process, then removes its per-run directory (config, job store, spills). */
function stopAndClean(stop: () => Promise<void>, workDir: string): () => Promise<void> {
  return async () => {
    await stop();
    rmSync(workDir, { recursive: true, force: true });
  };
}

async function startSluice(env: TargetEnv, system: 'sluice' | 'sluice-traced' | 'sluice-compact'): Promise<Target> {
  let tracing: BenchTracing | undefined;
  if (system === 'sluice-traced') {
    if (!env.otlpEndpoint) throw new Error('sluice-traced needs an OTLP sink (otlpEndpoint)');
    tracing = { endpoint: env.otlpEndpoint, sampleRatio: TRACED_SAMPLE_RATIO };
  }
  const { file, yaml, workDir } = writeBenchConfig(env.backendUrl, env.slots, tracing);
  const child = await env.procs.spawnServer({
    name: system,
    nodeArgs: env.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${join(env.cpuProfDir, system)}`] : [],
    args: [env.cliPath, 'start', '--config', file, '--backend', env.backendUrl, '--slots', String(env.slots), ...(system === 'sluice-compact' ? ['--compact-heap'] : [])],
    ready: /listening on (http:\/\/[^\s]+)/,
    alsoWaitFor: /admin on http:\/\//,
  }).catch((err: unknown) => {
    rmSync(workDir, { recursive: true, force: true });
    throw err;
  });
  const admin = child.startupLines.map((l) => /admin on (http:\/\/[^\s/]+)/.exec(l)?.[1]).find(Boolean);
  return { ...fromUrl(system, child.url), pid: child.pid, adminUrl: admin, configYaml: yaml, stop: stopAndClean(child.stop, workDir) };
}

/** The S6 baseline serves exactly the bytes and headers the backend gives for `path`. */
async function startNodeHttp(env: TargetEnv, path: string): Promise<Target> {
  const res = await fetch(new URL(path, env.backendUrl), { signal: AbortSignal.timeout(5_000) });
  const body = Buffer.from(await res.arrayBuffer());
  const headers: Record<string, string> = {};
  for (const name of ['content-type', 'cache-control', 'etag']) {
    const v = res.headers.get(name);
    if (v !== null) headers[name] = v;
  }
  const workDir = mkdtempSync(join(tmpdir(), 'sluice-bench-'));
  const file = join(workDir, 'static-response.json');
  writeFileSync(file, JSON.stringify({ headers, bodyBase64: body.toString('base64') }));
  const child = await env.procs.spawnServer({
    name: 'node-http',
    args: [env.staticServerPath, file],
    ready: /listening on (http:\/\/[^\s]+)/,
  });
  return { ...fromUrl('node-http', child.url), pid: child.pid, stop: stopAndClean(child.stop, workDir) };
}

/** node:http + one undici Pool of `slots` connections: the least a Node proxy does. */
async function startMinimalProxy(env: TargetEnv): Promise<Target> {
  const child = await env.procs.spawnServer({
    name: 'node-proxy',
    args: [env.minimalProxyPath, env.backendUrl, String(env.slots)],
    ready: /listening on (http:\/\/[^\s]+)/,
  });
  return { ...fromUrl('node-proxy', child.url), pid: child.pid, stop: child.stop };
}

export async function startTarget(system: SystemName, env: TargetEnv, baselinePath: string): Promise<Target> {
  switch (system) {
    case 'direct':
      return { ...fromUrl('direct', env.backendUrl), stop: async () => undefined };
    case 'sluice':
    case 'sluice-traced':
    case 'sluice-compact':
      return startSluice(env, system);
    case 'node-http':
      return startNodeHttp(env, baselinePath);
    case 'node-proxy':
      return startMinimalProxy(env);
  }
}
