// What happens when part of the cluster fails, with real processes and a real Redis:
// a SIGKILLed instance's slots come back to the others within lease_ttl, and a Redis outage
// drops every instance to fallback_slots (never unlimited) until Redis is back.
import { afterEach, describe, expect, inject, it } from 'vitest';
import { backend, client, get, json, until, type RunningSluice } from '../helpers/harness.js';
import { clusterPrefix, startInstanceProcess, startInstances } from '../helpers/cluster.js';
// @ts-expect-error plain JavaScript helper shared with .ci/run
import { startRedis } from '../../scripts/test-redis.mjs';

const redisUrl = inject('redisUrl');
const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => {});
});

describe('failover', () => {
  it('SIGKILL of an instance holding every slot: within lease_ttl the others use all 10 again', async () => {
    const be = await backend({ slots: 40, latencyMs: 100 });
    cleanup.push(() => be.close());
    const options = { redisUrl, prefix: clusterPrefix(), backendUrl: be.url, slots: 10, leaseTtl: '2s', extra: 'queue: { shed: timeout, timeout: 30s }\n' };
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((name) => startInstanceProcess(name, options)));
    for (const p of [a!, b!, c!]) cleanup.push(async () => { p.child.kill('SIGKILL'); await p.exited; });
    const inUse = async (p: { adminUrl: string }) => (await json(`${p.adminUrl}/status`)).cluster.servers[0].in_use as number;
    await until(async () => (await json(`${c!.adminUrl}/status`)).cluster.mode === 'shared', 10_000, 'c in shared mode');

    const agent = client();
    cleanup.push(() => agent.close());
    // A takes all 10 slots with long requests; B and C queue 10 each behind them.
    const held = Array.from({ length: 10 }, (_, n) => get(`${a!.url}/api/items/held${n}?ms=30000`, { dispatcher: agent }).catch(() => undefined));
    await until(async () => (await inUse(a!)) === 10, 10_000, 'A to hold 10 slots');
    const queued = Array.from({ length: 20 }, (_, n) => get(`${(n % 2 ? b : c)!.url}/api/items/q${n}?ms=20000`, { dispatcher: agent }).catch(() => undefined));
    await until(async () => (await json(`${b!.adminUrl}/status`)).queue.waiting === 10 && (await json(`${c!.adminUrl}/status`)).queue.waiting === 10, 10_000, 'B and C to queue');
    expect((await inUse(b!)) + (await inUse(c!))).toBe(0);

    const killedAt = Date.now();
    a!.child.kill('SIGKILL');
    await a!.exited;
    await until(async () => (await inUse(b!)) + (await inUse(c!)) === 10, 5_000, 'B and C to use all 10 slots');
    const recoveredMs = Date.now() - killedAt;
    // The last renewal was before the kill, so every lease of A has expired by lease_ttl;
    // B and C are told by the expiry timer, not by polling. Allow scheduling slack on a busy machine.
    expect(recoveredMs).toBeLessThanOrEqual(2_000 + 1_000);
    const status = await json(`${b!.adminUrl}/status`);
    expect(status.cluster.servers[0].cluster_busy).toBeLessThanOrEqual(10);
    console.log(`slots of the killed instance back in use after ${recoveredMs} ms (lease_ttl 2000 ms)`);
    for (const p of [b!, c!]) p.child.kill('SIGKILL');
    await Promise.all([...held, ...queued]);
  });

  it('Redis stopped mid-load: each instance runs at most fallback_slots, keeps serving, and shares slots again once Redis is back', async () => {
    const redis = await startRedis();
    cleanup.push(() => redis.stop());
    const be = await backend({ slots: 60, latencyMs: 150 });
    cleanup.push(() => be.close());
    const instances = await startInstances(3, {
      redisUrl: redis.url, prefix: clusterPrefix(), backendUrl: be.url, slots: 10, leaseTtl: '1s', fallbackSlots: 2,
      extra: 'queue: { shed: timeout, timeout: 60s, max_waiting: 100000 }\n',
    });
    for (const i of instances) cleanup.push(() => i.close());
    const all = (mode: string) => () => instances.every((i) => i.app.cluster!.slots.mode === mode);
    await until(all('shared'), 10_000, 'shared mode');

    // 15 closed-loop clients per instance: more demand than the 10 shared slots.
    const agent = client();
    cleanup.push(() => agent.close());
    let running = true;
    cleanup.push(async () => { running = false; });
    const outcomes: number[] = [];
    const loops = Array.from({ length: 45 }, async (_, n) => {
      const target: RunningSluice = instances[n % 3]!;
      for (let k = 0; running; k++) {
        outcomes.push(await get(`${target.url}/api/items/c${n}-${k}`, { dispatcher: agent }).then((r) => r.status, () => -1));
      }
    });
    const phase = async (ms: number) => {
      be.resetStats();
      const before = outcomes.length;
      await new Promise((r) => setTimeout(r, ms));
      return { inflightMax: be.stats().inflight_max, served: outcomes.length - before };
    };

    const sharedPhase = await phase(1_500);
    expect(sharedPhase.inflightMax).toBeLessThanOrEqual(10);
    expect(sharedPhase.inflightMax).toBeGreaterThanOrEqual(8);

    be.resetStats();
    await redis.stop();
    await until(all('fallback'), 10_000, 'fallback mode');
    // Requests started under shared leases finish within one backend latency (150 ms).
    const transition = be.stats().inflight_max;
    expect(transition).toBeLessThanOrEqual(10 + 3 * 2);
    await new Promise((r) => setTimeout(r, 400));
    const fallbackPhase = await phase(1_500);
    expect(fallbackPhase.inflightMax).toBeLessThanOrEqual(3 * 2);
    expect(fallbackPhase.served).toBeGreaterThan(0);
    const ready = await get(`${instances[0]!.adminUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.text)).toMatchObject({ redis: 'down', slots: 'fallback' });

    await redis.start();
    await until(all('shared'), 15_000, 'shared mode again');
    // Instances rejoin one by one; requests one of them started in fallback meanwhile finish within 150 ms.
    await new Promise((r) => setTimeout(r, 400));
    // Fallback-era requests are adopted as leases, so the total comes back under 10 at once.
    const resumed = await phase(1_500);
    expect(resumed.inflightMax).toBeLessThanOrEqual(10);
    expect(resumed.inflightMax).toBeGreaterThanOrEqual(8);
    running = false;
    await Promise.all(loops);
    expect(outcomes.filter((s) => s !== 200)).toEqual([]);
    console.log(`in flight max: shared ${sharedPhase.inflightMax}, transition ${transition}, fallback ${fallbackPhase.inflightMax} (bound 6), resumed ${resumed.inflightMax}`);
  });
});
