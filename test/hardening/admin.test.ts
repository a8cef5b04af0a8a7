// The admin server: a bearer token when one is set, loopback Host names on a loopback
// listener (no DNS rebinding), and a warning when it is exposed without a token.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestBackend } from '../../src/testing/backend.js';
import { backend, backendYaml, sluice, startCliSluice, writeTempConfig, type RunningSluice } from '../helpers/harness.js';
import { exchange } from '../helpers/raw-http.js';

const TOKEN = 'correct-horse-battery-staple';
let be: TestBackend;
let gw: RunningSluice;

beforeAll(async () => {
  be = await backend({ slots: 2, latencyMs: 1 });
  gw = await sluice(`${backendYaml(be, 2)}admin: { host: 127.0.0.1, port: 0, token: ${TOKEN} }\n`);
});
afterAll(async () => {
  await gw?.close();
  await be?.close();
});

const adminRequest = (method: string, path: string, headers: string[]) =>
  exchange(gw.adminUrl, `${method} ${path} HTTP/1.1\r\n${headers.map((h) => `${h}\r\n`).join('')}Connection: close\r\n\r\n`);

describe('admin.token', () => {
  it('every resource but the probes needs the bearer token', async () => {
    for (const path of ['/status', '/metrics', '/queue', '/jobs', '/', '/dashboard.json']) {
      const none = await adminRequest('GET', path, ['Host: 127.0.0.1']);
      expect(none.responses[0]?.status, path).toBe(401);
      expect(none.responses[0]?.headers['www-authenticate']).toMatch(/^Bearer/);
      const wrong = await adminRequest('GET', path, ['Host: 127.0.0.1', 'Authorization: Bearer correct-horse-battery-stapl']);
      expect(wrong.responses[0]?.status, path).toBe(401);
    }
    const ok = await adminRequest('GET', '/status', ['Host: 127.0.0.1', `Authorization: Bearer ${TOKEN}`]);
    expect(ok.responses[0]?.status).toBe(200);
    expect(JSON.parse(ok.responses[0]!.body).slots.total).toBe(2);
    for (const probe of ['/healthz', '/readyz']) {
      expect((await adminRequest('GET', probe, ['Host: 127.0.0.1'])).responses[0]?.status).toBe(200);
    }
  });

  it('a cache purge without the token is refused and purges nothing', async () => {
    const purge = await adminRequest('DELETE', '/cache', ['Host: 127.0.0.1']);
    expect(purge.responses[0]?.status).toBe(401);
  });

  it('on loopback, a Host that is not a loopback name is refused (DNS rebinding), even with the token', async () => {
    const rebound = await adminRequest('GET', '/status', ['Host: attacker.example:9090', `Authorization: Bearer ${TOKEN}`]);
    expect(rebound.responses[0]?.status).toBe(403);
    expect(JSON.parse(rebound.responses[0]!.body).error.code).toBe('admin_host_refused');
    const local = await adminRequest('GET', '/status', ['Host: localhost:9090', `Authorization: Bearer ${TOKEN}`]);
    expect(local.responses[0]?.status).toBe(200);
  });
});

describe('start-up warning', () => {
  it('warns when the admin server listens beyond loopback without a token', async () => {
    const file = writeTempConfig(`listen: { host: 127.0.0.1, port: 0 }
admin: { host: 0.0.0.0, port: 0 }
backend: { servers: [{ url: "${be.url}", slots: 2 }] }
jobs: { store: memory }
logging: { access_log: false }
`);
    const proc = await startCliSluice(['--config', file]);
    try {
      await new Promise((r) => setTimeout(r, 200));
      expect(proc.stdout() + proc.stderr()).toMatch(/reachable beyond loopback without admin\.token/);
    } finally {
      proc.child.kill('SIGTERM');
      await proc.exited;
    }
  });
});
