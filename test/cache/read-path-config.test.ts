// The read path's config keys: defaults after compilation, and validation errors that
// point at the offending line.
import { describe, expect, it } from 'vitest';
import { compileConfig } from '../../src/config/compile.js';
import { ConfigError, parseConfigText } from '../../src/config/load.js';

const BASE = 'backend:\n  servers:\n    - { url: "http://127.0.0.1:8000", slots: 10 }\n';

function problems(yaml: string): string[] {
  try {
    parseConfigText(BASE + yaml, 'sluice.yaml', {});
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('read path config', () => {
  it('gives every route cache and coalescing defaults that never merge per-user reads', () => {
    const config = compileConfig(parseConfigText(`${BASE}routes:\n  - { name: items, match: { path: /api/items/* } }\n`, 'sluice.yaml', {}));
    const items = config.routes.find((r) => r.name === 'items')!;
    expect(items.cache).toMatchObject({ enabled: true, max_object: 8 * 1024 * 1024, allow_set_cookie: false, vary_extra: [] });
    expect(items.cache.ttl).toBeUndefined();
    expect(items.coalesce).toEqual({ enabled: true, key_headers: ['Authorization', 'Cookie'], on_leader_error: 'share', methods: ['GET', 'HEAD'], allow_body: false });
    expect(config.raw.cache.max_bytes).toBe(256 * 1024 * 1024);
  });

  it('parses durations and sizes of the cache keys', () => {
    const config = compileConfig(parseConfigText(`${BASE}cache: { max_bytes: 64MiB }\nroutes:\n  - name: items\n    cache: { ttl: 30s, stale_while_revalidate: 1m, stale_if_error: 10m, error_ttl: 2s, max_object: 512KiB }\n`, 'sluice.yaml', {}));
    expect(config.routes[0]!.cache).toMatchObject({ ttl: 30_000, stale_while_revalidate: 60_000, stale_if_error: 600_000, error_ttl: 2_000, max_object: 512 * 1024 });
    expect(config.raw.cache.max_bytes).toBe(64 * 1024 * 1024);
  });

  it('keeps credentials out of the cache by default, and compiles how a route keys on them', () => {
    const yaml = `${BASE}cache: { targeted_fields: [Edge-Control] }\nroutes:
  - { name: plain }
  - { name: keyed, cache: { key_headers: [Cookie, X-Tenant], vary_extra: [Accept-Language], heuristic: 12.5%, heuristic_max: 1h } }
  - { name: assets, cache: { ignore_cookies: true, key_headers: [Authorization, Cookie] } }
`;
    const config = compileConfig(parseConfigText(yaml, 'sluice.yaml', {}));
    const [plain, keyed, assets] = config.routes;
    expect(plain!.cacheKey).toEqual({ headers: [], authorization: 'bypass', cookie: 'bypass' });
    expect(plain!.cache).toMatchObject({ ignore_cookies: false, allow_client_refresh: false, heuristic_max: 86_400_000 });
    expect(plain!.cache.heuristic).toBeUndefined();
    expect(keyed!.cacheKey).toEqual({ headers: ['accept-language', 'cookie', 'x-tenant'], authorization: 'bypass', cookie: 'keyed' });
    expect(keyed!.cache).toMatchObject({ heuristic: 0.125, heuristic_max: 3_600_000 });
    expect(assets!.cacheKey).toEqual({ headers: ['authorization'], authorization: 'keyed', cookie: 'ignored' });
    expect(config.raw.cache.targeted_fields).toEqual(['Edge-Control']);
    expect(problems('routes:\n  - name: items\n    cache: { heuristic: lots }\n').join('\n')).toMatch(/sluice\.yaml:6:\d+: heuristic is a percentage/);
  });

  it('reports bad values at their line', () => {
    const yaml = 'routes:\n  - name: items\n    coalesce:\n      on_leader_error: retry_all\n      key_headers: ["not a header"]\n    cache: { ttl: soon, colour: blue }\n';
    const found = problems(yaml).join('\n');
    expect(found).toMatch(/sluice\.yaml:7:\d+: .*on_leader_error/);
    expect(found).toMatch(/sluice\.yaml:8:\d+: must be an HTTP header name/);
    expect(found).toMatch(/sluice\.yaml:9:\d+: .*ttl/);
    expect(found).toMatch(/sluice\.yaml:9:\d+: .*colour/);
  });
});
