// The shared cache tier against a real Redis: what one instance stored, another serves
// without a backend call; a purge on any instance reaches all of them; the tier stays
// within its byte bound.
import { afterEach, describe, expect, inject, it } from 'vitest';
import { backend, get, json, until, type RunningSluice } from '../helpers/harness.js';
import { clusterPrefix, startInstances } from '../helpers/cluster.js';

const redisUrl = inject('redisUrl');
const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => {});
});
const HOST = { host: 'api.example' };

async function pair(backendUrl: string, extraCluster = ''): Promise<[RunningSluice, RunningSluice]> {
  const instances = await startInstances(2, { redisUrl, prefix: clusterPrefix(), backendUrl, slots: 10, extraCluster });
  for (const i of instances) cleanup.push(() => i.close());
  await until(() => instances.every((i) => i.app.cluster?.link.health === 'up' && i.app.cluster.link.subscriber.status === 'ready'), 10_000, 'cluster up');
  return instances as [RunningSluice, RunningSluice];
}

describe('shared cache tier', () => {
  it('an answer stored by one instance is served by another without a backend call, with its age', async () => {
    const be = await backend({ slots: 10, latencyMs: 20 });
    cleanup.push(() => be.close());
    const [a, b] = await pair(be.url);
    const first = await get(`${a.url}/api/items/s1`, { headers: HOST });
    expect(first.headers['cache-status']).toContain('stored');
    await until(() => a.app.cluster!.status().shared_cache !== null && (a.app.cluster!.status().shared_cache as { written: number }).written === 1, 5_000, 'write-through');
    await new Promise((r) => setTimeout(r, 1_100));
    const second = await get(`${b.url}/api/items/s1`, { headers: HOST });
    expect(second.status).toBe(200);
    expect(second.text).toBe(first.text);
    expect(second.headers['cache-status']).toMatch(/^sluice; hit/);
    expect(Number(second.headers['age'])).toBeGreaterThanOrEqual(1);
    expect(be.stats().by_path['/api/items/s1']).toBe(1);
    // B copied it into its memory: the next hit needs no Redis lookup.
    const lookups = (b.app.cluster!.status().shared_cache as { lookups: number }).lookups;
    await get(`${b.url}/api/items/s1`, { headers: HOST });
    expect((b.app.cluster!.status().shared_cache as { lookups: number }).lookups).toBe(lookups);
  });

  it('a purge on one instance empties the other instances\' memory caches and the tier', async () => {
    const be = await backend({ slots: 10, latencyMs: 20 });
    cleanup.push(() => be.close());
    const [a, b] = await pair(be.url);
    for (const path of ['/api/items/p1', '/api/items/p2']) {
      await get(`${a.url}${path}`, { headers: HOST });
      await get(`${b.url}${path}`, { headers: HOST });
    }
    expect(be.stats().total).toBe(2);
    const purge = await json(`${b.adminUrl}/cache?path=/api/items/p1`, { method: 'DELETE' });
    expect(purge).toMatchObject({ purged: 1, shared_purged: 1 });
    await until(() => (a.app.admin.status().cache as { purged: number }).purged === 1, 5_000, 'A to purge its memory cache');
    await get(`${a.url}/api/items/p1`, { headers: HOST });
    await get(`${a.url}/api/items/p2`, { headers: HOST });
    expect(be.stats().by_path).toEqual({ '/api/items/p1': 2, '/api/items/p2': 1 });
  });

  it('stays within cache_max_bytes, evicting the oldest writes', async () => {
    const be = await backend({ slots: 10, latencyMs: 5 });
    cleanup.push(() => be.close());
    const [a, b] = await pair(be.url, '  cache_max_bytes: 20KiB\n');
    for (let n = 0; n < 12; n++) await get(`${a.url}/api/items/big${n}?bytes=4000`, { headers: HOST });
    const tier = () => a.app.cluster!.status().shared_cache as { written: number; evicted: number };
    await until(() => tier().written === 12, 5_000, 'writes');
    expect(tier().evicted).toBeGreaterThan(0);
    const bytes = await a.app.cluster!.cacheTier!.bytes();
    expect(bytes).toBeLessThanOrEqual(20 * 1024);
    expect(bytes).toBeGreaterThan(3 * 4000);
    // The newest entry is still shared; the oldest is gone.
    await get(`${b.url}/api/items/big11?bytes=4000`, { headers: HOST });
    await get(`${b.url}/api/items/big0?bytes=4000`, { headers: HOST });
    expect(be.stats().by_path['/api/items/big11']).toBe(1);
    expect(be.stats().by_path['/api/items/big0']).toBe(2);
  });
});
