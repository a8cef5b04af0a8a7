// The CLI in a new user's first hour: help on every subcommand, a hang-up that does not take
// traffic down, a taken port or a locked job store explained in one line, and quick flags
// that leave nothing behind in the directory they were started from.
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { backend, get, runCli, startCliSluice, writeTempConfig, type SluiceProcess } from '../helpers/harness.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

function killOnCleanup(proc: SluiceProcess): void {
  cleanups.push(async () => {
    if (proc.child.exitCode === null && proc.child.signalCode === null) {
      proc.child.kill('SIGKILL');
      await proc.exited;
    }
  });
}

async function occupiedPort(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { server, port: (server.address() as { port: number }).port };
}

describe('sluice CLI, first hour', () => {
  it('start --help and check --help print their usage and exit 0', async () => {
    const start = runCli(['start', '--help']);
    expect(await start.exited).toBe(0);
    expect(start.stdout()).toMatch(/^Usage: sluice start /);
    expect(start.stdout()).toContain('--backend URL');
    expect(start.stdout()).toContain('SIGHUP');
    const check = runCli(['check', '-h']);
    expect(await check.exited).toBe(0);
    expect(check.stdout()).toMatch(/^Usage: sluice check /);
    expect(check.stderr()).toBe('');
  });

  it('SIGHUP without --config is logged and ignored: the request in flight completes and the gateway keeps serving', async () => {
    const be = await backend({ slots: 1, latencyMs: 600 });
    cleanups.push(() => be.close());
    const gw = await startCliSluice(['--backend', be.url, '--slots', '1', '--port', '0', '--admin-port', '0']);
    killOnCleanup(gw);
    const inFlight = get(`${gw.url}/api/live/1`);
    await new Promise((r) => setTimeout(r, 150));
    gw.child.kill('SIGHUP');
    expect((await inFlight).status).toBe(200);
    expect(gw.child.exitCode).toBeNull();
    // One line says what happened to the signal (there is no file to re-read).
    expect(gw.stderr().split('\n').filter((l) => l.includes('SIGHUP'))).toHaveLength(1);
    expect((await get(`${gw.url}/api/live/2`)).status).toBe(200);
    gw.child.kill('SIGTERM');
    expect(await gw.exited).toBe(0);
  });

  it('a gateway or admin port already in use is one line naming the address and the flag, exit 1', async () => {
    const { port } = await occupiedPort();
    const gateway = runCli(['start', '--backend', 'http://127.0.0.1:1', '--host', '127.0.0.1', '--port', String(port), '--admin-port', '0']);
    killOnCleanup(gateway);
    expect(await gateway.exited).toBe(1);
    expect(gateway.stderr()).toBe(`sluice: cannot listen for the gateway on 127.0.0.1:${port}: address already in use (another process holds the port); choose another with --port or listen.port\n`);
    const admin = runCli(['start', '--backend', 'http://127.0.0.1:1', '--host', '127.0.0.1', '--port', '0', '--admin-port', String(port)]);
    killOnCleanup(admin);
    expect(await admin.exited).toBe(1);
    expect(admin.stderr()).toMatch(new RegExp(`^sluice: cannot listen for the admin server on 127\\.0\\.0\\.1:${port}: address already in use .*--admin-port or admin\\.port\\n$`));
  });

  it('quick flags keep jobs in memory: nothing is written where Sluice was started, and a second instance there starts', async () => {
    const be = await backend({ slots: 2, latencyMs: 20 });
    cleanups.push(() => be.close());
    const cwd = mkdtempSync(join(tmpdir(), 'sluice-cwd-'));
    const args = ['--backend', be.url, '--slots', '2', '--port', '0', '--admin-port', '0'];
    const first = await startCliSluice(args, {}, cwd);
    killOnCleanup(first);
    // Quick flags make no job route and leave jobs.prefer_async at ignore: Prefer is not a job.
    const answered = await get(`${first.url}/api/live/1`, { headers: { prefer: 'respond-async' } });
    expect(answered.status).toBe(200);
    const second = await startCliSluice(args, {}, cwd);
    killOnCleanup(second);
    expect((await get(`${second.url}/api/live/2`)).status).toBe(200);
    expect(readdirSync(cwd)).toEqual([]);
    const status = JSON.parse((await get(`${first.adminUrl}/status`)).text);
    expect(status.jobs.store).toBe('memory');
  });

  it('a job store held by another Sluice is one line, exit 1, no stack trace', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-store-'));
    const path = join(dir, 'jobs.db');
    const file = writeTempConfig(`backend:\n  servers: [{ url: "http://127.0.0.1:1", slots: 1 }]\njobs: { path: ${path} }\nroutes:\n  - name: reports\n    match: { path: /api/reports }\n    job: {}\n`);
    const first = await startCliSluice(['--config', file, '--port', '0', '--admin-port', '0']);
    killOnCleanup(first);
    expect(existsSync(path)).toBe(true);
    const second = runCli(['start', '--config', file, '--port', '0', '--admin-port', '0']);
    killOnCleanup(second);
    expect(await second.exited).toBe(1);
    expect(second.stderr()).toBe(`sluice: job store ${path} is in use by another Sluice process (each process needs its own jobs.path)\n`);
  });
});
