// Route policy cannot be bypassed by percent-encoding: raw bytes against real Sluice in front
// of the test backend and of the Flask app under Gunicorn (which decodes PATH_INFO).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestBackend } from '../../src/testing/backend.js';
import { backend, backendYaml, sluice, type RunningSluice } from '../helpers/harness.js';
import { startGunicorn, type RunningGunicorn } from '../helpers/gunicorn.js';
import { exchange, request } from '../helpers/raw-http.js';

const ROUTES = `
jobs: { store: memory }
routes:
  - name: upload
    match: { path: /api/upload, methods: [POST] }
    max_body: 1KiB
  - name: reports
    match: { path: /api/reports, methods: [POST] }
    job: { max_slots: 1 }
  - name: private
    match: { path: /api/private/*, case_insensitive: true }
    deny: true
`;
const BIG = 'x'.repeat(5000);

let be: TestBackend;
let gw: RunningSluice;

beforeAll(async () => {
  be = await backend({ slots: 4, latencyMs: 5 });
  gw = await sluice(`${backendYaml(be, 4)}${ROUTES}`);
});
afterAll(async () => {
  await gw?.close();
  await be?.close();
});

async function send(target: string, method = 'GET', body = '') {
  const { responses } = await exchange(gw.url, request(method, target, {}, body));
  expect(responses.length, `an answer to ${method} ${target}`).toBe(1);
  return responses[0]!;
}

describe('percent-encoded paths (test backend)', () => {
  it('POST /api/%75pload is the upload route: its max_body applies and nothing reaches the backend', async () => {
    const before = be.stats().total;
    const res = await send('/api/%75pload', 'POST', BIG);
    expect(res.status).toBe(413);
    expect(res.headers['x-sluice-error']).toBe('body_too_large');
    expect(be.stats().total).toBe(before);
  });

  it('POST /api/%72eports is the job route: answered 202 with a job, not run synchronously', async () => {
    const res = await send('/api/%72eports', 'POST', 'r');
    expect(res.status).toBe(202);
    expect(res.headers['location']).toMatch(/^\/_sluice\/jobs\//);
  });

  it('the backend receives the normalized path', async () => {
    for (const target of ['/api/%65cho', '/api/x/%2e%2e/echo', '//api/./echo', '/api/%45cho/..//echo']) {
      const res = await send(target);
      expect(res.status, target).toBe(200);
      expect(JSON.parse(res.body).path, target).toBe('/api/echo');
    }
  });

  it('deny and case_insensitive hold for every spelling, including an encoded newline', async () => {
    const before = be.stats().total;
    for (const target of ['/api/private/x', '/API/Private/x', '/api/%70rivate/x', '/api/PRIV%41TE/%0A', '/api/x/../private/y']) {
      const res = await send(target);
      expect(res.status, target).toBe(403);
      expect(res.headers['x-sluice-error']).toBe('route_denied');
    }
    expect(be.stats().total).toBe(before);
  });

  it('refuses encoded /, \\, NUL and invalid escapes with 400 bad_path before the backend', async () => {
    const before = be.stats().total;
    for (const target of ['/api/upload%2f', '/api/%2E%2E%2Fupload', '/api/%5cupload', '/api\\upload', '/api/echo%00', '/api/%zz', '/api/%e']) {
      const res = await send(target, 'POST', BIG);
      expect(res.status, target).toBe(400);
      expect(res.headers['x-sluice-error'], target).toBe('bad_path');
    }
    expect(be.stats().total).toBe(before);
  });
});

describe('percent-encoded paths (Flask under Gunicorn)', () => {
  let gunicorn: RunningGunicorn;
  let front: RunningSluice;
  beforeAll(async () => {
    gunicorn = await startGunicorn([], { LATENCY_MS: '10' });
    front = await sluice(`backend:\n  servers:\n    - url: ${gunicorn.url}\n      slots: 4\n${ROUTES}`);
  }, 120_000);
  afterAll(async () => {
    await front?.close();
    await gunicorn?.close();
  });

  it('an encoded upload path meets the upload route limit; Flask never runs it', async () => {
    const before = (await gunicorn.stats()).total;
    const { responses } = await exchange(front.url, request('POST', '/api/%75pl%6Fad', {}, BIG));
    expect(responses[0]?.status).toBe(413);
    expect((await gunicorn.stats()).total).toBe(before);
  });

  it('Flask sees the path Sluice routed on', async () => {
    const { responses } = await exchange(front.url, request('GET', '/api/%65ch%6f?k=%2F'));
    expect(responses[0]?.status).toBe(200);
    const echo = JSON.parse(responses[0]!.body);
    expect(echo.path).toBe('/api/echo');
    expect(echo.query).toEqual({ k: '/' });
  });

  it('an encoded slash never reaches Gunicorn', async () => {
    const before = (await gunicorn.stats()).total;
    const { responses } = await exchange(front.url, request('POST', '/api%2fupload', {}, BIG));
    expect(responses[0]?.status).toBe(400);
    expect((await gunicorn.stats()).total).toBe(before);
  });
});
