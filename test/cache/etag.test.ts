import { describe, expect, it } from 'vitest';
import { strongMatch, weakMatch } from '../../src/cache/etag.js';

describe('entity-tag comparison (RFC 9110 §8.8.3.2)', () => {
  it('weak: W/ is ignored on either side', () => {
    expect(weakMatch('W/"1"', '"1"')).toBe(true);
    expect(weakMatch(' "1" ', 'W/"1"')).toBe(true);
    expect(weakMatch('"1"', '"2"')).toBe(false);
    expect(weakMatch(['"1"'], '"1"')).toBe(true);
  });

  it('strong: both strong and equal', () => {
    expect(strongMatch('"1"', '"1"')).toBe(true);
    expect(strongMatch('W/"1"', '"1"')).toBe(false);
    expect(strongMatch('"1"', 'W/"1"')).toBe(false);
    expect(strongMatch('"1"', '"2"')).toBe(false);
  });
});
