// The normalized path: unit cases, and properties (fast-check) that route matching and the
// forwarded path always agree with what a percent-decoding backend (Gunicorn) runs.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileConfig } from '../../src/config/compile.js';
import { parseConfigText } from '../../src/config/load.js';
import { findRoute } from '../../src/routing/match-route.js';
import { normalizeTarget, type NormalizedTarget } from '../../src/routing/normalize-path.js';

const ok = (target: string, policy: 'reject' | 'forward' = 'reject'): NormalizedTarget => {
  const result = normalizeTarget(target, policy);
  if ('error' in result) throw new Error(`refused ${target}: ${result.error}`);
  return result;
};
const refused = (target: string) => 'error' in normalizeTarget(target, 'reject');

/** Gunicorn's PATH_INFO: every valid escape decoded (unquote), bytes read as UTF-8 by the app. */
function backendDecode(path: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < path.length; i++) {
    if (path[i] === '%' && /^[0-9A-Fa-f]{2}$/.test(path.slice(i + 1, i + 3))) {
      bytes.push(parseInt(path.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(path.charCodeAt(i));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

describe('normalizeTarget', () => {
  it('decodes escapes of unreserved characters and keeps others with upper-case hex', () => {
    expect(ok('/api/%75pload').path).toBe('/api/upload');
    expect(ok('/api/%7Eme/%41%2d').path).toBe('/api/~me/A-');
    expect(ok('/a%20b/%c3%a9').path).toBe('/a%20b/%C3%A9');
    expect(ok('/a%20b/%c3%a9').matchPath).toBe('/a b/é');
    expect(ok('/a;b%3Bc').matchPath).toBe('/a;b;c');
  });

  it('resolves dot segments after decoding and merges slashes', () => {
    expect(ok('/api/x/../echo').path).toBe('/api/echo');
    expect(ok('/api/x/%2e%2E/echo').path).toBe('/api/echo');
    expect(ok('/api/./echo/.').path).toBe('/api/echo/');
    expect(ok('/../../etc/passwd').path).toBe('/etc/passwd');
    expect(ok('//api///echo').path).toBe('/api/echo');
    expect(ok('/').path).toBe('/');
    expect(ok('/a/').path).toBe('/a/');
  });

  it('keeps the query as sent and drops a fragment; takes the path of an absolute-form target', () => {
    expect(ok('/p?a=%2F&b')).toEqual({ path: '/p', matchPath: '/p', search: '?a=%2F&b' });
    expect(ok('/p#frag').path).toBe('/p');
    expect(ok('http://example.com/api/%65cho?x=1')).toMatchObject({ path: '/api/echo', search: '?x=1' });
    expect(ok('/p?').search).toBe('');
  });

  it('refuses encoded /, \\, NUL, a literal backslash and invalid escapes by default', () => {
    for (const target of ['/api/a%2fb', '/api/a%2Fb', '/api/%5c', '/api\\x', '/api/%00', '/api/%zz', '/api/%2', '/api/%', '*', 'api']) {
      expect(refused(target), target).toBe(true);
    }
  });

  it('with ambiguous_paths: forward, passes them encoded and matches on the decoded form', () => {
    expect(ok('/api/a%2fb', 'forward')).toMatchObject({ path: '/api/a%2Fb', matchPath: '/api/a/b' });
    expect(ok('/api\\x', 'forward').path).toBe('/api%5Cx');
    expect(ok('/api/%zz', 'forward')).toMatchObject({ path: '/api/%25zz', matchPath: '/api/%zz' });
  });
});

const ROUTES = compileConfig(parseConfigText(`backend: { servers: [{ url: "http://127.0.0.1:1", slots: 1 }] }
routes:
  - { name: upload, match: { path: /api/upload, methods: [POST] } }
  - { name: reports, match: { path: /api/reports*, methods: [POST], fallthrough: true } }
  - { name: admin, match: { path: /admin/*, case_insensitive: true }, deny: true }
  - { name: semi, match: { path: /x;y/* } }
  - { name: api, match: { path: /api/* } }
`, 'routes.yaml', {})).routes;

const SEGMENT_CHARS = ['a', 'p', 'i', 'u', 'l', 'o', 'd', 'A', 'x', 'y', ';', '-', '.', '~', ' ', 'é', '/', '\\', '\u0000', '%'];
/** A path's characters, each written literally or as an escape with random hex case. */
const spelledPath = fc.array(fc.tuple(fc.constantFrom(...SEGMENT_CHARS, 'upload', 'reports', 'admin', 'api', '..', '.'), fc.boolean(), fc.boolean()), { maxLength: 12 })
  .map((parts) => '/' + parts.map(([text, encode, upper]) => (encode ? escape(text, upper) : literal(text))).join(''));

function escape(text: string, upper: boolean): string {
  return [...Buffer.from(text, 'utf8')].map((b) => {
    const hex = b.toString(16).padStart(2, '0');
    return `%${upper ? hex.toUpperCase() : hex}`;
  }).join('');
}
/** node:http hands the target over as latin1 characters, one per byte. */
function literal(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

describe('properties', () => {
  it('what routes match is exactly what the backend decodes from the forwarded path', () => {
    fc.assert(fc.property(spelledPath, (raw) => {
      const result = normalizeTarget(raw, 'reject');
      if ('error' in result) return;
      expect(backendDecode(result.path)).toBe(result.matchPath);
      for (const method of ['GET', 'POST']) {
        expect(findRoute(ROUTES, method, result.matchPath)?.name).toBe(findRoute(ROUTES, method, backendDecode(result.path))?.name);
      }
    }), { numRuns: 3000 });
  });

  it('is idempotent: the forwarded path normalizes to itself', () => {
    fc.assert(fc.property(spelledPath, fc.constantFrom('reject' as const, 'forward' as const), (raw, policy) => {
      const once = normalizeTarget(raw, policy);
      if ('error' in once) return;
      expect(normalizeTarget(once.path, policy)).toEqual(once);
    }), { numRuns: 3000 });
  });

  it('no spelling of a path reaches another route: re-encoding any characters keeps the route', () => {
    const plainPath = fc.array(fc.constantFrom('api', 'upload', 'reports', 'admin', 'ADMIN', 'x;y', 'é', 'a b', 'z'), { minLength: 1, maxLength: 4 }).map((s) => '/' + s.join('/'));
    fc.assert(fc.property(plainPath, fc.array(fc.tuple(fc.boolean(), fc.boolean()), { minLength: 40, maxLength: 40 }), fc.constantFrom('GET', 'POST'), (path, coins, method) => {
      const bytes = [...Buffer.from(path, 'utf8')];
      const spelled = bytes.map((b, i) => {
        const [encode, upper] = coins[i % coins.length]!;
        const hex = b.toString(16).padStart(2, '0');
        if (b === 0x2f) return '/';
        return encode || b > 0x7e || b === 0x20 ? `%${upper ? hex.toUpperCase() : hex}` : String.fromCharCode(b);
      }).join('');
      const a = ok(spelled);
      const b = ok(bytes.map((byte) => (byte > 0x7e || byte === 0x20 ? `%${byte.toString(16).toUpperCase()}` : String.fromCharCode(byte))).join(''));
      expect(a.matchPath).toBe(path);
      expect(findRoute(ROUTES, method, a.matchPath)?.name).toBe(findRoute(ROUTES, method, b.matchPath)?.name);
    }), { numRuns: 2000 });
  });
});
