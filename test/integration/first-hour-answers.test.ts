// What a new user reads in Sluice's answers and admin views: nothing internal leaks to
// clients, messages say what actually happened, every error carries its request id and
// timing, /status reads in one naming style and says when the backend cannot be reached.
import { connect } from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { backend, backendYaml, get, json, sluice, until } from '../helpers/harness.js';
import { startTestBackend } from '../../src/testing/backend.js';
import { parseMetrics, value } from '../telemetry/prometheus.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

/** A URL where nothing listens: a test backend's port, after it has closed. */
async function deadBackendUrl(): Promise<{ url: string; port: number }> {
  const be = await backend();
  const url = be.url;
  await be.close();
  return { url, port: Number(new URL(url).port) };
}

async function rawRequest(port: number, head: string): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(head);
  let data = '';
  socket.on('data', (d: Buffer) => { data += d.toString('latin1'); });
  await once(socket, 'close');
  const [headPart, body = ''] = data.split('\r\n\r\n');
  const [statusLine, ...lines] = headPart!.split('\r\n');
  const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  return { status: Number(statusLine!.split(' ')[1]), headers, body };
}

function keysOf(value: unknown, path = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => keysOf(v, `${path}[${i}]`));
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => [`${path}.${k}`, ...keysOf(v, `${path}.${k}`)]);
}

describe('answers and admin views a new user reads', () => {
  it('a backend that refuses connections: the 502 names no address, /readyz stays ready, /status and a gauge say failing, then recovered', async () => {
    const dead = await deadBackendUrl();
    const gw = await sluice(`${backendYaml({ url: dead.url } as never, 2)}`);
    cleanups.push(() => gw.close());
    const before = await json(`${gw.adminUrl}/status`);
    expect(before.backend.servers[0]).toMatchObject({ url: dead.url, state: 'unknown' });

    const res = await get(`${gw.url}/api/live/1`);
    expect(res.status).toBe(502);
    const error = JSON.parse(res.text).error;
    expect(error.code).toBe('upstream_connect_failed');
    expect(res.text).not.toContain('127.0.0.1');
    expect(res.text).not.toContain(String(dead.port));
    expect(res.text).not.toMatch(/ECONNREFUSED/);

    expect((await get(`${gw.adminUrl}/readyz`)).status).toBe(200);
    const status = await json(`${gw.adminUrl}/status`);
    expect(status.backend.servers[0]).toMatchObject({ url: dead.url, state: 'failing', last_error: 'upstream_connect_failed', consecutive_failures: 1 });
    const metrics = parseMetrics((await get(`${gw.adminUrl}/metrics`)).text);
    expect(value(metrics, 'sluice_backend_failing', { server: dead.url })).toBe(1);

    // The backend comes back on the same port; the probe notices without any traffic.
    const revived = await startTestBackend({ host: '127.0.0.1', port: dead.port, slots: 2, latencyMs: 1, reportLatencyMs: 1 });
    cleanups.push(() => revived.close());
    await until(async () => (await json(`${gw.adminUrl}/status`)).backend.servers[0].state === 'up', 12_000, 'the probe to see the backend again');
    expect(value(parseMetrics((await get(`${gw.adminUrl}/metrics`)).text), 'sluice_backend_failing', { server: dead.url })).toBe(0);
    expect(revived.stats().total).toBe(0);
  });

  it('queue_shed says the queue timeout was exceeded and quotes it', async () => {
    const be = await backend({ slots: 1, latencyMs: 300 });
    cleanups.push(() => be.close());
    const gw = await sluice(`${backendYaml(be, 1)}routes:\n  - name: live\n    match: { path: /api/live/* }\n    timeout: 20s\n    queue_timeout: 200ms\n`);
    cleanups.push(() => gw.close());
    expect((await get(`${gw.url}/api/live/warm`)).status).toBe(200);
    const answers = await Promise.all([1, 2, 3, 4].map((i) => get(`${gw.url}/api/live/${i}`)));
    const shed = answers.filter((a) => a.headers['x-sluice-error'] === 'queue_shed');
    expect(shed.length).toBeGreaterThan(0);
    const message = JSON.parse(shed[0]!.text).error.message as string;
    expect(message).toMatch(/^Estimated wait for a slot exceeds the queue timeout: about \d+ms estimated, 200ms allowed$/);
  });

  it('/status keys are snake_case and service_ms is rounded; the idle event-loop delay is not the sampling interval', async () => {
    const be = await backend({ slots: 2, latencyMs: 7 });
    cleanups.push(() => be.close());
    const gw = await sluice(`${backendYaml(be, 2)}routes:\n  - name: items\n    match: { path: /api/* }\n    max_slots: 2\n    reserved_slots: 1\n`);
    cleanups.push(() => gw.close());
    for (let i = 0; i < 3; i++) await get(`${gw.url}/api/live/${i}`);
    const status = await json(`${gw.adminUrl}/status`);
    expect(keysOf(status).filter((k) => !/^[a-z0-9_]+$/.test(k.split('.').pop()!))).toEqual([]);
    expect(status.slots.groups.find((g: { name: string }) => g.name === 'items')).toEqual({ name: 'items', inflight: 0, max_slots: 2, reserved_slots: 1 });
    expect(typeof status.queue.service_ms).toBe('number');
    expect(status.queue.service_ms * 10).toBe(Math.round(status.queue.service_ms * 10));

    await get(`${gw.adminUrl}/metrics`);
    await new Promise((r) => setTimeout(r, 1000));
    const idle = parseMetrics((await get(`${gw.adminUrl}/metrics`)).text);
    expect(value(idle, 'sluice_event_loop_delay_seconds', { quantile: '0.5' })).toBeLessThan(0.005);
  });

  it("a failed job's /result says what failed once, leaks no address, and is counted under the job's route", async () => {
    const dead = await deadBackendUrl();
    const gw = await sluice(`${backendYaml({ url: dead.url } as never, 1)}routes:\n  - name: reports\n    match: { path: /api/reports }\n    job: { attempts: 2, backoff: 10ms }\n`);
    cleanups.push(() => gw.close());
    const accepted = await get(`${gw.url}/api/reports`, { method: 'POST', body: 'x' });
    expect(accepted.status).toBe(202);
    const location = accepted.headers['location'] as string;
    await until(async () => (await json(`${gw.url}${location}`)).state === 'failed', 10_000, 'the job to fail');
    const result = await get(`${gw.url}${location}/result`);
    expect(result.status).toBe(502);
    const { message } = JSON.parse(result.text).error as { message: string };
    expect(message).toBe('Backend refused or unreachable: job failed (after 2 attempts)');
    expect(result.text).not.toContain(String(dead.port));
    const metrics = parseMetrics((await get(`${gw.adminUrl}/metrics`)).text);
    expect(value(metrics, 'sluice_errors_total', { route: 'reports', code: 'upstream_connect_failed' })).toBe(1);
    expect(value(metrics, 'sluice_errors_total', { route: 'unmatched', code: 'upstream_connect_failed' })).toBeUndefined();
    // Only job attempts reached for the backend here, and they count for its state too.
    const status = await json(`${gw.adminUrl}/status`);
    expect(status.backend.servers[0]).toMatchObject({ state: 'failing', consecutive_failures: 2 });
  });

  it('malformed requests (400) and oversized heads (431) carry X-Request-Id, the same request_id in the body, and Server-Timing', async () => {
    const be = await backend({ slots: 1, latencyMs: 1 });
    cleanups.push(() => be.close());
    const gw = await sluice(`${backendYaml(be, 1)}limits: { max_header_bytes: 1KiB }\n`);
    cleanups.push(() => gw.close());
    const port = Number(new URL(gw.url).port);
    const cases = [
      { head: 'GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n', status: 400, code: 'bad_request' },
      { head: `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(4096)}\r\n\r\n`, status: 431, code: 'headers_too_large' },
    ];
    for (const c of cases) {
      const res = await rawRequest(port, c.head);
      expect(res.status).toBe(c.status);
      expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      expect(res.headers['server-timing']).toBe(`error;desc=${c.code}`);
      expect(JSON.parse(res.body).error).toMatchObject({ code: c.code, request_id: res.headers['x-request-id'] });
    }
  });

  it("a request held for its job's result (Prefer: wait) shows the wait as job;dur, not as gateway time", async () => {
    const be = await backend({ slots: 1, latencyMs: 800 });
    cleanups.push(() => be.close());
    const gw = await sluice(`${backendYaml(be, 1)}jobs: { store: memory, prefer_async: allow }\n`);
    cleanups.push(() => gw.close());
    const res = await get(`${gw.url}/api/live/1`, { headers: { prefer: 'respond-async, wait=5' } });
    expect(res.status).toBe(200);
    const timing = String(res.headers['server-timing']);
    const part = (name: string) => Number(new RegExp(`(?:^|, )${name};dur=([\\d.]+)`).exec(timing)?.[1]);
    expect(part('job')).toBeGreaterThan(700);
    expect(part('gateway')).toBeLessThan(100);
    expect(part('total')).toBeCloseTo(part('queue') + part('job') + part('upstream') + part('gateway'), 1);
    // The dashboard's waterfall splits the same way.
    const live = await json(`${gw.adminUrl}/dashboard.json`);
    const row = (live.slow as Array<{ id: string; jobMs: number }>).find((r) => r.id === res.headers['x-request-id']);
    expect(row?.jobMs).toBeGreaterThan(700);

    // A long-poll on the status of a running job is job time too.
    const accepted = await get(`${gw.url}/api/live/2`, { headers: { prefer: 'respond-async' } });
    const location = accepted.headers['location'] as string;
    await until(async () => (await json(`${gw.url}${location}`)).state === 'running', 5_000, 'the job to run');
    const polled = await get(`${gw.url}${location}?wait=5`);
    expect(polled.status).toBe(303);
    const pollTiming = String(polled.headers['server-timing']);
    const pollPart = (name: string) => Number(new RegExp(`(?:^|, )${name};dur=([\\d.]+)`).exec(pollTiming)?.[1]);
    expect(pollPart('job')).toBeGreaterThan(300);
    expect(pollPart('gateway')).toBeLessThan(100);
  });
});
