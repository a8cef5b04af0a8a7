// Shared slot budget across instances, against a real Redis: the cluster never runs more
// than the backend's slots, uses nearly all of them under load, and hands free slots to the
// most urgent demand across instances.
import { afterEach, describe, expect, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { backend, client, get, json, until, type RunningSluice } from '../helpers/harness.js';
import { clusterPrefix, startInstances } from '../helpers/cluster.js';
import type { TestBackend } from '../../src/testing/backend.js';
import { LEASE_EXCHANGE_LUA, exchangeArgv, parseExchangeReply, type LeaseExchangeArgs } from '../../src/cluster/lease-script.js';

const redisUrl = inject('redisUrl');
const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => {});
});

async function shared(instances: RunningSluice[]): Promise<void> {
  await until(() => instances.every((i) => i.app.cluster?.slots.mode === 'shared'), 10_000, 'every instance in shared mode');
}

describe('shared slots', () => {
  it('three instances in front of one 10-slot backend: never more than 10 in flight, at least 8 used, all succeed', async () => {
    // The backend itself has 40 slots, so anything above 10 could only come from Sluice.
    const be: TestBackend = await backend({ slots: 40, latencyMs: 100 });
    cleanup.push(() => be.close());
    const instances = await startInstances(3, {
      redisUrl, prefix: clusterPrefix(), backendUrl: be.url, slots: 10,
      extra: 'queue: { shed: timeout, timeout: 60s }\n',
    });
    for (const i of instances) cleanup.push(() => i.close());
    await shared(instances);
    const agent = client();
    cleanup.push(() => agent.close());
    const results = await Promise.all(Array.from({ length: 600 }, (_, n) =>
      get(`${instances[n % 3]!.url}/api/items/u${n}`, { dispatcher: agent })));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    const stats = be.stats();
    expect(stats.total).toBe(600);
    expect(stats.inflight_max).toBeLessThanOrEqual(10);
    expect(stats.inflight_max).toBeGreaterThanOrEqual(8);
    // Each instance took part, and /status reports the cluster's view next to its own.
    const status = await json(`${instances[0]!.adminUrl}/status`);
    expect(status.cluster.instance).toBe('a');
    expect(status.cluster.mode).toBe('shared');
    expect(status.cluster.servers[0].cluster_busy).toBeLessThanOrEqual(10);
    expect(status.cluster.instances).toBe(3);
    for (const i of instances) expect(i.app.cluster!.slots.totals.granted).toBeGreaterThan(0);
    const ready = await get(`${instances[1]!.adminUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.text)).toMatchObject({ ready: true, redis: 'up', slots: 'shared', instance: 'b' });
    const metrics = (await get(`${instances[2]!.adminUrl}/metrics`)).text;
    expect(metrics).toContain('sluice_cluster_info{instance="c"} 1');
    expect(metrics).toContain('sluice_cluster_redis_up 1');
    expect(metrics).toMatch(/sluice_cluster_lease_exchange_seconds_count [1-9]/);
  });

  it('a slot waiting in one instance is handed over when another instance frees it (no idle leases hoarded)', async () => {
    const be = await backend({ slots: 10, latencyMs: 50 });
    cleanup.push(() => be.close());
    const instances = await startInstances(2, { redisUrl, prefix: clusterPrefix(), backendUrl: be.url, slots: 2, extra: 'queue: { shed: timeout, timeout: 30s }\n' });
    for (const i of instances) cleanup.push(() => i.close());
    await shared(instances);
    const [a, b] = instances as [RunningSluice, RunningSluice];
    // A holds both slots for 1.5 s; B's request must wait for one of them, then run.
    const agent = client();
    cleanup.push(() => agent.close());
    const long = [get(`${a.url}/api/items/l1?ms=1500`, { dispatcher: agent }), get(`${a.url}/api/items/l2?ms=1500`, { dispatcher: agent })];
    await until(() => be.stats().inflight_now === 2, 5_000, 'A to hold both slots');
    const waiting = get(`${b.url}/api/items/w`, { dispatcher: agent });
    await until(() => b.app.queue.waiting === 1, 5_000, 'B to queue');
    expect(be.stats().inflight_now).toBe(2);
    const res = await waiting;
    expect(res.status).toBe(200);
    expect((await Promise.all(long)).map((r) => r.status)).toEqual([200, 200]);
    expect(be.stats().inflight_max).toBe(2);
    // With no demand left, every lease goes back to Redis.
    await until(() => instances.every((i) => i.app.cluster!.slots.view().servers[0]!.held === 0), 5_000, 'idle leases returned');
  });
});

describe('sharing between instances', () => {
  const ROUTES = 'queue: { shed: timeout, timeout: 60s }\nroutes:\n  - { name: bulk, match: { path: /api/live/* }, priority: low }\n  - { name: hot, match: { path: /api/items/* }, priority: high }\n';

  it('a more urgent class waiting on another instance is served before this instance\'s backlog', async () => {
    const be = await backend({ slots: 20, latencyMs: 200 });
    cleanup.push(() => be.close());
    const instances = await startInstances(2, { redisUrl, prefix: clusterPrefix(), backendUrl: be.url, slots: 4, extra: ROUTES });
    for (const i of instances) cleanup.push(() => i.close());
    await shared(instances);
    const [a, b] = instances as [RunningSluice, RunningSluice];
    const agent = client();
    cleanup.push(() => agent.close());
    const done: string[] = [];
    const low = Array.from({ length: 40 }, (_, n) => get(`${a.url}/api/live/low${n}`, { dispatcher: agent }).then((r) => { done.push('low'); return r.status; }));
    await until(() => a.app.queue.waiting >= 30, 5_000, 'A\'s backlog');
    const high = Array.from({ length: 4 }, (_, n) => get(`${b.url}/api/items/high${n}`, { dispatcher: agent }).then((r) => { done.push('high'); return r.status; }));
    expect([...(await Promise.all(high)), ...(await Promise.all(low))].every((s) => s === 200)).toBe(true);
    // The 4 high-priority reads finished while most of A's backlog was still waiting.
    const lastHigh = done.lastIndexOf('high');
    expect(lastHigh).toBeLessThan(20);
    expect(be.stats().inflight_max).toBeLessThanOrEqual(4);
  });

  it('instances with backlogs in the same class share the slots instead of one taking them all', async () => {
    const be = await backend({ slots: 20, latencyMs: 150 });
    cleanup.push(() => be.close());
    const instances = await startInstances(2, { redisUrl, prefix: clusterPrefix(), backendUrl: be.url, slots: 10, extra: ROUTES });
    for (const i of instances) cleanup.push(() => i.close());
    await shared(instances);
    const agent = client();
    cleanup.push(() => agent.close());
    const inUse = instances.map(() => [] as number[]);
    const sampler = setInterval(() => instances.forEach((i, n) => inUse[n]!.push(i.app.cluster!.slots.view().servers[0]!.in_use)), 50);
    const all = instances.flatMap((i, n) => Array.from({ length: 60 }, (_, k) => get(`${i.url}/api/live/s${n}-${k}`, { dispatcher: agent })));
    const results = await Promise.all(all);
    clearInterval(sampler);
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(be.stats().inflight_max).toBeLessThanOrEqual(10);
    // Over the busy middle of the run, each instance ran a real share (not 0 while the other had 10).
    for (const samples of inUse) {
      const middle = samples.slice(Math.floor(samples.length * 0.2), Math.floor(samples.length * 0.6));
      const mean = middle.reduce((sum, v) => sum + v, 0) / middle.length;
      expect(mean).toBeGreaterThanOrEqual(3);
    }
    for (const i of instances) expect(i.app.cluster!.slots.totals.reused).toBeGreaterThan(0);
  });
});

describe('the lease exchange script', () => {
  const redis = new Redis(redisUrl);
  afterEach(() => {});
  const run = async (keys: string[], args: Partial<LeaseExchangeArgs> & { instance: string }) => parseExchangeReply(await redis.eval(LEASE_EXCHANGE_LUA, keys.length, ...keys, ...exchangeArgv({
    ttlMs: 10_000, idBase: `${args.instance}:${Math.random()}`, limits: [1], release: [], inUse: [], idle: [], demand: [], channel: `${keys[0]}:ch`, ...args,
  })));

  it('gives a freed slot to the more urgent demand of another instance, and to the longer-waiting one within a class', async () => {
    const p = clusterPrefix();
    const keys = [`${p}demand`, `${p}instances`, `${p}leases`];
    const first = await run(keys, { instance: 'x', demand: [{ rank: 2, count: 1, ageMs: 0 }] });
    expect(first.granted).toHaveLength(1);
    // y waits at high priority, z at normal priority but for longer: both are registered.
    expect((await run(keys, { instance: 'y', demand: [{ rank: 1, count: 1, ageMs: 10 }] })).granted).toHaveLength(0);
    expect((await run(keys, { instance: 'z', demand: [{ rank: 2, count: 1, ageMs: 5_000 }] })).granted).toHaveLength(0);
    // x releases; z asks first but y's demand is more urgent, so z gets nothing.
    await run(keys, { instance: 'x', release: [[0, first.granted[0]!.id]] });
    expect((await run(keys, { instance: 'z', demand: [{ rank: 2, count: 1, ageMs: 5_100 }] })).granted).toHaveLength(0);
    const y = await run(keys, { instance: 'y', demand: [{ rank: 1, count: 1, ageMs: 110 }] });
    expect(y.granted).toHaveLength(1);
    expect(y.active).toEqual([1]);
    // Within one class, the longer wait goes first: w (normal, 10 ms) waits behind z (normal, 5 s).
    await run(keys, { instance: 'y', release: [[0, y.granted[0]!.id]] });
    expect((await run(keys, { instance: 'w', demand: [{ rank: 2, count: 1, ageMs: 10 }] })).granted).toHaveLength(0);
    expect((await run(keys, { instance: 'z', demand: [{ rank: 2, count: 1, ageMs: 5_200 }] })).granted).toHaveLength(1);
  });

  it('expires the leases of an instance that stopped renewing, and reports lost idle leases', async () => {
    const p = clusterPrefix();
    const keys = [`${p}demand`, `${p}instances`, `${p}leases`];
    const dead = await run(keys, { instance: 'dead', ttlMs: 300, limits: [2], demand: [{ rank: 2, count: 2, ageMs: 0 }] });
    expect(dead.granted).toHaveLength(2);
    expect((await run(keys, { instance: 'live', limits: [2], demand: [{ rank: 2, count: 1, ageMs: 0 }] })).granted).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 400));
    const live = await run(keys, { instance: 'live', limits: [2], demand: [{ rank: 2, count: 2, ageMs: 400 }] });
    expect(live.granted).toHaveLength(2);
    // The dead instance comes back: its idle leases are gone (reported lost), and a lease it
    // still has in use is counted again even above the limit, which keeps new grants at zero.
    const back = await run(keys, { instance: 'dead', limits: [2], idle: [[0, dead.granted[0]!.id]], inUse: [[0, dead.granted[1]!.id]], demand: [{ rank: 2, count: 1, ageMs: 0 }] });
    expect(back.lost).toEqual([dead.granted[0]!.id]);
    expect(back.active).toEqual([3]);
    expect(back.granted).toHaveLength(0);
  });
});
