// Hot reload through the real CLI: POST /reload and SIGHUP under load. A valid config applies
// to new requests; an invalid one is refused with file:line:col and the old one keeps
// running; no request in flight or queued fails. Needs `npm run build` (uses dist/).
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestBackend } from '../../src/testing/backend.js';
import { backend, client, get, json, startCliSluice, until, writeTempConfig, type SluiceProcess } from '../helpers/harness.js';

let be: TestBackend;
let file: string;
let proc: SluiceProcess & { url: string; adminUrl: string };
const http = client(64);

const configText = (opts: { slots: number; deny: boolean; priority: string }) => `listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
backend: { servers: [{ url: "${be.url}", slots: ${opts.slots} }] }
jobs: { store: memory }
logging: { access_log: false }
routes:
  - name: blocked
    match: { path: /api/blocked/* }
    deny: ${opts.deny}
  - name: echo
    match: { path: /api/echo }
    priority: ${opts.priority}
`;

const reload = async () => {
  const res = await get(`${proc.adminUrl}/reload`, { method: 'POST', dispatcher: http });
  return { status: res.status, body: JSON.parse(res.text) };
};

beforeAll(async () => {
  be = await backend({ slots: 4, latencyMs: 30 });
  file = writeTempConfig(configText({ slots: 4, deny: true, priority: 'normal' }));
  proc = await startCliSluice(['--config', file]);
});
afterAll(async () => {
  proc?.child.kill('SIGTERM');
  await proc?.exited;
  await http.close();
  await be?.close();
});

describe('hot reload', () => {
  it('10 reloads under load: every request answered 200, changes applied to new requests', async () => {
    let stop = false;
    const failures: number[] = [];
    let done = 0;
    const worker = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const res = await get(`${proc.url}/api/echo?w=${w}&i=${i}`, { dispatcher: http });
        done++;
        if (res.status !== 200) failures.push(res.status);
      }
    };
    const load = Array.from({ length: 12 }, (_, w) => worker(w));
    for (let n = 0; n < 10; n++) {
      const deny = n % 2 === 1;
      writeFileSync(file, configText({ slots: n % 3 === 0 ? 2 : 4, deny, priority: n % 2 ? 'high' : 'low' }));
      const result = await reload();
      expect(result.status).toBe(200);
      expect(result.body.restart_required).toEqual([]);
      const blocked = await get(`${proc.url}/api/blocked/x`, { dispatcher: http });
      if (deny) expect(blocked.status).toBe(403);
      else expect(blocked.headers['x-sluice-error']).toBeUndefined();
      await new Promise((r) => setTimeout(r, 100));
    }
    writeFileSync(file, configText({ slots: 2, deny: true, priority: 'normal' }));
    expect((await reload()).status).toBe(200);
    const status = await json(`${proc.adminUrl}/status`);
    expect(status.slots.total).toBe(2);
    stop = true;
    await Promise.all(load);
    expect(done).toBeGreaterThan(50);
    expect(failures).toEqual([]);
    expect(be.stats().inflight_max).toBeLessThanOrEqual(4);
  });

  it('an invalid config is refused with file:line:col and the running one stays', async () => {
    writeFileSync(file, configText({ slots: 2, deny: true, priority: 'normal' }).replace('priority: normal', 'priority: urgent'));
    const result = await reload();
    expect(result.status).toBe(400);
    expect(result.body.error.code).toBe('config_invalid');
    expect(result.body.error.problems[0]).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: `));
    expect((await get(`${proc.url}/api/blocked/x`, { dispatcher: http })).status).toBe(403);
    expect((await get(`${proc.url}/api/echo`, { dispatcher: http })).status).toBe(200);
  });

  it('restart-only changes are reported and keep their running value', async () => {
    writeFileSync(file, configText({ slots: 9, deny: true, priority: 'normal' }).replace('admin: { host: 127.0.0.1, port: 0 }', 'admin: { host: 127.0.0.1, port: 0, token: abcdefghijklmnopqrstu }'));
    const result = await reload();
    expect(result.status).toBe(200);
    expect(result.body.restart_required).toEqual(['admin', 'backend.servers[0].slots above 4 (its connection pool)']);
    expect((await json(`${proc.adminUrl}/status`)).slots.total).toBe(4);
  });

  it('SIGHUP re-reads the file', async () => {
    writeFileSync(file, configText({ slots: 4, deny: false, priority: 'normal' }));
    proc.child.kill('SIGHUP');
    await until(() => /sluice: reloaded/.test(proc.stderr()), 5000, 'the reload line');
    const blocked = await get(`${proc.url}/api/blocked/x`, { dispatcher: http });
    expect(blocked.headers['x-sluice-error']).toBeUndefined();
    writeFileSync(file, 'routes: [');
    proc.child.kill('SIGHUP');
    await until(() => /reload refused/.test(proc.stderr()), 5000, 'the refusal');
    expect(proc.stderr()).toMatch(/sluice\.yaml:\d+:\d+: /);
    expect((await get(`${proc.url}/api/echo`, { dispatcher: http })).status).toBe(200);
  });
});
