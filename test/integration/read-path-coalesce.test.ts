// Coalescing with real Sluice and the real test backend: identical reads share one queue
// place and one backend call, before the queue, whether or not the answer is cacheable.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as undiciRequest } from 'undici';
import { backend, backendYaml, client, get, json, sluice, until, type RunningSluice } from '../helpers/harness.js';
import type { TestBackend } from '../../src/testing/backend.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

const ROUTES = `
routes:
  - name: busy
    match: { path: /api/echo }
    coalesce: { enabled: false }
  - name: share-errors
    match: { path: /api/live/share-* }
    coalesce: { on_leader_error: share }
  - name: retry-errors
    match: { path: /api/live/retry-* }
    coalesce: { on_leader_error: retry_one }
    timeouts: { response: 1s }
  - name: public
    match: { path: /api/live/public-* }
    coalesce: { key_headers: [] }
  - name: per-user
    match: { path: /api/live/* }
    coalesce: { key_headers: [Authorization] }
  - name: items
    match: { path: /api/items/* }
  - name: uploads
    match: { path: /api/upload }
    coalesce: { methods: [POST], allow_body: true }
`;

async function setup(slots = 10, extra = ''): Promise<{ be: TestBackend; gw: RunningSluice; agent: ReturnType<typeof client> }> {
  const be = await backend({ slots, latencyMs: 20 });
  cleanups.push(() => be.close());
  const gw = await sluice(backendYaml(be, slots) + extra + ROUTES);
  cleanups.push(() => gw.close());
  const agent = client(2000);
  cleanups.push(() => agent.close());
  return { be, gw, agent };
}

async function coalesceStatus(gw: RunningSluice): Promise<{ flights: number; followers_waiting: number; followers_saved: number; retries: number }> {
  return (await json(`${gw.adminUrl}/status`)).coalesce;
}

async function cacheStatus(gw: RunningSluice): Promise<{ entries: number; stored: number }> {
  return (await json(`${gw.adminUrl}/status`)).cache;
}

/** Occupies every backend slot with unrelated work for `ms`. */
async function fillSlots(gw: RunningSluice, be: TestBackend, agent: ReturnType<typeof client>, slots: number, ms: number) {
  const busy = Array.from({ length: slots }, (_, i) => get(`${gw.url}/api/echo?ms=${ms}&i=${i}`, { dispatcher: agent }));
  await until(() => be.stats().inflight_now === slots, 5000, 'every slot busy');
  return busy;
}

/** Sends `n` identical GETs and waits until the first leads and the rest follow it. */
async function identicalReads(gw: RunningSluice, agent: ReturnType<typeof client>, path: string, n: number, headers: Record<string, string> = {}) {
  const reads = Array.from({ length: n }, () => get(`${gw.url}${path}`, { dispatcher: agent, headers }));
  await until(async () => (await coalesceStatus(gw)).followers_waiting >= n - 1, 15_000, `${n - 1} followers`);
  return reads;
}

describe('coalescing before the queue', () => {
  it('runs 1,000 identical GETs as one backend call while every slot is busy; 999 say collapsed', async () => {
    const { be, gw, agent } = await setup(10);
    const busy = await fillSlots(gw, be, agent, 10, 4000);
    const reads = await identicalReads(gw, agent, '/api/items/42', 1000);
    // Still queued behind the busy slots: joining happened before the queue.
    expect(be.stats().by_path['/api/items/42']).toBeUndefined();
    expect(gw.app.queue.waiting).toBe(1);
    const results = await Promise.all(reads);
    expect(be.stats().by_path['/api/items/42']).toBe(1);
    expect(results.every((r) => r.status === 200)).toBe(true);
    const first = results[0]!.body;
    expect(results.every((r) => r.body.equals(first))).toBe(true);
    const statuses = results.map((r) => String(r.headers['cache-status']));
    expect(statuses.filter((s) => s.endsWith('; collapsed'))).toHaveLength(999);
    expect(statuses.filter((s) => s === 'sluice; fwd=miss; fwd-status=200; stored')).toHaveLength(1);
    const timings = results.map((r) => String(r.headers['server-timing']));
    expect(timings.filter((t) => t.includes('coalesce;desc=follower'))).toHaveLength(999);
    expect(timings.filter((t) => t.includes('coalesce;desc=leader'))).toHaveLength(1);
    expect((await coalesceStatus(gw)).followers_saved).toBe(999);
    await Promise.all(busy);
  });

  it('coalesces a no-store endpoint just the same, and stores nothing', async () => {
    const { be, gw, agent } = await setup(10);
    const busy = await fillSlots(gw, be, agent, 10, 4000);
    const reads = await identicalReads(gw, agent, '/api/items/nostore?cache_control=no-store', 1000);
    const results = await Promise.all(reads);
    expect(be.stats().by_path['/api/items/nostore']).toBe(1);
    expect(new Set(results.map((r) => r.text)).size).toBe(1);
    const statuses = results.map((r) => String(r.headers['cache-status']));
    expect(statuses.filter((s) => s === 'sluice; fwd=miss; fwd-status=200; collapsed')).toHaveLength(999);
    expect(statuses.filter((s) => s === 'sluice; fwd=miss; fwd-status=200')).toHaveLength(1);
    expect(await cacheStatus(gw)).toMatchObject({ entries: 0, stored: 0 });
    // Not stored: the next read goes to the backend again.
    await Promise.all(busy);
    await get(`${gw.url}/api/items/nostore?cache_control=no-store`);
    expect(be.stats().by_path['/api/items/nostore']).toBe(2);
  });

  it('merges reads with the same Authorization and keeps different ones apart', async () => {
    const { be, gw, agent } = await setup(4);
    const alice = Array.from({ length: 3 }, () => get(`${gw.url}/api/live/me?ms=1500`, { dispatcher: agent, headers: { authorization: 'Bearer alice' } }));
    const bob = Array.from({ length: 3 }, () => get(`${gw.url}/api/live/me?ms=1500`, { dispatcher: agent, headers: { authorization: 'Bearer bob' } }));
    await until(async () => (await coalesceStatus(gw)).followers_waiting === 4, 5000, 'two flights of one leader and two followers');
    expect((await coalesceStatus(gw)).flights).toBe(2);
    const [a, b] = [await Promise.all(alice), await Promise.all(bob)];
    expect(be.stats().by_path['/api/live/me']).toBe(2);
    expect(new Set(a.map((r) => r.text)).size).toBe(1);
    expect(new Set(b.map((r) => r.text)).size).toBe(1);
    expect(a[0]!.text).not.toBe(b[0]!.text);
  });

  it('keeps different cookies apart by default, and merges them where key_headers is empty', async () => {
    const { be, gw, agent } = await setup(4);
    const send = (path: string, cookie: string) => get(`${gw.url}${path}?ms=1500`, { dispatcher: agent, headers: { cookie } });
    const defaults = [send('/api/items/session', 'session=a'), send('/api/items/session', 'session=a'), send('/api/items/session', 'session=b')];
    const merged = [send('/api/live/public-1', 'session=a'), send('/api/live/public-1', 'session=b'), send('/api/live/public-1', 'session=c')];
    await until(async () => (await coalesceStatus(gw)).followers_waiting === 3, 5000, 'one follower on items, two on the public route');
    await Promise.all([...defaults, ...merged]);
    expect(be.stats().by_path['/api/items/session']).toBe(2);
    expect(be.stats().by_path['/api/live/public-1']).toBe(1);
  });

  it('shares a leader 5xx with followers under `share`: one backend call', async () => {
    const { be, gw, agent } = await setup(4);
    const reads = await identicalReads(gw, agent, '/api/live/share-1?status=500&ms=800', 51);
    const results = await Promise.all(reads);
    expect(be.stats().by_path['/api/live/share-1']).toBe(1);
    expect(results.every((r) => r.status === 500)).toBe(true);
    expect(new Set(results.map((r) => r.text)).size).toBe(1);
  });

  it('retries once under `retry_one`: two backend calls for 51 requests, never more', async () => {
    const { be, gw, agent } = await setup(4);
    const reads = await identicalReads(gw, agent, '/api/live/retry-1?status=500&ms=800', 51);
    const results = await Promise.all(reads);
    expect(be.stats().by_path['/api/live/retry-1']).toBe(2);
    expect(results.every((r) => r.status === 500)).toBe(true);
    expect((await coalesceStatus(gw)).retries).toBe(1);
  });

  it('retries once after a leader timeout under `retry_one`, then shares the error', async () => {
    const { be, gw, agent } = await setup(4);
    const reads = await identicalReads(gw, agent, '/api/live/retry-slow?ms=2500', 21);
    const results = await Promise.all(reads);
    expect(results.every((r) => r.status === 504)).toBe(true);
    expect(results.every((r) => JSON.parse(r.text).error.code === 'response_timeout')).toBe(true);
    await until(() => be.stats().by_path['/api/live/retry-slow'] === 2, 3000, 'the retry to reach the backend');
    expect(be.stats().by_path['/api/live/retry-slow']).toBe(2);
  });

  it('keeps the backend call alive for 50 followers when the leader\'s client disconnects', async () => {
    const { be, gw, agent } = await setup(4);
    const leaderAbort = new AbortController();
    const leader = undiciRequest(`${gw.url}/api/items/77?ms=1500`, { dispatcher: agent, signal: leaderAbort.signal }).catch((err: Error) => err);
    await until(async () => (await coalesceStatus(gw)).flights === 1, 5000, 'the leader');
    const followers = Array.from({ length: 50 }, () => get(`${gw.url}/api/items/77?ms=1500`, { dispatcher: agent }));
    await until(async () => (await coalesceStatus(gw)).followers_waiting === 50, 5000, '50 followers');
    leaderAbort.abort();
    expect(await leader).toBeInstanceOf(Error);
    const results = await Promise.all(followers);
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(new Set(results.map((r) => r.text)).size).toBe(1);
    expect(be.stats().by_path['/api/items/77']).toBe(1);
    expect(be.stats().abandoned).toBe(0);
  });

  it('lets followers leave without disturbing the rest, and cancels the call once everyone has left', async () => {
    const { be, gw, agent } = await setup(1);
    const blocker = get(`${gw.url}/api/echo?ms=800`, { dispatcher: agent });
    await until(() => be.stats().inflight_now === 1, 5000, 'the slot busy');
    const aborts = Array.from({ length: 6 }, () => new AbortController());
    const reads = aborts.map((a) => undiciRequest(`${gw.url}/api/items/gone`, { dispatcher: agent, signal: a.signal }).catch((err: Error) => err));
    await until(async () => (await coalesceStatus(gw)).followers_waiting === 5, 5000, '5 followers');
    aborts[1]!.abort();
    aborts[2]!.abort();
    await until(async () => (await coalesceStatus(gw)).followers_waiting === 3, 5000, 'two followers gone');
    for (const a of aborts) a.abort();
    await Promise.all(reads);
    await blocker;
    await new Promise((r) => setTimeout(r, 200));
    // Everyone left while the flight was queued: the backend never ran it.
    expect(be.stats().by_path['/api/items/gone']).toBeUndefined();
    expect(await coalesceStatus(gw)).toMatchObject({ flights: 0, followers_waiting: 0 });
  });

  it('does not hand a Vary answer to followers whose varied headers differ', async () => {
    const { be, gw, agent } = await setup(4);
    const path = '/api/items/lang?vary=Accept-Language&cache_control=no-store&ms=800';
    const send = (lang: string) => get(`${gw.url}${path}`, { dispatcher: agent, headers: { 'accept-language': lang } });
    const en = [send('en'), send('en')];
    await until(async () => (await coalesceStatus(gw)).followers_waiting === 1, 5000, 'an english follower');
    const fr = [send('fr'), send('fr'), send('fr')];
    await until(async () => (await coalesceStatus(gw)).followers_waiting === 4, 5000, 'french followers');
    const [enResults, frResults] = [await Promise.all(en), await Promise.all(fr)];
    for (const r of enResults) expect(JSON.parse(r.text).vary).toEqual({ 'Accept-Language': 'en' });
    for (const r of frResults) expect(JSON.parse(r.text).vary).toEqual({ 'Accept-Language': 'fr' });
    // One call for the English flight, one for the French requests (coalesced among themselves).
    expect(be.stats().by_path['/api/items/lang']).toBe(2);
  });

  it('answers each client\'s own conditional: the backend never sees it, followers still get the body', async () => {
    const { be, gw, agent } = await setup(4);
    const etag = String((await get(`${be.url}/api/items/cond`)).headers['etag']);
    const leader = get(`${gw.url}/api/items/cond?ms=600`, { dispatcher: agent, headers: { 'if-none-match': etag } });
    await until(async () => (await coalesceStatus(gw)).flights === 1, 5000, 'the leader');
    const plain = get(`${gw.url}/api/items/cond?ms=600`, { dispatcher: agent });
    const conditional = get(`${gw.url}/api/items/cond?ms=600`, { dispatcher: agent, headers: { 'if-none-match': etag } });
    const [l, p, c] = await Promise.all([leader, plain, conditional]);
    expect(l.status).toBe(304);
    expect(c.status).toBe(304);
    expect(c.body.length).toBe(0);
    expect(p.status).toBe(200);
    expect(JSON.parse(p.text).id).toBe('cond');
    expect(be.stats().by_path['/api/items/cond']).toBe(2); // the direct fetch above and one through Sluice
  });

  it('coalesces POSTs with identical bodies where the route allows it, keyed by the body', async () => {
    const { be, gw, agent } = await setup(4);
    const post = (body: string) => get(`${gw.url}/api/upload?ms=1000`, { dispatcher: agent, method: 'POST', body });
    const same = [post('payload-a'), post('payload-a'), post('payload-a')];
    const other = post('payload-b');
    await until(async () => (await coalesceStatus(gw)).followers_waiting === 2, 5000, 'two followers with the same body');
    const results = await Promise.all([...same, other]);
    expect(be.stats().by_path['/api/upload']).toBe(2);
    expect(new Set(results.slice(0, 3).map((r) => r.text)).size).toBe(1);
    expect(JSON.parse(results[0]!.text).bytes).toBe(9);
    expect(JSON.parse(results[3]!.text).sha256).not.toBe(JSON.parse(results[0]!.text).sha256);
  });

  it('streams a spilled (temp file) answer to every follower, then deletes it', async () => {
    const tempDir = mkdtempSync(join(tmpdir(), 'sluice-read-path-'));
    cleanups.push(async () => rmSync(tempDir, { recursive: true, force: true }));
    const { be, gw, agent } = await setup(4, `limits: { memory_buffer: 64KiB, temp_dir: ${tempDir} }\n`);
    const reads = await identicalReads(gw, agent, '/api/items/big?bytes=3000000&cache_control=no-store&ms=800', 5);
    const results = await Promise.all(reads);
    expect(be.stats().by_path['/api/items/big']).toBe(1);
    for (const r of results) {
      expect(r.body.length).toBe(3_000_000);
      expect(r.body.equals(results[0]!.body)).toBe(true);
    }
    await until(() => readdirSync(tempDir).length === 0, 3000, 'the spilled body to be deleted');
  });

  it('does not coalesce requests with bodies, or methods the route does not list', async () => {
    const { be, gw, agent } = await setup(4);
    const posts = Array.from({ length: 3 }, () => get(`${gw.url}/api/live/post?ms=300`, { dispatcher: agent, method: 'POST', body: 'x' }));
    await Promise.all(posts);
    expect(be.stats().by_path['/api/live/post']).toBe(3);
    expect((await coalesceStatus(gw)).followers_saved).toBe(0);
  });
});
