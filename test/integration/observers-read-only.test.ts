// Observers only read. What the backend receives is built by prepareUpstream alone, so it
// is the same whichever observers run; an observer that throws from every hook changes
// neither what the backend receives nor what the client is answered. Real Sluice, real
// test backend, real sockets; the backend records every request it receives.
import type { IncomingHttpHeaders } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { compileConfig } from '../../src/config/compile.js';
import { parseConfigText } from '../../src/config/load.js';
import type { RequestObserver } from '../../src/pipeline/deps.js';
import { backend, backendYaml, get } from '../helpers/harness.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

const ROUTES = `
routes:
  - name: items
    match: { path: /api/items/* }
    cache: { enabled: true, ignore_cookies: true }
  - name: live
    match: { path: /api/live/* }
    cache: { enabled: false }
    coalesce: { enabled: false }
`;

/** Throws from every hook, after trying to change the request it is shown. */
const hostile: RequestObserver = {
  onStart(ctx) {
    throw new Error(`observer bug at start of ${ctx.id}`);
  },
  afterUpstream() {
    throw new Error('observer bug after the backend call');
  },
  onDone() {
    throw new Error('observer bug at the end');
  },
};

/** Starts the backend and Sluice (tracing on, so traceparent injection is exercised) with `observers` added. */
async function gatewayWith(observers: RequestObserver[]): Promise<{ url: string; received: IncomingHttpHeaders[] }> {
  const received: IncomingHttpHeaders[] = [];
  const be = await backend({ slots: 4, latencyMs: 5, onRequest: (req) => { if (req.url?.startsWith('/api/')) received.push({ ...req.headers }); } });
  cleanups.push(() => be.close());
  const text = `listen: { host: 127.0.0.1, port: 0 }\nadmin: { enabled: false }\nlogging: { level: silent, access_log: false }\n`
    + `tracing: { exporter: console, sample_ratio: 0 }\njobs: { store: memory }\n${backendYaml(be, 4)}${ROUTES}`;
  const app = createApp(compileConfig(parseConfigText(text, 'test.yaml', {})), observers);
  const { port } = await app.listen();
  cleanups.push(async () => { await app.shutdown(1000); });
  return { url: `http://127.0.0.1:${port}`, received };
}

/** The headers that differ per run by design (ports, ids, the trace id), named so the rest can be compared. */
function comparable(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const { host, 'x-forwarded-host': forwardedHost, traceparent, ...rest } = headers;
  expect(host).toBeDefined();
  expect(forwardedHost).toBe(host);
  // Sluice's own traceparent (from prepareUpstream): the client's trace continued, with
  // Sluice's CLIENT span as the parent instead of the client's span.
  expect(traceparent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-0[01]$/);
  expect(traceparent).not.toContain('b7ad6b7169203331');
  return rest;
}

describe('observers only read', () => {
  it('the backend receives the same request, and the client the same answer, with an observer that throws from every hook', async () => {
    const plain = await gatewayWith([]);
    const withHostile = await gatewayWith([hostile]);
    const request = {
      headers: {
        'if-none-match': '"client-etag"', range: 'bytes=0-3', cookie: 'session=abc',
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', 'x-forwarded-for': '203.0.113.9',
      },
    };
    const answers = [];
    for (const gw of [plain, withHostile]) {
      const read = await get(`${gw.url}/api/items/observed?cache_control=max-age=60`, request);
      const live = await get(`${gw.url}/api/live/observed`, request);
      answers.push([read.status, read.headers['content-range'], live.status]);
    }
    expect(answers[0]!.slice(0, 2)).toEqual([206, expect.stringMatching(/^bytes 0-3\//)]);
    expect(answers[1]).toEqual(answers[0]);
    expect(plain.received).toHaveLength(2);
    expect(withHostile.received.map(comparable)).toEqual(plain.received.map(comparable));
    // The read path's own changes, made by prepareUpstream: the client's validators, range
    // and (ignore_cookies) cookie are not forwarded; an untrusted X-Forwarded-For is replaced.
    const [read, live] = plain.received;
    expect([read!['if-none-match'], read!.range, read!.cookie]).toEqual([undefined, undefined, undefined]);
    expect(read!['x-forwarded-for']).toBe('127.0.0.1');
    expect([live!['if-none-match'], live!.range, live!.cookie]).toEqual(['"client-etag"', 'bytes=0-3', 'session=abc']);
  });
});
