// The `cluster` block: the commented example in config/sluice.yaml is valid once
// uncommented, bad values are reported with their line, and an unreachable Redis is a
// state Sluice reports and serves through, never a crash.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, parseConfigText } from '../../src/config/load.js';
import { backend, backendYaml, get, json, sluice, until } from '../helpers/harness.js';

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => {});
});

function problems(text: string): string[] {
  try {
    parseConfigText(text, 'sluice.yaml', {});
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

const BACKEND = 'backend:\n  servers:\n    - url: http://127.0.0.1:8000\n      slots: 50\n';

describe('cluster config', () => {
  it('the example block in config/sluice.yaml parses with its documented values once uncommented', () => {
    const text = readFileSync(resolve(import.meta.dirname, '../../config/sluice.yaml'), 'utf8');
    const start = text.indexOf('# cluster:');
    expect(start).toBeGreaterThan(0);
    const block = text.slice(start).split('\n').filter((l) => l.startsWith('# ') && /^#( cluster:|   )/.test(l));
    const uncommented = text.replace(block.join('\n'), block.map((l) => l.slice(2)).join('\n'));
    const config = parseConfigText(uncommented, 'sluice.yaml', { SLUICE_JOBS_PATH: '/tmp/x.db' });
    expect(config.cluster).toMatchObject({
      redis: 'redis://127.0.0.1:6379/0', lease_ttl: 10_000, fallback_slots: 16, key_prefix: 'sluice:',
      require_redis: false, coalesce: true, cache_max_bytes: 256 * 1024 * 1024,
    });
  });

  it('defaults, and errors with their line', () => {
    const config = parseConfigText(`${BACKEND}cluster:\n  redis: redis://r:6379/0\n`, 'f.yaml', {});
    expect(config.cluster).toMatchObject({ lease_ttl: 10_000, fallback_slots: 1, coalesce: true, require_redis: false });
    expect(config.cluster?.instance_id).toBeUndefined();
    expect(problems(`${BACKEND}cluster:\n  redis: http://r:6379\n`)[0]).toMatch(/^sluice\.yaml:6:\d+: .*redis:\/\//);
    expect(problems(`${BACKEND}cluster:\n  redis: redis://r\n  lease_ttl: 100ms\n`)[0]).toMatch(/^sluice\.yaml:7:\d+: .*at least 500ms/);
    expect(problems(`${BACKEND}cluster:\n  redis: redis://r\n  fallback_slots: -1\n`)[0]).toMatch(/^sluice\.yaml:7:/);
    expect(problems(`${BACKEND}cluster:\n  redis: redis://r\n  leases: 3\n`)[0]).toMatch(/leases/);
  });

  it('with Redis unreachable Sluice starts, serves on fallback_slots, and /readyz says why (503 with require_redis)', async () => {
    const be = await backend({ slots: 10, latencyMs: 200 });
    cleanup.push(() => be.close());
    // Port 1 on loopback: nothing listens there.
    const redis = 'cluster:\n  redis: redis://127.0.0.1:1/0\n  instance_id: lonely\n  fallback_slots: 2\n';
    const app = await sluice(`${backendYaml(be, 10)}${redis}`);
    cleanup.push(() => app.close());
    const strict = await sluice(`${backendYaml(be, 10)}${redis}  require_redis: true\n`);
    cleanup.push(() => strict.close());
    const results = await Promise.all(Array.from({ length: 6 }, (_, n) => get(`${app.url}/api/items/f${n}`)));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(be.stats().inflight_max).toBe(2);
    await until(() => app.app.cluster!.link.error !== undefined, 5_000, 'a connection error');
    const ready = await get(`${app.adminUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.text)).toMatchObject({ ready: true, redis: 'connecting', slots: 'fallback', instance: 'lonely' });
    const notReady = await get(`${strict.adminUrl}/readyz`);
    expect(notReady.status).toBe(503);
    expect(JSON.parse(notReady.text)).toMatchObject({ ready: false, redis: 'connecting' });
    const status = await json(`${app.adminUrl}/status`);
    expect(status.cluster.redis).toMatchObject({ health: 'connecting', at: 'redis://127.0.0.1:1/0' });
    expect(status.cluster.redis.error).toMatch(/ECONNREFUSED/);
  });
});
