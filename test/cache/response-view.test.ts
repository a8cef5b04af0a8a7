// Where http-cache-semantics alone gets RFC 9111 wrong, and what the view Sluice shows it
// (response-view.ts) changes. Each case first pins the library's own behaviour, so a
// library upgrade that fixes it upstream shows up here.
import CachePolicy from 'http-cache-semantics';
import { describe, expect, it } from 'vitest';
import { POLICY_OPTIONS } from '../../src/cache/admission.js';
import { parseCacheControl, parseTargeted, requestView, responseView } from '../../src/cache/response-view.js';

const REQUEST = { method: 'GET', url: '/x', headers: { host: 'example.test' } };
const TARGETED = ['sluice-cache-control', 'cdn-cache-control'];
const library = (status: number, headers: Record<string, string>) => new CachePolicy(REQUEST, { status, headers }, POLICY_OPTIONS);
function ours(status: number, headers: Record<string, string>): CachePolicy | undefined {
  const view = responseView(status, headers, TARGETED);
  return view && new CachePolicy(REQUEST, { status: view.status, headers: view.headers }, POLICY_OPTIONS);
}

describe('the library alone, and through the view', () => {
  it('directive names are case-insensitive', () => {
    expect(library(200, { 'cache-control': 'MaX-AgE=3600' }).maxAge()).toBe(0);
    expect(ours(200, { 'cache-control': 'MaX-AgE=3600' })!.maxAge()).toBe(3600);
    expect(library(200, { 'cache-control': 'No-CaChE, max-age=3600' }).maxAge()).toBe(3600);
    expect(ours(200, { 'cache-control': 'No-CaChE, max-age=3600' })!.maxAge()).toBe(0);
    expect(requestView({ 'cache-control': 'NO-CACHE' })['cache-control']).toBe('no-cache');
  });

  it('an invalid Expires is already expired; an invalid Age is ignored; a listed Age counts by its first member', () => {
    const future = { expires: 'Thu, 01 Dec 2094 16:00:00 PST' };
    expect(library(200, future).maxAge()).toBeGreaterThan(0);
    expect(ours(200, future)!.maxAge()).toBe(0);
    expect(library(200, { 'cache-control': 'max-age=10', age: '1.5' }).age()).toBeGreaterThanOrEqual(1);
    expect(ours(200, { 'cache-control': 'max-age=10', age: '1.5' })!.age()).toBeLessThan(1);
    expect(library(200, { 'cache-control': 'max-age=10', age: '7200, 0' }).age()).toBeGreaterThanOrEqual(7200);
    expect(ours(200, { 'cache-control': 'max-age=10', age: '7200, 0' })!.age()).toBeGreaterThanOrEqual(7200);
    expect(ours(200, { 'cache-control': 'max-age=10', age: '0, 7200' })!.age()).toBeLessThan(1);
  });

  it('any final status with explicit freshness may be stored; must-understand is honoured', () => {
    for (const status of [299, 400, 500, 502, 503, 504, 599]) {
      expect(library(status, { 'cache-control': 'max-age=60' }).storable(), String(status)).toBe(false);
      expect(ours(status, { 'cache-control': 'max-age=60' })!.storable(), String(status)).toBe(true);
    }
    expect(ours(500, {})).toBeUndefined();
    expect(library(200, { 'cache-control': 'must-understand, no-store, max-age=60' }).storable()).toBe(false);
    expect(ours(200, { 'cache-control': 'must-understand, no-store, max-age=60' })!.storable()).toBe(true);
    expect(ours(299, { 'cache-control': 'must-understand, max-age=60' })).toBeUndefined();
    expect(ours(206, { 'cache-control': 'max-age=60' })).toBeUndefined();
  });

  it('a valid targeted field replaces Cache-Control and Expires; an invalid one is ignored', () => {
    expect(ours(200, { 'cache-control': 'no-store', 'cdn-cache-control': 'max-age=60' })!.maxAge()).toBe(60);
    expect(ours(200, { 'cache-control': 'max-age=60', 'cdn-cache-control': 'no-store' })!.storable()).toBe(false);
    expect(ours(200, { 'cdn-cache-control': 'no-store', 'sluice-cache-control': 'max-age=5' })!.maxAge()).toBe(5);
    expect(ours(200, { expires: 'Thu, 01 Dec 2094 16:00:00 GMT', 'cdn-cache-control': 'max-age=5' })!.maxAge()).toBe(5);
    expect(parseTargeted('MAX-AGE=60')).toBeUndefined();
    expect(parseTargeted('')).toBeUndefined();
    expect(parseTargeted('max-age="60", private')).toEqual({ private: true });
  });

  it('quoted values may hold commas; the first of a repeated directive wins; an invalid max-age is stale', () => {
    expect(parseCacheControl('private="set-cookie, x-a", max-age=5')).toEqual({ private: true, 'max-age': '5' });
    expect(parseCacheControl('max-age=5, MAX-AGE=0')).toEqual({ 'max-age': '5' });
    expect(parseCacheControl('max-age=5s')).toEqual({ 'max-age': '0' });
    expect(parseCacheControl('max-age=99999999999')).toEqual({ 'max-age': '2147483648' });
  });
});
