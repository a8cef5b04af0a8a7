// The cache's own decisions, with real http-cache-semantics and lru-cache: what is stored,
// for how long, variants, revalidation, the byte bound, keys and client conditionals.
import { describe, expect, it } from 'vitest';
import { isNotModified } from '../../src/cache/conditional.js';
import { headerDigest, normalizedTarget, readKey } from '../../src/cache/request-key.js';
import { resourceOf, ResponseCache, type CacheRequest } from '../../src/cache/response-cache.js';
import type { RouteRules } from '../../src/cache/admission.js';
import { requestView } from '../../src/cache/response-view.js';
import { BufferedBody } from '../../src/http/body-buffer.js';
import type { HeaderMap } from '../../src/http/headers.js';

const RULES: RouteRules & { max_object: number } = {
  ttl: undefined, stale_while_revalidate: undefined, stale_if_error: undefined, allow_set_cookie: false, max_object: 1 << 20,
  heuristic: undefined, heuristic_max: 86_400_000,
};

function request(target: string, headers: Record<string, string> = {}): CacheRequest {
  const all = { host: 'example.test', ...headers };
  return {
    key: readKey({ method: 'GET', host: all.host, target, headers: '' }), target, resource: resourceOf(all.host, target),
    headers: all, view: { method: 'GET', url: target, headers: requestView(all) },
  };
}

async function store(cache: ResponseCache, req: CacheRequest, headers: HeaderMap, rules = RULES, status = 200, body = 'body') {
  return cache.store(req, { status, headers, body: BufferedBody.fromBuffer(Buffer.from(body)) }, rules);
}

describe('what is stored', () => {
  it('stores explicitly fresh responses and answers them as fresh', async () => {
    const cache = new ResponseCache(1 << 20);
    const req = request('/a');
    expect(await store(cache, req, { 'cache-control': 'max-age=60' })).toBeDefined();
    const found = cache.lookup(req, { useFailures: true });
    expect(found.kind).toBe('fresh');
    expect(cache.freshness((found as { entry: never }).entry).ttl).toBeGreaterThan(58);
  });

  it('refuses no-store, private, Set-Cookie, no freshness at all, and Vary: *', async () => {
    const cache = new ResponseCache(1 << 20);
    expect(await store(cache, request('/1'), { 'cache-control': 'no-store' })).toBeUndefined();
    expect(await store(cache, request('/2'), { 'cache-control': 'private, max-age=60' })).toBeUndefined();
    expect(await store(cache, request('/3'), { 'cache-control': 'public, max-age=60', 'set-cookie': 'a=b' })).toBeUndefined();
    expect(await store(cache, request('/4'), { 'content-type': 'text/plain' })).toBeUndefined();
    expect(await store(cache, request('/5'), { 'cache-control': 'max-age=60', vary: '*' })).toBeUndefined();
    expect(await store(cache, request('/6', { 'cache-control': 'no-store' }), { 'cache-control': 'max-age=60' })).toBeUndefined();
    expect(cache.stats().entries).toBe(0);
  });

  it('stores a Set-Cookie response only when the route allows it, and never keeps the cookie', async () => {
    const cache = new ResponseCache(1 << 20);
    const entry = await store(cache, request('/c'), { 'cache-control': 'max-age=60', 'set-cookie': 'session=secret' }, { ...RULES, allow_set_cookie: true });
    expect(entry).toBeDefined();
    expect(entry!.headers['set-cookie']).toBeUndefined();
  });

  it('stores responses to Authorization requests only when the response allows it', async () => {
    const cache = new ResponseCache(1 << 20);
    const auth = { authorization: 'Bearer x' };
    expect(await store(cache, request('/p', auth), { 'cache-control': 'max-age=60' })).toBeUndefined();
    expect(await store(cache, request('/q', auth), { 'cache-control': 'public, max-age=60' })).toBeDefined();
    expect(await store(cache, request('/r', auth), { 'cache-control': 's-maxage=60' })).toBeDefined();
  });

  it('uses the route ttl only when the backend sent no freshness', async () => {
    const cache = new ResponseCache(1 << 20);
    const rules = { ...RULES, ttl: 30_000 };
    const plain = await store(cache, request('/t1'), { 'content-type': 'text/plain' }, rules);
    expect(cache.freshness(plain!).ttl).toBeGreaterThan(28);
    const explicit = await store(cache, request('/t2'), { 'cache-control': 'max-age=5' }, rules);
    expect(cache.freshness(explicit!).ttl).toBeLessThanOrEqual(5);
    expect(await store(cache, request('/t3'), { 'cache-control': 'no-store' }, rules)).toBeUndefined();
  });

  it('prefers s-maxage over max-age (shared cache), and treats must-revalidate as "never serve stale"', async () => {
    const cache = new ResponseCache(1 << 20);
    const entry = await store(cache, request('/s'), { 'cache-control': 'max-age=5, s-maxage=100, must-revalidate' }, { ...RULES, stale_while_revalidate: 60_000 });
    expect(cache.freshness(entry!).ttl).toBeGreaterThan(98);
    expect(cache.lookup(request('/s'), { useFailures: true }).kind).toBe('fresh');
    expect(entry!.staleWhileRevalidateSec).toBe(0);
  });

  it('keeps Vary variants apart', async () => {
    const cache = new ResponseCache(1 << 20);
    await store(cache, request('/v', { 'accept-language': 'en' }), { 'cache-control': 'max-age=60', vary: 'Accept-Language' }, RULES, 200, 'english');
    await store(cache, request('/v', { 'accept-language': 'fr' }), { 'cache-control': 'max-age=60', vary: 'Accept-Language' }, RULES, 200, 'french');
    const en = cache.lookup(request('/v', { 'accept-language': 'en' }), { useFailures: true });
    const fr = cache.lookup(request('/v', { 'accept-language': 'fr' }), { useFailures: true });
    const de = cache.lookup(request('/v', { 'accept-language': 'de' }), { useFailures: true });
    expect(en.kind === 'fresh' && en.entry.body.toString()).toBe('english');
    expect(fr.kind === 'fresh' && fr.entry.body.toString()).toBe('french');
    expect(de.kind).toBe('miss');
  });
});

describe('stale entries', () => {
  it('reports stale-while-revalidate, then expired, as time passes (route overrides win over the backend)', async () => {
    let now = Date.now();
    const realNow = Date.now;
    Date.now = () => now;
    try {
      const cache = new ResponseCache(1 << 20);
      const req = request('/swr');
      await store(cache, req, { 'cache-control': 'max-age=1, stale-while-revalidate=1', etag: '"e1"' }, { ...RULES, stale_while_revalidate: 10_000 });
      now += 5_000;
      expect(cache.lookup(req, { useFailures: true }).kind).toBe('stale-while-revalidate');
      now += 10_000;
      const expired = cache.lookup(req, { useFailures: true });
      expect(expired.kind).toBe('expired');
      expect(cache.canServeOnError((expired as { entry: never }).entry)).toBe(false);
    } finally {
      Date.now = realNow;
    }
  });

  it('refreshes an entry from a 304 without a body and keeps the stored body', async () => {
    const cache = new ResponseCache(1 << 20);
    const req = request('/r');
    const entry = await store(cache, req, { 'cache-control': 'max-age=0', etag: '"v1"', 'x-old': '1' }, RULES, 200, 'the body');
    expect(entry).toBeDefined();
    expect(cache.lookup(req, { useFailures: true }).kind).toBe('expired');
    const { entry: refreshed, stored } = cache.revalidated(req, entry!, { 'cache-control': 'max-age=60', etag: '"v1"', 'x-old': '2' }, RULES);
    expect(stored).toBe(true);
    expect(refreshed.body.toString()).toBe('the body');
    expect(refreshed.headers['x-old']).toBe('2');
    expect(cache.lookup(req, { useFailures: true }).kind).toBe('fresh');
  });

  it('remembers failures for error_ttl only when asked to look at them', async () => {
    const cache = new ResponseCache(1 << 20);
    const req = request('/f');
    cache.storeFailure(req, { response: undefined, errorCode: 'upstream_reset' }, 5_000);
    expect(cache.lookup(req, { useFailures: true }).kind).toBe('failure');
    expect(cache.lookup(req, { useFailures: false }).kind).toBe('miss');
  });

  it('allows only one background refresh per entry at a time', async () => {
    const cache = new ResponseCache(1 << 20);
    const entry = await store(cache, request('/one'), { 'cache-control': 'max-age=60' });
    expect(cache.beginRefresh(entry!)).toBe(true);
    expect(cache.beginRefresh(entry!)).toBe(false);
    cache.endRefresh(entry!);
    expect(cache.beginRefresh(entry!)).toBe(true);
  });
});

describe('bounds and purging', () => {
  it('evicts least recently used entries to stay within max_bytes, and refuses objects over max_object', async () => {
    const cache = new ResponseCache(100_000);
    for (let i = 0; i < 30; i++) await store(cache, request(`/big/${i}`), { 'cache-control': 'max-age=60' }, RULES, 200, 'x'.repeat(10_000));
    const stats = cache.stats();
    expect(stats.bytes).toBeLessThanOrEqual(100_000);
    expect(stats.entries).toBeLessThan(10);
    expect(stats.evictions).toBeGreaterThan(20);
    expect(cache.lookup(request('/big/0'), { useFailures: true }).kind).toBe('miss');
    expect(cache.lookup(request('/big/29'), { useFailures: true }).kind).toBe('fresh');
    expect(await store(cache, request('/huge'), { 'cache-control': 'max-age=60' }, { ...RULES, max_object: 100 }, 200, 'y'.repeat(101))).toBeUndefined();
  });

  it('purges by target, or everything', async () => {
    const cache = new ResponseCache(1 << 20);
    for (const t of ['/api/items/1', '/api/items/2', '/api/other']) await store(cache, request(t), { 'cache-control': 'max-age=60' });
    expect(cache.purge((t) => t.startsWith('/api/items/'))).toBe(2);
    expect(cache.stats().entries).toBe(1);
    expect(cache.purge()).toBe(1);
    expect(cache.stats()).toMatchObject({ entries: 0, bytes: 0, purged: 3 });
  });
});

describe('keys and conditionals', () => {
  it('normalizes query order and hashes header values', () => {
    expect(normalizedTarget('/a', '?b=2&a=1&a=0')).toBe('/a?a=1&a=0&b=2');
    expect(normalizedTarget('/a', '')).toBe('/a');
    const digest = headerDigest({ authorization: 'Bearer secret-token' }, ['Authorization']);
    expect(digest).not.toContain('secret');
    expect(digest).not.toBe(headerDigest({ authorization: 'Bearer other' }, ['authorization']));
    expect(digest).toBe(headerDigest({ authorization: 'Bearer secret-token' }, ['authorization']));
  });

  it('matches If-None-Match weakly and falls back to If-Modified-Since', () => {
    const answer = { status: 200, headers: { etag: '"abc"', 'last-modified': 'Mon, 01 Jan 2024 00:00:00 GMT' } };
    expect(isNotModified({ 'if-none-match': 'W/"abc"' }, answer)).toBe(true);
    expect(isNotModified({ 'if-none-match': '"x", "abc"' }, answer)).toBe(true);
    expect(isNotModified({ 'if-none-match': '"x"', 'if-modified-since': 'Tue, 02 Jan 2024 00:00:00 GMT' }, answer)).toBe(false);
    expect(isNotModified({ 'if-modified-since': 'Tue, 02 Jan 2024 00:00:00 GMT' }, answer)).toBe(true);
    expect(isNotModified({ 'if-modified-since': 'Sun, 31 Dec 2023 00:00:00 GMT' }, answer)).toBe(false);
    expect(isNotModified({ 'if-none-match': '"abc"' }, { ...answer, status: 500 })).toBe(false);
  });
});
