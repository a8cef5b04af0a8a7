// GET /metrics (Prometheus text, checked with a real parser) and GET /queue on the admin
// server, against real Sluice and the real test backend.
import { afterEach, describe, expect, it } from 'vitest';
import { backend, backendYaml, client, get, json, sluice, until } from '../helpers/harness.js';
import { histogram, parseMetrics, typeOf, value } from '../telemetry/prometheus.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

const ROUTES = `routes:
  - name: items
    match: { path: /api/items/* }
    priority: high
  - name: slow
    match: { path: /api/live/* }
    priority: low
`;

async function setup(slots: number, extra = '') {
  const be = await backend({ slots, latencyMs: 30 });
  cleanups.push(() => be.close());
  const gw = await sluice(backendYaml(be, slots) + extra + ROUTES);
  cleanups.push(() => gw.close());
  const agent = client(200);
  cleanups.push(() => agent.close());
  const scrape = async () => {
    const res = await get(`${gw.adminUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(String(res.headers['content-type'])).toMatch(/^text\/plain; version=0\.0\.4/);
    return parseMetrics(res.text);
  };
  return { be, gw, agent, scrape };
}

describe('GET /metrics', () => {
  it('counts every request in the queue-wait histogram, by route, and matches requests and upstream calls', async () => {
    const { be, gw, agent, scrape } = await setup(2);
    const items = 17;
    const slow = 5;
    const sent = [
      ...Array.from({ length: items }, (_, i) => get(`${gw.url}/api/items/${i}`, { dispatcher: agent })),
      ...Array.from({ length: slow }, (_, i) => get(`${gw.url}/api/live/${i}`, { dispatcher: agent })),
    ];
    const answers = await Promise.all(sent);
    expect(answers.every((a) => a.status === 200)).toBe(true);
    const m = await scrape();

    const itemsWait = histogram(m, 'sluice_queue_wait_seconds', { route: 'items' })!;
    const slowWait = histogram(m, 'sluice_queue_wait_seconds', { route: 'slow' })!;
    expect(itemsWait.count).toBe(items);
    expect(slowWait.count).toBe(slow);
    expect(itemsWait.buckets.at(-1)).toEqual({ le: Infinity, count: items });
    for (let i = 1; i < itemsWait.buckets.length; i++) expect(itemsWait.buckets[i]!.count).toBeGreaterThanOrEqual(itemsWait.buckets[i - 1]!.count);
    // 22 requests on 2 slots: most of them waited, and the waits add up to real time.
    expect(itemsWait.sum + slowWait.sum).toBeGreaterThan(0.1);

    expect(value(m, 'sluice_requests_total', { route: 'items', status: '200' })).toBe(items);
    expect(value(m, 'sluice_requests_total', { route: 'slow', status: '200' })).toBe(slow);
    expect(histogram(m, 'sluice_upstream_duration_seconds', { route: 'items' })!.count).toBe(items);
    expect(histogram(m, 'sluice_request_duration_seconds', { route: 'slow' })!.count).toBe(slow);
    expect(be.stats().total).toBe(items + slow);
    expect(value(m, 'sluice_response_bytes_total', { route: 'items' })).toBe(answers.slice(0, items).reduce((n, a) => n + a.body.length, 0));
    expect(value(m, 'sluice_backend_slots', { server: be.url })).toBe(2);
    expect(value(m, 'sluice_backend_slots_busy', { server: be.url })).toBe(0);
    for (const priority of ['critical', 'high', 'normal', 'low', 'background']) {
      expect(value(m, 'sluice_queue_depth', { priority })).toBe(0);
    }
    expect(value(m, 'sluice_event_loop_delay_seconds', { quantile: '0.99' })).toBeGreaterThanOrEqual(0);
    expect(typeOf(m, 'sluice_jobs')).toBe('GAUGE');
    expect(typeOf(m, 'sluice_cache_bytes')).toBe('GAUGE');
    expect(typeOf(m, 'sluice_cache_requests_total')).toBe('COUNTER');
    expect(typeOf(m, 'sluice_coalesced_followers_total')).toBe('COUNTER');
  });

  it('shows slots busy and queue depth per priority while requests wait, and counts sheds by reason', async () => {
    const { be, gw, agent, scrape } = await setup(2, 'queue: { max_waiting: 3 }\n');
    const held = [
      ...Array.from({ length: 2 }, (_, i) => get(`${gw.url}/api/items/h${i}?ms=800`, { dispatcher: agent })),
    ];
    await until(() => be.stats().inflight_now === 2, 5000, 'slots to fill');
    const waiting = [
      get(`${gw.url}/api/items/w1`, { dispatcher: agent }),
      get(`${gw.url}/api/live/w2`, { dispatcher: agent }),
      get(`${gw.url}/api/live/w3`, { dispatcher: agent }),
    ];
    await until(async () => (await json(`${gw.adminUrl}/status`)).queue.waiting === 3, 5000, 'three waiting');
    const refused = await Promise.all([get(`${gw.url}/api/items/x1`, { dispatcher: agent }), get(`${gw.url}/api/live/x2`, { dispatcher: agent })]);
    expect(refused.map((r) => r.status)).toEqual([503, 503]);

    const m = await scrape();
    expect(value(m, 'sluice_backend_slots_busy', { server: be.url })).toBe(2);
    expect(value(m, 'sluice_queue_depth', { priority: 'high' })).toBe(1);
    expect(value(m, 'sluice_queue_depth', { priority: 'low' })).toBe(2);
    expect(value(m, 'sluice_queue_oldest_wait_seconds')).toBeGreaterThan(0);
    expect(value(m, 'sluice_shed_total', { route: 'items', reason: 'queue_full' })).toBe(1);
    expect(value(m, 'sluice_shed_total', { route: 'slow', reason: 'queue_full' })).toBe(1);
    expect(value(m, 'sluice_errors_total', { route: 'items', code: 'queue_full' })).toBe(1);
    expect(value(m, 'sluice_requests_total', { route: 'slow', status: '503' })).toBe(1);
    await Promise.all([...held, ...waiting]);
    const after = await scrape();
    expect(histogram(after, 'sluice_queue_wait_seconds', { route: 'items' })!.count).toBe(4);
    expect(histogram(after, 'sluice_queue_wait_seconds', { route: 'slow' })!.count).toBe(3);
  });
});

describe('GET /metrics for the read path and jobs', () => {
  it('counts cache hits and misses, cache size, coalesced followers and jobs by state', async () => {
    const be = await backend({ slots: 4, latencyMs: 20, reportLatencyMs: 100 });
    cleanups.push(() => be.close());
    const gw = await sluice(backendYaml(be, 4) + `jobs: { store: memory }
routes:
  - name: items
    match: { path: /api/items/* }
    cache: { enabled: true }
  - name: live
    match: { path: /api/live/* }
  - name: reports
    match: { path: /api/reports, methods: [POST] }
    job: { attempts: 1 }
`);
    cleanups.push(() => gw.close());
    for (let i = 0; i < 4; i++) expect((await get(`${gw.url}/api/items/1`)).status).toBe(200);
    const same = await Promise.all(Array.from({ length: 5 }, () => get(`${gw.url}/api/live/same?ms=300`)));
    expect(same.every((r) => r.status === 200)).toBe(true);
    expect(be.stats().by_path['/api/live/same']).toBe(1);
    expect((await get(`${gw.url}/api/reports`, { method: 'POST', body: '{}' })).status).toBe(202);
    await until(async () => {
      const m = parseMetrics((await get(`${gw.adminUrl}/metrics`)).text);
      return value(m, 'sluice_jobs', { state: 'succeeded' }) === 1;
    }, 10_000, 'the job to succeed');

    const m = parseMetrics((await get(`${gw.adminUrl}/metrics`)).text);
    expect(value(m, 'sluice_cache_requests_total', { route: 'items', status: 'miss' })).toBe(1);
    expect(value(m, 'sluice_cache_requests_total', { route: 'items', status: 'hit' })).toBe(3);
    const status = await json(`${gw.adminUrl}/status`);
    expect(value(m, 'sluice_cache_bytes')).toBe(status.cache.bytes);
    expect(value(m, 'sluice_cache_bytes')).toBeGreaterThan(0);
    expect(value(m, 'sluice_cache_entries')).toBe(status.cache.entries);
    expect(value(m, 'sluice_coalesced_followers_total', { route: 'live' })).toBe(4);
    expect(value(m, 'sluice_jobs', { state: 'succeeded' })).toBe(1);
    expect(value(m, 'sluice_jobs', { state: 'queued' }) ?? 0).toBe(0);
  });
});

describe('GET /queue', () => {
  it('lists waiting requests in serving order with route, priority, age, position and deadline, and the ones on a slot', async () => {
    const { be, gw, agent } = await setup(1, 'queue: { timeout: 20s }\n');
    const held = get(`${gw.url}/api/live/hold?ms=800`, { dispatcher: agent, headers: { 'x-request-id': 'on-slot' } });
    await until(() => be.stats().inflight_now === 1, 5000, 'slot taken');
    const low = get(`${gw.url}/api/live/1`, { dispatcher: agent, headers: { 'x-request-id': 'low-1' } });
    await until(async () => (await json(`${gw.adminUrl}/queue`)).waiting.length === 1, 5000, 'first waiter');
    const high = get(`${gw.url}/api/items/1`, { dispatcher: agent, headers: { 'x-request-id': 'high-1' } });
    await until(async () => (await json(`${gw.adminUrl}/queue`)).waiting.length === 2, 5000, 'second waiter');

    const view = await json(`${gw.adminUrl}/queue`);
    expect(view.slots).toEqual({ busy: 1, total: 1 });
    expect(view.inflight).toHaveLength(1);
    expect(view.inflight[0]).toMatchObject({ request_id: 'on-slot', method: 'GET', path: '/api/live/hold', route: 'slow', priority: 'low', server: be.url, followers: 0 });
    // The high-priority request arrived last but is served first.
    expect(view.waiting.map((w: { request_id: string }) => w.request_id)).toEqual(['high-1', 'low-1']);
    expect(view.waiting[0]).toMatchObject({ route: 'items', priority: 'high', position: 1, position_at_enqueue: 1, path: '/api/items/1' });
    expect(view.waiting[1]).toMatchObject({ route: 'slow', priority: 'low', position: 2, position_at_enqueue: 1 });
    expect(view.waiting[1].age_ms).toBeGreaterThanOrEqual(view.waiting[0].age_ms);
    for (const w of view.waiting) {
      expect(w.deadline_in_ms).toBeGreaterThan(15_000);
      expect(w.deadline_in_ms).toBeLessThanOrEqual(20_000);
    }
    await Promise.all([held, low, high]);
    expect(await json(`${gw.adminUrl}/queue`)).toMatchObject({ waiting: [], inflight: [] });
  });
});
