// The CLI as users run it: exit codes, config errors, quick flags and graceful shutdown.
import { afterEach, describe, expect, it } from 'vitest';
import { backend, get, runCli, startCliSluice, writeTempConfig } from '../helpers/harness.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

describe('sluice CLI', () => {
  it('prints help', async () => {
    const proc = runCli(['--help']);
    expect(await proc.exited).toBe(0);
    expect(proc.stdout()).toContain('sluice start');
    expect(proc.stdout()).toContain('sluice check --config FILE');
  });

  it('check: exit 2 with file:line:col for malformed YAML and for a schema error; 0 for the shipped example', async () => {
    const malformed = writeTempConfig('backend:\n  servers:\n    - url: http://x\n     slots: 3\n');
    const a = runCli(['check', '--config', malformed]);
    expect(await a.exited).toBe(2);
    expect(a.stderr()).toMatch(new RegExp(`^${malformed.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:4:\\d+: `));
    const schema = writeTempConfig('backend:\n  servers:\n    - url: http://x\n      slots: 0\n');
    const b = runCli(['check', '--config', schema]);
    expect(await b.exited).toBe(2);
    expect(b.stderr()).toContain(`${schema}:4:14: `);
    const ok = runCli(['check', '--config', 'config/sluice.yaml']);
    expect(await ok.exited).toBe(0);
  });

  it('start: an invalid config exits 2 before listening', async () => {
    const bad = writeTempConfig('listen: { port: 70000 }\nbackend:\n  servers: [{ url: "http://127.0.0.1:1", slots: 1 }]\n');
    const proc = runCli(['start', '--config', bad]);
    expect(await proc.exited).toBe(2);
    expect(proc.stderr()).toMatch(/:1:\d+: .*\(listen\.port\)/);
  });

  it('start with quick flags only, then SIGTERM drains in-flight and queued requests and exits 0', async () => {
    const be = await backend({ slots: 1, latencyMs: 300 });
    cleanups.push(() => be.close());
    const gw = await startCliSluice(['--backend', be.url, '--slots', '1', '--port', '0', '--admin-port', '0']);
    cleanups.push(() => { if (gw.child.exitCode === null) gw.child.kill('SIGKILL'); });
    const pending = [1, 2, 3].map((i) => get(`${gw.url}/api/live/${i}`));
    await new Promise((r) => setTimeout(r, 100));
    gw.child.kill('SIGTERM');
    const results = await Promise.all(pending);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(await gw.exited).toBe(0);
    expect(gw.stderr()).toContain('drained');
    expect(be.stats().total).toBe(3);
  });

  it('flags override the file', async () => {
    const be = await backend({ slots: 2, latencyMs: 1 });
    cleanups.push(() => be.close());
    const file = writeTempConfig('listen: { port: 1 }\nbackend:\n  servers: [{ url: "http://127.0.0.1:1", slots: 9 }]\n');
    const gw = await startCliSluice(['--config', file, '--backend', be.url, '--slots', '2', '--port', '0', '--admin-port', '0']);
    cleanups.push(() => { if (gw.child.exitCode === null) gw.child.kill('SIGKILL'); });
    expect(gw.stdout()).toContain(`${be.url} (2 slots)`);
    expect((await get(`${gw.url}/api/live/1`)).status).toBe(200);
    gw.child.kill('SIGTERM');
    expect(await gw.exited).toBe(0);
  });
});
