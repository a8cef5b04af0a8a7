// HTTP-date parsing (RFC 9110 §5.6.7) and what http-cache-semantics' Date.parse would have
// accepted instead: every invalid form here parses with Date.parse.
import { describe, expect, it } from 'vitest';
import { parseHttpDate } from '../../src/cache/http-date.js';

const NOW = Date.UTC(2026, 11, 1);
const TARGET = Date.UTC(2036, 11, 1, 16, 0, 0);

describe('parseHttpDate', () => {
  it('accepts IMF-fixdate, RFC 850 and asctime', () => {
    expect(parseHttpDate('Mon, 01 Dec 2036 16:00:00 GMT', NOW)).toBe(TARGET);
    expect(parseHttpDate('Monday, 01-Dec-36 16:00:00 GMT', NOW)).toBe(TARGET);
    expect(parseHttpDate('Mon Dec  1 16:00:00 2036', NOW)).toBe(TARGET);
    expect(parseHttpDate('Thursday, 01-Dec-94 16:00:00 GMT', NOW)).toBe(Date.UTC(1994, 11, 1, 16));
    expect(parseHttpDate('MON, 01 DEC 2036 16:00:00 gmt', NOW)).toBe(TARGET);
  });

  it('refuses what Date.parse would accept', () => {
    for (const bad of [
      'Thu, 01 Dec 2094 16:00:00 PST', 'Thu 01 Dec 2094 16:00:00 GMT', 'Thu,  01 Dec 2094 16:00:00 GMT',
      'Thu, 01-Dec-2094 16:00:00 GMT', 'Thu, 01 Dec 2094 6:00:00 GMT', 'Thu, 31 Feb 2094 16:00:00 GMT', '2094-12-01T16:00:00Z',
    ]) {
      expect(Number.isNaN(Date.parse(bad)), bad).toBe(false);
      expect(parseHttpDate(bad, NOW), bad).toBeUndefined();
    }
  });
});
