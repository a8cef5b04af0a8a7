import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfigText } from '../../src/config/load.js';
import { compileConfig } from '../../src/config/compile.js';
import { findRoute } from '../../src/routing/match-route.js';

function problems(text: string, env: Record<string, string> = {}): string[] {
  try {
    parseConfigText(text, 'sluice.yaml', env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

const BACKEND = 'backend:\n  servers:\n    - url: http://127.0.0.1:8000\n      slots: 50\n';

describe('config loading', () => {
  it('applies defaults and converts units', () => {
    const config = parseConfigText(`${BACKEND}queue:\n  timeout: 1.5s\nlimits:\n  max_body: 2MiB\n`, 'f.yaml', {});
    expect(config.queue.timeout).toBe(1500);
    expect(config.limits.max_body).toBe(2 * 1024 * 1024);
    expect(config.listen.port).toBe(8080);
    expect(config.admin).toMatchObject({ host: '127.0.0.1', port: 9090 });
  });

  it('reports malformed YAML with its line and column', () => {
    const found = problems('listen:\n  port: 8080\nbackend:\n  servers: [ {url: x\n');
    expect(found[0]).toMatch(/^sluice\.yaml:\d+:\d+: /);
    expect(found[0]).toMatch(/^sluice\.yaml:(4|5):/);
  });

  it('reports a schema error at the offending key', () => {
    const found = problems(`${BACKEND}queue:\n  max_waiting: lots\n`);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/^sluice\.yaml:6:16: .*number.*\(queue\.max_waiting\)$/);
  });

  it('reports unknown keys and bad units', () => {
    const found = problems(`${BACKEND}queue:\n  timeout: 10\n  max_wait: 5\n`);
    expect(found.some((p) => /^sluice\.yaml:6:\d+: .*duration/.test(p))).toBe(true);
    expect(found.some((p) => /max_wait/.test(p))).toBe(true);
  });

  it('interpolates ${VAR} and ${VAR:-default}, keeping numbers numbers', () => {
    const text = 'listen:\n  port: ${PORT}\nbackend:\n  servers:\n    - url: ${URL:-http://127.0.0.1:9}\n      slots: ${SLOTS:-7}\n';
    const config = parseConfigText(text, 'f.yaml', { PORT: '8181' });
    expect(config.listen.port).toBe(8181);
    expect(config.backend.servers[0]).toEqual({ url: 'http://127.0.0.1:9', slots: 7, recycle_queued: true });
    const missing = problems('listen:\n  port: ${NOPE}\n' + BACKEND);
    expect(missing[0]).toMatch(/^sluice\.yaml:2:9: environment variable NOPE is not set/);
  });

  it('rejects reservations larger than the backend', () => {
    const found = problems(`${BACKEND}routes:\n  - name: a\n    reserved_slots: 40\n  - name: b\n    reserved_slots: 20\n`);
    expect(found[0]).toMatch(/reserved_slots add up to 60, more than the 50 backend slots/);
  });
});

describe('config errors a new user can act on', () => {
  it('resolves ${VAR} inside flow mappings, keeping numbers numbers and columns true', () => {
    const text = 'listen: { host: ${HOST:-127.0.0.1}, port: ${PORT} }\nbackend:\n  servers: [{ url: "${URL:-http://127.0.0.1:9}", slots: ${SLOTS:-7} }]\n';
    const config = parseConfigText(text, 'f.yaml', { PORT: '8181' });
    expect(config.listen).toMatchObject({ host: '127.0.0.1', port: 8181 });
    expect(config.backend.servers[0]).toMatchObject({ url: 'http://127.0.0.1:9', slots: 7 });
    // The column is the reference's own, in the file as written.
    expect(problems('listen: { port: ${NOPE} }\n' + BACKEND)).toEqual([
      'sluice.yaml:1:17: environment variable NOPE is not set and has no default (use ${NOPE:-default})',
    ]);
    // A value that only contains a reference stays a string, with its braces.
    const mixed = parseConfigText(`${BACKEND}jobs: { path: "/srv/\${APP}-jobs.db" }\n`, 'f.yaml', { APP: 'shop' });
    expect(mixed.jobs.path).toBe('/srv/shop-jobs.db');
  });

  it('suggests the key that was meant, pointing at the misspelt key itself', () => {
    expect(problems(`listen: { prot: 8080 }\n${BACKEND}routes:\n  - name: a\n    max_slot: 3\n`)).toEqual([
      'sluice.yaml:1:11: unknown key "prot" in listen; did you mean "port"?',
      'sluice.yaml:8:5: unknown key "max_slot" in routes.0; did you mean "max_slots"?',
    ]);
    const far = problems(`${BACKEND}queue:\n  zzz: 1\n`);
    expect(far).toEqual(['sluice.yaml:6:3: unknown key "zzz" in queue (known keys: max_waiting, timeout, shed)']);
  });

  it('reports one problem per location, in file order, with no follow-on error from an invalid count', () => {
    const text = 'routes:\n  - name: a\n    reserved_slots: 0\n    prority: high\nbackend:\n  servers:\n    - url: http://127.0.0.1:8000\n      slots: -3\nlisten: { port: 70000 }\n';
    const found = problems(text);
    expect(found).toHaveLength(3);
    expect(found[0]).toMatch(/^sluice\.yaml:4:5: unknown key "prority" in routes\.0; did you mean "priority"\?$/);
    expect(found[1]).toMatch(/^sluice\.yaml:8:14: .*\(backend\.servers\.0\.slots\)$/);
    expect(found[2]).toMatch(/^sluice\.yaml:9:17: .*\(listen\.port\)$/);
    expect(found.join('\n')).not.toMatch(/reserved_slots add up/);
    // Nor from a cap that was itself refused.
    const capped = problems(`${BACKEND}routes:\n  - name: a\n    max_slots: -1\n    reserved_slots: 2\n`);
    expect(capped).toEqual([expect.stringMatching(/^sluice\.yaml:7:16: .*\(routes\.0\.max_slots\)$/)]);
  });

  it('reports a syntax error once, with a hint when a ${ is what broke a flow mapping', () => {
    const found = problems('listen: { port: ${1PORT} }\nbackend:\n  servers: [{ url: "http://x:1", slots: 4 }]\n');
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/^sluice\.yaml:1:18: .*; hint: \$\{NAME\} and \$\{NAME:-default\} .* \(\d+ more syntax errors after this one, probably caused by it\)$/);
  });
});

describe('route compilation', () => {
  it('matches first route wins with * globs and methods, falling back to the default route', () => {
    const config = compileConfig(parseConfigText(`${BACKEND}routes:
  - { name: items-read, match: { path: /api/items/*, methods: [GET], fallthrough: true } }
  - { name: api, match: { path: /api/* } }
`, 'f.yaml', {}));
    expect(findRoute(config.routes, 'GET', '/api/items/1')?.name).toBe('items-read');
    expect(findRoute(config.routes, 'POST', '/api/items/1')?.name).toBe('api');
    expect(findRoute(config.routes, 'GET', '/other')?.name).toBe('default');
    expect(findRoute(config.routes, 'GET', '/api.x')?.name).toBe('default');
    expect(Object.isFrozen(config.routes[0])).toBe(true);
  });
});
