// Every slot of a Gunicorn gthread backend: Sluice in front of real Gunicorn (the Flask
// example at its shipped defaults, 10 workers x 5 threads) and of the test backend's
// gthread model, under bursts of unique slow reads. The backend's own /stats count the
// requests its threads actually run.
import { afterEach, describe, expect, it } from 'vitest';
import { Pool } from 'undici';
import { backend, client, get, json, sluice } from '../helpers/harness.js';
import { startGunicorn } from '../helpers/gunicorn.js';

/** Nine seconds at 250/s of 250 ms reads: 1.25x what 50 slots can serve. */
const BURST = 2250;
/** On a fresh machine the first start installs gunicorn and python3-flask with apt-get. */
const INSTALL_TIMEOUT_MS = 240_000;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

interface BackendUnderTest {
  url: string;
  stats(): Promise<{ inflight_max: number; total: number; abandoned: number }>;
  resetStats(): Promise<void>;
}

async function gunicorn(): Promise<BackendUnderTest> {
  const g = await startGunicorn();
  cleanups.push(() => g.close());
  return g;
}

async function gthreadModel(): Promise<BackendUnderTest> {
  // Keep-alive as in examples/flask-gunicorn/gunicorn.conf.py.
  const be = await backend({ model: 'gthread', workers: 10, threads: 5, slots: 50, keepaliveMs: 5000 });
  cleanups.push(() => be.close());
  return { url: be.url, stats: async () => be.stats(), resetStats: async () => be.resetStats() };
}

/**
 * `count` unique reads of `ms` each through `base`, arriving at `perSecond` (more than the
 * backend's 50 slots can serve, so Sluice's queue stays full and every slot is wanted).
 */
async function burst(base: string, count: number, ms: number, perSecond: number, tag: string): Promise<number[]> {
  const agent = client();
  try {
    const pending: Array<ReturnType<typeof get>> = [];
    const started = performance.now();
    for (let i = 0; i < count; i++) {
      const due = started + (i * 1000) / perSecond - performance.now();
      if (due > 1) await new Promise((r) => setTimeout(r, due));
      pending.push(get(`${base}/api/live/${tag}-${i}?ms=${ms}`, { dispatcher: agent }));
    }
    const responses = await Promise.all(pending);
    return responses.map((r) => r.status);
  } finally {
    await agent.close();
  }
}

async function throughSluice(be: BackendUnderTest, tag: string, server = '') {
  const gw = await sluice(`backend:\n  servers:\n    - { url: ${be.url}, slots: 50${server} }\nqueue: { timeout: 60s }\nroutes:\n  - { name: live, match: { path: /api/live/* }, timeout: 90s }\n`);
  cleanups.push(() => gw.close());
  await be.resetStats();
  const statuses = await burst(gw.url, BURST, 250, 250, tag);
  const status = await json(`${gw.adminUrl}/status`);
  const metrics = (await get(`${gw.adminUrl}/metrics`)).text;
  return { statuses, stats: await be.stats(), connections: status.slots.servers[0].connections, metrics };
}

describe('Sluice uses every slot of a gthread backend', () => {
  it('real Gunicorn at its defaults: at least 45 of 50 threads busy at once, never more than 50', async () => {
    const be = await gunicorn();
    const { statuses, stats, connections } = await throughSluice(be, 'real');
    expect(statuses).toEqual(Array(BURST).fill(200));
    expect(stats.inflight_max).toBeGreaterThanOrEqual(45);
    expect(stats.inflight_max).toBeLessThanOrEqual(50);
    expect(stats.total).toBe(BURST);
    // The ones that waited inside Gunicorn were noticed and their connections replaced.
    expect(connections.recycled_total).toBeGreaterThan(0);
    expect(connections.busy).toBe(0);
  }, INSTALL_TIMEOUT_MS);

  it('the gthread model: at least 45 of 50 threads busy at once, never more than 50', async () => {
    const be = await gthreadModel();
    const { statuses, stats, connections, metrics } = await throughSluice(be, 'model');
    expect(statuses).toEqual(Array(BURST).fill(200));
    expect(stats.inflight_max).toBeGreaterThanOrEqual(45);
    expect(stats.inflight_max).toBeLessThanOrEqual(50);
    expect(connections.recycled_total).toBeGreaterThan(0);
    // /status and /metrics say how many requests the backend really ran at once, against 50.
    expect(connections.effective_concurrency).toBeGreaterThan(30);
    expect(connections.effective_concurrency).toBeLessThanOrEqual(50);
    const recycled = new RegExp(`sluice_backend_connections_recycled\\{server="${be.url}"\\} (\\d+)`).exec(metrics);
    expect(Number(recycled?.[1])).toBe(connections.recycled_total);
    expect(metrics).toMatch(/sluice_backend_effective_concurrency\{server="[^"]+"\} \d/);
  });

  it('recycle_queued: false keeps every connection, and still reports the waits inside the backend', async () => {
    const be = await gthreadModel();
    const { statuses, stats, connections } = await throughSluice(be, 'kept', ', recycle_queued: false');
    expect(statuses).toEqual(Array(BURST).fill(200));
    expect(stats.inflight_max).toBeLessThanOrEqual(50);
    expect(connections.recycle_queued).toBe(false);
    expect(connections.recycled_total).toBe(0);
    expect(connections.queued_detected_total).toBeGreaterThan(0);
  });

  it('a backend without connection binding (the semaphore model): all 50 slots, and connections are not churned', async () => {
    const be = await backend({ slots: 50 });
    cleanups.push(() => be.close());
    const { statuses, stats, connections } = await throughSluice({ url: be.url, stats: async () => be.stats(), resetStats: async () => be.resetStats() }, 'semaphore');
    expect(statuses).toEqual(Array(BURST).fill(200));
    expect(stats.inflight_max).toBe(50);
    // Nothing waits inside this backend, so (almost) nothing is recycled.
    expect(connections.recycled_total).toBeLessThanOrEqual(BURST / 50);
    expect(connections.opened_total).toBeLessThanOrEqual(50 + BURST / 50);
  });
});

describe('the gthread model behaves like real Gunicorn', () => {
  /** What a plain pool of exactly 50 keep-alive connections gets (Sluice before balancing). */
  async function plainPool(be: BackendUnderTest, tag: string): Promise<number> {
    const pool = new Pool(be.url, { connections: 50, pipelining: 1 });
    try {
      await be.resetStats();
      await Promise.all(Array.from({ length: 300 }, async (_, i) => {
        const res = await pool.request({ method: 'GET', path: `/api/live/${tag}-${i}?ms=300` });
        await res.body.dump();
      }));
      return (await be.stats()).inflight_max;
    } finally {
      await pool.close();
    }
  }

  it('a burst through a 50-connection pool leaves at least 10 of the 50 threads idle on both', async () => {
    const real = await plainPool(await gunicorn(), 'pool-real');
    const model = await plainPool(await gthreadModel(), 'pool-model');
    // Uneven accepts: some workers hold more than 5 of the 50 connections, others fewer.
    // Measured: real Gunicorn 5 to 34 running at once (it varies with the machine's load),
    // the model 26 to 36; through Sluice both reach at least 45 (above).
    expect(real).toBeGreaterThan(0);
    expect(real).toBeLessThanOrEqual(40);
    expect(model).toBeGreaterThan(0);
    expect(model).toBeLessThanOrEqual(40);
  }, INSTALL_TIMEOUT_MS);
});
