// Route rules that refuse (deny, methods -> 405), and jobs nobody can flood or replay across
// callers. Raw bytes in, the backend's total (or what it received) as the witness.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestBackend } from '../../src/testing/backend.js';
import { backend, backendYaml, get, sluice, type RunningSluice } from '../helpers/harness.js';
import { exchange, request } from '../helpers/raw-http.js';

let be: TestBackend;
let gw: RunningSluice;

beforeAll(async () => {
  be = await backend({ slots: 4, latencyMs: 5, reportLatencyMs: 2000 });
  gw = await sluice(`${backendYaml(be, 4)}
jobs: { store: memory }
limits: { per_client: { max_jobs: 5 } }
routes:
  - name: internal
    match: { path: /api/internal/* }
    deny: true
  - name: no-deletes
    match: { path: /api/items/*, methods: [DELETE] }
    deny: true
  - name: items
    match: { path: /api/items/*, methods: [GET, HEAD] }
  - name: echo-post
    match: { path: /api/echo, methods: [POST] }
  - name: echo-put
    match: { path: /api/echo, methods: [PUT] }
  - name: live
    match: { path: /api/live/*, methods: [GET], fallthrough: true }
  - name: reports
    match: { path: /api/reports, methods: [POST] }
    job: { max_slots: 1, max_queued: 3 }
  - name: async-ok
    match: { path: /api/upload }
    prefer_async: allow
`);
});
afterAll(async () => {
  await gw?.close();
  await be?.close();
});

async function one(method: string, target: string, headers: Record<string, string> = {}, body = '') {
  const { responses } = await exchange(gw.url, request(method, target, headers, body));
  expect(responses).toHaveLength(1);
  return responses[0]!;
}

describe('route rules', () => {
  it('deny: true answers 403 route_denied for every method; nothing reaches the backend', async () => {
    const before = be.stats().total;
    for (const method of ['GET', 'POST', 'DELETE']) {
      const res = await one(method, '/api/internal/keys', {}, method === 'POST' ? 'x' : '');
      expect(res.status).toBe(403);
      expect(res.headers['x-sluice-error']).toBe('route_denied');
    }
    const del = await one('DELETE', '/api/items/1');
    expect(del.status).toBe(403);
    expect(be.stats().total).toBe(before);
  });

  it('methods refuse others with 405 + Allow; routes sharing the path are consulted together', async () => {
    const before = be.stats().total;
    const post = await one('POST', '/api/items/1', {}, 'x');
    expect(post.status).toBe(405);
    expect(post.headers['allow']).toBe('GET, HEAD');
    expect(post.headers['x-sluice-error']).toBe('method_not_allowed');
    const patch = await one('PATCH', '/api/echo', {}, 'x');
    expect(patch.status).toBe(405);
    expect(patch.headers['allow']).toBe('POST, PUT');
    expect(be.stats().total).toBe(before);
    expect((await one('PUT', '/api/echo', {}, 'x')).status).toBe(200);
    expect((await one('GET', '/api/items/1')).status).toBe(200);
  });

  it('fallthrough: true keeps passing other methods to later routes', async () => {
    const before = be.stats().total;
    const res = await one('POST', '/api/live/1', {}, 'x');
    // The default route proxied it; the test backend itself answers 405 for POST on /api/live.
    expect(res.headers['x-sluice-error']).toBeUndefined();
    expect(be.stats().total).toBeGreaterThan(before);
  });
});

describe('Prefer: respond-async', () => {
  it('is ignored on routes that do not allow it: the request runs interactively', async () => {
    const res = await one('POST', '/api/echo', { Prefer: 'respond-async' }, 'x');
    expect(res.status).toBe(200);
    expect(res.headers['location']).toBeUndefined();
    expect(res.headers['preference-applied']).toBeUndefined();
    // Not honoured, so it is forwarded as sent.
    expect(JSON.parse(res.body).headers['prefer']).toBe('respond-async');
  });

  it('makes a job on a route with prefer_async: allow', async () => {
    const res = await one('POST', '/api/upload', { Prefer: 'respond-async' }, 'x');
    expect(res.status).toBe(202);
    expect(res.headers['preference-applied']).toBe('respond-async');
  });
});

describe('job limits', () => {
  it('job.max_queued refuses more unfinished jobs on the route with 503 jobs_full + Retry-After', async () => {
    const statuses: number[] = [];
    let refusal: Awaited<ReturnType<typeof one>> | undefined;
    for (let i = 0; i < 5; i++) {
      const res = await one('POST', `/api/reports?n=${i}`, { 'X-Client': 'a' }, `r${i}`);
      statuses.push(res.status);
      if (res.status === 503) refusal = res;
    }
    expect(statuses).toEqual([202, 202, 202, 503, 503]);
    expect(refusal!.headers['x-sluice-error']).toBe('jobs_full');
    expect(refusal!.headers['retry-after']).toBeDefined();
  });

  it('limits.per_client.max_jobs refuses a client with 429 client_limit', async () => {
    // Three report jobs of this client are still unfinished from the test above; max_jobs is 5.
    for (const n of [1, 2]) expect((await one('POST', `/api/upload?ms=3000&n=${n}`, { Prefer: 'respond-async' }, 'x')).status).toBe(202);
    const over = await one('POST', '/api/upload?ms=3000&n=3', { Prefer: 'respond-async' }, 'x');
    expect(over.status).toBe(429);
    expect(over.headers['x-sluice-error']).toBe('client_limit');
  });
});

describe('Idempotency-Key', () => {
  let scoped: RunningSluice;
  beforeAll(async () => {
    scoped = await sluice(`${backendYaml(be, 4)}
jobs: { store: memory }
routes:
  - name: reports
    match: { path: /api/reports, methods: [POST] }
    job: { max_slots: 2 }
  - name: reports-b
    match: { path: /api/echo, methods: [POST] }
    job: { max_slots: 2 }
`);
  });
  afterAll(async () => { await scoped?.close(); });

  it('is scoped per credential: another caller with the same key gets its own job, never the first one’s result', async () => {
    const submitAs = async (path: string, headers: Record<string, string>) => {
      const { responses } = await exchange(scoped.url, request('POST', path, { 'Idempotency-Key': 'order-42', ...headers }, 'same body'));
      return responses[0]!;
    };
    const a = await submitAs('/api/reports?ms=300', { Cookie: 'session=user-a-secret' });
    const again = await submitAs('/api/reports?ms=300', { Cookie: 'session=user-a-secret' });
    const anonymous = await submitAs('/api/reports?ms=300', {});
    const b = await submitAs('/api/reports?ms=300', { Cookie: 'session=user-b' });
    const bearer = await submitAs('/api/reports?ms=300', { Authorization: 'Bearer t' });
    for (const res of [a, again, anonymous, b, bearer]) expect(res.status).toBe(202);
    const ids = [a, again, anonymous, b, bearer].map((r) => r.headers['location']);
    expect(ids[1]).toBe(ids[0]);
    expect(new Set(ids).size).toBe(4);
    // Each caller reads its own job's result: different backend answers.
    const resultOf = async (location: string) => {
      for (let i = 0; i < 100; i++) {
        const res = await get(`${scoped.url}${location}/result`);
        if (res.status === 201) return JSON.parse(res.text).report_id as string;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`no result for ${location}`);
    };
    expect(await resultOf(ids[2]!)).not.toBe(await resultOf(ids[0]!));
  });

  it('is scoped per route: the same key on another route is another job', async () => {
    const first = await exchange(scoped.url, request('POST', '/api/reports', { 'Idempotency-Key': 'k-route' }, 'b'));
    const second = await exchange(scoped.url, request('POST', '/api/echo', { 'Idempotency-Key': 'k-route' }, 'b'));
    expect(first.responses[0]!.status).toBe(202);
    expect(second.responses[0]!.status).toBe(202);
    expect(second.responses[0]!.headers['location']).not.toBe(first.responses[0]!.headers['location']);
  });
});
