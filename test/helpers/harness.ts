// Test harness: real Sluice and real test backends on port 0, real sockets. Everything a
// test starts is registered for cleanup so a failing test does not leak servers.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { request as undiciRequest, Agent } from 'undici';
import { createApp, type SluiceApp } from '../../src/app.js';
import { compileConfig } from '../../src/config/compile.js';
import { parseConfigText } from '../../src/config/load.js';
import { startTestBackend, type TestBackend, type TestBackendOptions } from '../../src/testing/backend.js';

export const CLI = resolve(import.meta.dirname, '../../dist/src/cli.js');

export interface RunningSluice {
  app: SluiceApp;
  url: string;
  adminUrl: string;
  close(): Promise<void>;
}

/** Starts a test backend on port 0 (defaults: 10 slots, 100 ms). */
export async function backend(opts: Partial<TestBackendOptions> = {}): Promise<TestBackend> {
  return startTestBackend({ port: 0, slots: 10, latencyMs: 100, reportLatencyMs: 2000, ...opts });
}

/**
 * Starts Sluice in this process from YAML text (listen/admin ports forced to 0).
 * `yaml` is the config without the listen/admin sections.
 */
export async function sluice(yaml: string): Promise<RunningSluice> {
  // Tests never share the default on-disk job store; those that test durability say so.
  const jobs = /^jobs:/m.test(yaml) ? '' : 'jobs: { store: memory }\n';
  // A test that sets listen or admin itself (trusted_proxies, token) keeps port 0 there.
  const listen = /^listen:/m.test(yaml) ? '' : 'listen: { host: 127.0.0.1, port: 0 }\n';
  const admin = /^admin:/m.test(yaml) ? '' : 'admin: { host: 127.0.0.1, port: 0 }\n';
  const text = `${listen}${admin}logging: { level: silent, access_log: false }\n${jobs}${yaml}`;
  const app = createApp(compileConfig(parseConfigText(text, 'test.yaml', {})));
  const { port, adminPort } = await app.listen();
  return {
    app,
    url: `http://127.0.0.1:${port}`,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    close: async () => { await app.shutdown(1000); },
  };
}

/** Backend block for a single test backend. */
export function backendYaml(be: TestBackend, slots: number): string {
  return `backend:\n  servers:\n    - url: ${be.url}\n      slots: ${slots}\n`;
}

/** An HTTP client with plenty of connections, so the client never limits a test. */
export function client(connections = 2000): Agent {
  return new Agent({ connections, pipelining: 0, keepAliveTimeout: 1000 });
}

export async function get(url: string, opts: { headers?: Record<string, string>; dispatcher?: Agent; method?: string; body?: string | Buffer } = {}) {
  const res = await undiciRequest(url, { method: (opts.method ?? 'GET') as 'GET', headers: opts.headers, dispatcher: opts.dispatcher, body: opts.body });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body, text: body.toString('utf8') };
}

export async function json<T = any>(url: string, opts: Parameters<typeof get>[1] = {}): Promise<T> {
  return JSON.parse((await get(url, opts)).text) as T;
}

export function writeTempConfig(yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-test-'));
  const file = join(dir, 'sluice.yaml');
  writeFileSync(file, yaml);
  return file;
}

export interface SluiceProcess {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Runs the compiled CLI (`npm run build` first) as a child process. */
export function runCli(args: string[], env: Record<string, string> = {}, cwd?: string): SluiceProcess {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], cwd });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Waits until `predicate` holds, polling; fails after `timeoutMs`. */
export async function until(predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await predicate()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Starts the CLI with `start` and resolves once it prints its listening lines. */
export async function startCliSluice(args: string[], env: Record<string, string> = {}, cwd?: string): Promise<SluiceProcess & { url: string; adminUrl: string }> {
  const proc = runCli(['start', ...args], env, cwd);
  await until(() => /admin on http:\/\/\S+\/status/.test(proc.stdout()) || proc.child.exitCode !== null, 15_000, 'sluice to listen');
  const url = /listening on (http:\/\/\S+)/.exec(proc.stdout())?.[1];
  const admin = /admin on (http:\/\/\S+)\/status/.exec(proc.stdout())?.[1];
  if (!url || !admin) throw new Error(`sluice did not start: ${proc.stderr()}`);
  return { ...proc, url, adminUrl: admin };
}
