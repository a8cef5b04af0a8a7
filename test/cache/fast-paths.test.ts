// The request path's shortcuts must answer exactly what the general code answers: the
// canonical-path check in normalizeTarget, the single-parameter query in normalizedTarget,
// and the lower-case-name copy in endToEndHeaders.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normalizedTarget } from '../../src/cache/request-key.js';
import { endToEndHeaders } from '../../src/http/headers.js';
import { normalizeTarget } from '../../src/routing/normalize-path.js';

const pathChar = fc.constantFrom(...'abcXYZ019-._~!$&\'()*+,;=:@%/\\'.split(''), '%2F', '%41', '%7e', '..', '.');
const path = fc.array(pathChar, { maxLength: 12 }).map((parts) => `/${parts.join('')}`);
const queryChar = fc.constantFrom(...'abZ09-._*~+% =&'.split(''));
const query = fc.array(queryChar, { maxLength: 10 }).map((chars) => `?${chars.join('')}`);

/** The general rule, without any shortcut: parameters sorted by URLSearchParams. */
function sortedQuery(pathname: string, search: string): string {
  if (search.length <= 1) return pathname;
  const params = new URLSearchParams(search);
  params.sort();
  const q = params.toString();
  return q ? `${pathname}?${q}` : pathname;
}

describe('fast paths', () => {
  it('normalizedTarget equals sorting the query with URLSearchParams', () => {
    fc.assert(fc.property(path, query, (p, q) => {
      expect(normalizedTarget(p, q)).toBe(sortedQuery(p, q));
    }), { numRuns: 2000 });
  });

  it('a canonical path comes back unchanged, and normalizing twice changes nothing', () => {
    fc.assert(fc.property(path, (p) => {
      const once = normalizeTarget(p, 'forward');
      if ('error' in once) return;
      const twice = normalizeTarget(once.path, 'forward');
      expect('error' in twice ? twice : twice.path).toBe(once.path);
    }), { numRuns: 2000 });
    expect(normalizeTarget('/api/items/1', 'reject')).toEqual({ path: '/api/items/1', matchPath: '/api/items/1', search: '' });
    expect(normalizeTarget('/a/./b/../c//d/', 'reject')).toMatchObject({ path: '/a/c/d/' });
  });

  it('endToEndHeaders drops hop-by-hop and Connection-named headers whatever the name case', () => {
    const copied = endToEndHeaders({ Host: 'x', 'X-Keep': '1', connection: 'X-Drop, keep-alive', 'x-drop': 'gone', 'keep-alive': 'timeout=5', te: 'trailers', accept: 'a' });
    expect(copied).toEqual({ host: 'x', 'x-keep': '1', accept: 'a' });
  });
});
