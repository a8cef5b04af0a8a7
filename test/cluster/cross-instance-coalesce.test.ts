// Cross-instance coalescing against a real Redis: identical reads in flight on different
// instances make one backend call, and a leader that cannot share its answer releases the
// other instances to fetch on their own instead of leaving them waiting.
import { afterEach, describe, expect, inject, it } from 'vitest';
import { backend, client, get, until, type RunningSluice } from '../helpers/harness.js';
import { clusterPrefix, startInstances } from '../helpers/cluster.js';
import { RedisLink } from '../../src/cluster/redis-link.js';
import { RemoteFlights } from '../../src/cluster/remote-flights.js';

const redisUrl = inject('redisUrl');
const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => {});
});

// Behind a load balancer every instance sees the same Host; the key includes it.
const HOST = { host: 'api.example' };

async function threeInstances(slots: number, backendUrl: string): Promise<RunningSluice[]> {
  const instances = await startInstances(3, { redisUrl, prefix: clusterPrefix(), backendUrl, slots, extra: 'queue: { shed: timeout, timeout: 30s }\n' });
  for (const i of instances) cleanup.push(() => i.close());
  await until(() => instances.every((i) => i.app.cluster?.link.health === 'up' && i.app.cluster.slots.mode === 'shared'), 10_000, 'cluster up');
  return instances;
}

describe('cross-instance coalescing', () => {
  it('300 identical GETs spread over three instances while the slots are busy: the backend sees 1 call', async () => {
    const be = await backend({ slots: 40, latencyMs: 100 });
    cleanup.push(() => be.close());
    const instances = await threeInstances(2, be.url);
    const agent = client();
    cleanup.push(() => agent.close());
    // Both slots busy for a while, so every copy of the hot read has time to arrive and wait.
    const busy = [0, 1].map((n) => get(`${instances[n]!.url}/api/items/busy${n}?ms=1200`, { dispatcher: agent, headers: HOST }));
    await until(() => be.stats().inflight_now === 2, 5_000, 'slots busy');
    const claimed = () => instances.reduce((sum, i) => sum + i.app.cluster!.flights!.stats().claimed, 0);
    const claimedBefore = claimed();
    const hot = Array.from({ length: 300 }, (_, n) => get(`${instances[n % 3]!.url}/api/items/hot?x=1`, { dispatcher: agent, headers: HOST }));
    const results = await Promise.all(hot);
    await Promise.all(busy);
    expect(results.map((r) => r.status).filter((s) => s !== 200)).toEqual([]);
    expect(be.stats().by_path['/api/items/hot']).toBe(1);
    // Every answer has the same bytes; those served from another instance's call say `collapsed`.
    expect(new Set(results.map((r) => r.text)).size).toBe(1);
    const collapsed = results.filter((r) => String(r.headers['cache-status']).includes('collapsed')).length;
    expect(collapsed).toBe(299);
    const flights = instances.map((i) => i.app.cluster!.flights!.stats());
    // One instance claimed the read; the other two instances' leaders waited for its answer.
    expect(claimed() - claimedBefore).toBe(1);
    expect(flights.reduce((sum, f) => sum + f.answered, 0)).toBe(2);
  });

  it('a leader whose answer is a 5xx shares nothing: the other instances fetch on their own, bounded by one call each', async () => {
    const be = await backend({ slots: 40, latencyMs: 300 });
    cleanup.push(() => be.close());
    const instances = await threeInstances(10, be.url);
    const agent = client();
    cleanup.push(() => agent.close());
    const results = await Promise.all(Array.from({ length: 30 }, (_, n) => get(`${instances[n % 3]!.url}/api/items/bad?status=503`, { dispatcher: agent, headers: HOST })));
    expect(results.every((r) => r.status === 503)).toBe(true);
    const calls = be.stats().by_path['/api/items/bad']!;
    expect(calls).toBeGreaterThanOrEqual(2);
    expect(calls).toBeLessThanOrEqual(3);
    expect(instances.reduce((sum, i) => sum + i.app.cluster!.flights!.stats().gave_up, 0)).toBe(2);
  });

  it('a leader instance that dies without publishing holds the others only until its lock expires', async () => {
    const prefix = clusterPrefix();
    const links = [0, 1].map(() => new RedisLink({ url: redisUrl, commandTimeoutMs: 1000, log: () => {} }));
    const [dying, waiting] = links.map((link, n) => new RemoteFlights(link, { instanceId: `i${n}`, keyPrefix: prefix, lockTtlMs: 600 })) as [RemoteFlights, RemoteFlights];
    for (const link of links) { link.connect(); cleanup.push(() => link.close()); }
    await until(() => links.every((l) => l.health === 'up' && l.subscriber.status === 'ready'), 5_000, 'redis up');
    expect(await dying.claim('GET  /x  ')).toBe('leader');
    expect(await waiting.claim('GET  /x  ')).toBe('follower');
    // The leader renews its lock while alive: a waiter keeps waiting past one lock TTL...
    const waited = waiting.wait('GET  /x  ', 10_000, new AbortController().signal);
    let settled = false;
    void waited.then(() => { settled = true; });
    await new Promise((r) => setTimeout(r, 1_000));
    expect(settled).toBe(false);
    // ...and once it is gone (no renewals, no publish) the waiter is released to fetch on its own.
    dying.close();
    const diedAt = Date.now();
    expect(await waited).toBeUndefined();
    expect(Date.now() - diedAt).toBeLessThan(5_000);
    expect(waiting.stats()).toMatchObject({ followed: 1, gave_up: 1, answered: 0 });
    waiting.close();
  });
});
