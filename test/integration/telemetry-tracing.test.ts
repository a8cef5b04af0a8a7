// Tracing end to end: real Sluice with the OTLP exporter, the real test backend, and a
// real OTLP/HTTP receiver that decodes what the SDK sends over the wire.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp } from '../../src/app.js';
import { compileConfig } from '../../src/config/compile.js';
import { parseConfigText } from '../../src/config/load.js';
import type { RequestObserver } from '../../src/pipeline/deps.js';
import { backend, backendYaml, get, sluice } from '../helpers/harness.js';
import { durationMs, SPAN_KIND, startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../telemetry/otlp-receiver.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

const ROUTES = `routes:
  - name: items
    match: { path: /api/items/* }
    priority: high
  - name: live
    match: { path: /api/live/* }
    coalesce: { enabled: true }
`;

async function setup(opts: { slots?: number; tracing?: string; queue?: string } = {}) {
  const receiver = await startOtlpReceiver();
  cleanups.push(() => receiver.close());
  const slots = opts.slots ?? 1;
  const be = await backend({ slots, latencyMs: 20 });
  cleanups.push(() => be.close());
  const tracing = opts.tracing ?? `tracing: { exporter: otlp, endpoint: ${receiver.url}, protocol: http/protobuf, sample_ratio: 1.0, service_name: sluice-test }\n`;
  const gw = await sluice(backendYaml(be, slots) + tracing + (opts.queue ?? '') + ROUTES);
  cleanups.push(() => gw.close());
  return { receiver, be, gw };
}

function serverSpanOf(spans: ReceivedSpan[], requestId: string): ReceivedSpan | undefined {
  return spans.find((s) => s.kind === SPAN_KIND.SERVER && s.attributes['sluice.request.id'] === requestId);
}

function childrenOf(spans: ReceivedSpan[], parent: ReceivedSpan): ReceivedSpan[] {
  return spans.filter((s) => s.parentSpanId === parent.spanId && s.traceId === parent.traceId);
}

function timing(header: string | string[] | undefined): Record<string, { dur?: number; desc?: string }> {
  const out: Record<string, { dur?: number; desc?: string }> = {};
  for (const part of String(header ?? '').split(',')) {
    const [name, ...params] = part.trim().split(';');
    const entry: { dur?: number; desc?: string } = {};
    for (const p of params) {
      const [k, v] = p.split('=');
      if (k === 'dur') entry.dur = Number(v);
      if (k === 'desc') entry.desc = v;
    }
    out[name!] = entry;
  }
  return out;
}

describe('tracing with the OTLP exporter', () => {
  it('a queued request has a SERVER span, a sluice.queue child as long as its wait, and a CLIENT span per backend call', async () => {
    const { receiver, gw } = await setup({ slots: 1 });
    const holder = get(`${gw.url}/api/items/1?ms=400`, { headers: { 'x-request-id': 'holder' } });
    await new Promise((r) => setTimeout(r, 50));
    const queued = await get(`${gw.url}/api/items/2?ms=20`, { headers: { 'x-request-id': 'queued' } });
    await holder;
    expect(queued.status).toBe(200);
    const waited = timing(queued.headers['server-timing']).queue!.dur!;
    expect(waited).toBeGreaterThan(200);

    const spans = await receiver.waitFor((s) => ['holder', 'queued'].every((id) => serverSpanOf(s, id)));
    const server = serverSpanOf(spans, 'queued')!;
    expect(server.name).toBe('GET items');
    expect(server.resource['service.name']).toBe('sluice-test');
    expect(server.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.path': '/api/items/2',
      'http.route': 'items',
      'http.response.status_code': 200,
      'sluice.priority': 'high',
      'sluice.queue.position': 1,
      'sluice.request.id': 'queued',
    });
    expect(server.parentSpanId).toBe('');

    const children = childrenOf(spans, server);
    const queue = children.find((s) => s.name === 'sluice.queue')!;
    expect(queue).toBeDefined();
    expect(queue.attributes['sluice.queue.position']).toBe(1);
    expect(queue.attributes['sluice.priority']).toBe('high');
    expect(Math.abs((queue.attributes['sluice.queue.wait_ms'] as number) - waited)).toBeLessThan(1);
    // The span is the measured wait (Server-Timing rounds to 0.1 ms), and that wait is what
    // the slot holder had left to run: 400 ms, less the 50 ms head start.
    expect(Math.abs(durationMs(queue) - waited)).toBeLessThan(0.1);
    expect(durationMs(queue)).toBeGreaterThan(250);
    expect(durationMs(queue)).toBeLessThan(1000);

    const client = children.find((s) => s.kind === SPAN_KIND.CLIENT)!;
    expect(client.attributes['http.response.status_code']).toBe(200);
    expect(String(client.attributes['url.full'])).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/api\/items\/2\?ms=20$/);
    expect(client.startNs).toBeGreaterThanOrEqual(queue.endNs);
    expect(client.endNs).toBeLessThanOrEqual(server.endNs);
    expect(server.startNs).toBeLessThanOrEqual(queue.startNs);

    const holderSpan = serverSpanOf(spans, 'holder')!;
    expect(holderSpan.attributes['sluice.queue.position']).toBe(0);
    expect(durationMs(childrenOf(spans, holderSpan).find((s) => s.name === 'sluice.queue')!)).toBeLessThan(20);
  });

  it('continues the client trace and propagates traceparent/tracestate to the backend as the CLIENT span', async () => {
    const { receiver, be, gw } = await setup({ slots: 2 });
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const res = await get(`${gw.url}/api/items/7`, {
      headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01`, tracestate: 'vendor=abc', 'x-request-id': 'traced' },
    });
    expect(res.status).toBe(200);
    const seen = String(res.headers['x-backend-traceparent']);
    expect(seen).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    expect(be.stats().last_traceparent).toBe(seen);

    const spans = await receiver.waitFor((s) => s.some((x) => x.kind === SPAN_KIND.CLIENT && x.traceId === traceId));
    const server = serverSpanOf(spans, 'traced')!;
    expect(server.traceId).toBe(traceId);
    expect(server.parentSpanId).toBe('00f067aa0ba902b7');
    expect(server.traceState).toBe('vendor=abc');
    const client = spans.find((s) => s.kind === SPAN_KIND.CLIENT && s.traceId === traceId)!;
    expect(client.parentSpanId).toBe(server.spanId);
    // The backend's own spans would be children of our CLIENT span.
    expect(seen.split('-')[2]).toBe(client.spanId);
  });

  it('marks Sluice 503s: error.type is the shed reason on the SERVER span and the queue span', async () => {
    const { receiver, gw } = await setup({ slots: 1, queue: 'queue: { max_waiting: 0 }\n' });
    const holder = get(`${gw.url}/api/items/1?ms=300`, { headers: { 'x-request-id': 'holds' } });
    await new Promise((r) => setTimeout(r, 50));
    const refused = await get(`${gw.url}/api/items/2`, { headers: { 'x-request-id': 'refused' } });
    await holder;
    expect(refused.status).toBe(503);
    const spans = await receiver.waitFor((s) => Boolean(serverSpanOf(s, 'refused')));
    const server = serverSpanOf(spans, 'refused')!;
    expect(server.attributes['http.response.status_code']).toBe(503);
    expect(server.attributes['error.type']).toBe('queue_full');
    expect(server.status.code).toBe(2);
    const queue = childrenOf(spans, server).find((s) => s.name === 'sluice.queue')!;
    expect(queue.attributes['error.type']).toBe('queue_full');
    expect(childrenOf(spans, server).some((s) => s.kind === SPAN_KIND.CLIENT)).toBe(false);
  });

  it('records a sluice.read_body span for a request body', async () => {
    const { receiver, gw } = await setup({ slots: 2 });
    const res = await get(`${gw.url}/api/echo`, { method: 'POST', body: 'x'.repeat(5000), headers: { 'x-request-id': 'upload' } });
    expect(res.status).toBe(200);
    expect(timing(res.headers['server-timing']).body).toBeDefined();
    const spans = await receiver.waitFor((s) => Boolean(serverSpanOf(s, 'upload')));
    const readBody = childrenOf(spans, serverSpanOf(spans, 'upload')!).find((s) => s.name === 'sluice.read_body')!;
    expect(readBody.attributes['sluice.body.bytes']).toBe(5000);
  });

  it('shows a coalesced follower as sluice.coalesce.role=follower with a sluice.coalesce child span', async () => {
    const { receiver, be, gw } = await setup({ slots: 2 });
    const ids = ['c0', 'c1', 'c2', 'c3'];
    const results = await Promise.all(ids.map((id) => get(`${gw.url}/api/live/same?ms=300`, { headers: { 'x-request-id': id } })));
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(be.stats().by_path['/api/live/same']).toBe(1);
    const spans = await receiver.waitFor((s) => ids.every((id) => serverSpanOf(s, id)));
    const roles = ids.map((id) => serverSpanOf(spans, id)!.attributes['sluice.coalesce.role']).sort();
    expect(roles).toEqual(['follower', 'follower', 'follower', 'leader']);
    for (const id of ids) {
      const server = serverSpanOf(spans, id)!;
      const coalesce = childrenOf(spans, server).find((s) => s.name === 'sluice.coalesce');
      if (server.attributes['sluice.coalesce.role'] === 'follower') {
        expect(coalesce!.attributes['sluice.coalesce.role']).toBe('follower');
        expect(durationMs(coalesce!)).toBeGreaterThan(150);
        expect(timing(results[ids.indexOf(id)]!.headers['server-timing']).coalesce!.desc).toBe('follower');
      } else {
        expect(coalesce).toBeUndefined();
      }
    }
  });

  it('exports OTLP/JSON when protocol is http/json', async () => {
    const receiver = await startOtlpReceiver();
    cleanups.push(() => receiver.close());
    const { gw } = await setup({ slots: 1, tracing: `tracing: { exporter: otlp, endpoint: ${receiver.url}, protocol: http/json }\n` });
    await get(`${gw.url}/api/items/3`, { headers: { 'x-request-id': 'json' } });
    const spans = await receiver.waitFor((s) => Boolean(serverSpanOf(s, 'json')));
    expect(receiver.requests.every((r) => r.contentType.startsWith('application/json'))).toBe(true);
    expect(serverSpanOf(spans, 'json')!.attributes['http.route']).toBe('items');
  });

  it('sample_ratio 0 exports nothing but still gives the backend a traceparent (not sampled)', async () => {
    const receiver = await startOtlpReceiver();
    cleanups.push(() => receiver.close());
    const { gw } = await setup({ slots: 1, tracing: `tracing: { exporter: otlp, endpoint: ${receiver.url}, sample_ratio: 0 }\n` });
    const res = await get(`${gw.url}/api/items/4`);
    expect(String(res.headers['x-backend-traceparent'])).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    await gw.close();
    expect(receiver.spans).toHaveLength(0);
  });

  it('exporter none installs no tracing: the client traceparent reaches the backend unchanged', async () => {
    const be = await backend({ slots: 1, latencyMs: 5 });
    cleanups.push(() => be.close());
    const gw = await sluice(backendYaml(be, 1) + 'tracing: { exporter: none }\n');
    cleanups.push(() => gw.close());
    const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const res = await get(`${gw.url}/api/items/1`, { headers: { traceparent: tp } });
    expect(res.headers['x-backend-traceparent']).toBe(tp);
    expect(gw.app.telemetry.observers.some((o) => o.constructor.name === 'TracingObserver')).toBe(false);
  });

  it('traces a real job: submission in the request trace, the attempt in its own trace, linked, with the backend call inside', async () => {
    const receiver = await startOtlpReceiver();
    cleanups.push(() => receiver.close());
    const be = await backend({ slots: 2, latencyMs: 5, reportLatencyMs: 50 });
    cleanups.push(() => be.close());
    const gw = await sluice(backendYaml(be, 2) + `tracing: { exporter: otlp, endpoint: ${receiver.url} }
jobs: { store: memory }
routes:
  - name: reports
    match: { path: /api/reports, methods: [POST] }
    job: { attempts: 1 }
`);
    cleanups.push(() => gw.close());
    const accepted = await get(`${gw.url}/api/reports`, { method: 'POST', body: '{"n":1}', headers: { 'x-request-id': 'job-submit' } });
    expect(accepted.status).toBe(202);
    const spans = await receiver.waitFor((s) => s.some((x) => x.name === 'sluice.job.attempt') && Boolean(serverSpanOf(s, 'job-submit')));
    const server = serverSpanOf(spans, 'job-submit')!;
    const jobId = server.attributes['sluice.job.id'];
    expect(jobId).toEqual(expect.any(String));
    expect(server.attributes['http.response.status_code']).toBe(202);
    const submit = spans.find((s) => s.name === 'sluice.job.submit')!;
    expect(submit.parentSpanId).toBe(server.spanId);
    expect(submit.attributes['sluice.job.id']).toBe(jobId);
    const attempt = spans.find((s) => s.name === 'sluice.job.attempt')!;
    expect(attempt.traceId).not.toBe(server.traceId);
    expect(attempt.links).toEqual([{ traceId: submit.traceId, spanId: submit.spanId }]);
    expect(attempt.attributes).toMatchObject({ 'sluice.job.id': jobId, 'sluice.job.attempt': 1, 'sluice.job.outcome': 'succeeded' });
    const call = spans.find((s) => s.kind === SPAN_KIND.CLIENT && s.parentSpanId === attempt.spanId)!;
    expect(call.attributes['http.response.status_code']).toBe(201);
    expect(be.stats().last_traceparent).toBe(`00-${call.traceId}-${call.spanId}-01`);
  });

  it('writes the trace id of the SERVER span into the access line, for cache hits and proxied requests alike', async () => {
    const receiver = await startOtlpReceiver();
    cleanups.push(() => receiver.close());
    const be = await backend({ slots: 1, latencyMs: 5 });
    cleanups.push(() => be.close());
    const file = join(mkdtempSync(join(tmpdir(), 'sluice-trace-log-')), 'access.log');
    const text = `listen: { host: 127.0.0.1, port: 0 }\nadmin: { host: 127.0.0.1, port: 0 }\n${backendYaml(be, 1)}` +
      `tracing: { exporter: otlp, endpoint: ${receiver.url} }\nlogging: { destination: ${file} }\n${ROUTES}`;
    const app = createApp(compileConfig(parseConfigText(text, 'test.yaml', {})));
    const { port } = await app.listen();
    const ids = ['log-miss', 'log-hit'];
    for (const id of ids) expect((await get(`http://127.0.0.1:${port}/api/items/5`, { headers: { 'x-request-id': id } })).status).toBe(200);
    await app.shutdown(1000);
    const lines = new Map(readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).map((l) => [l.request_id, l]));
    const spans = await receiver.waitFor((s) => ids.every((id) => serverSpanOf(s, id)));
    expect(lines.get('log-hit').cache).toBe('hit');
    for (const id of ids) {
      expect(lines.get(id).trace_id).toBe(serverSpanOf(spans, id)!.traceId);
      expect(lines.get(id).trace_id).toMatch(/^[0-9a-f]{32}$/);
    }
    expect(serverSpanOf(spans, 'log-hit')!.attributes['sluice.cache.status']).toBe('hit');
  });

  it('links each job attempt span to its submission span', async () => {
    const receiver = await startOtlpReceiver();
    cleanups.push(() => receiver.close());
    const be = await backend({ slots: 1, latencyMs: 5 });
    cleanups.push(() => be.close());
    const text = `listen: { host: 127.0.0.1, port: 0 }\nadmin: { host: 127.0.0.1, port: 0 }\nlogging: { level: silent }\n${backendYaml(be, 1)}` +
      `tracing: { exporter: otlp, endpoint: ${receiver.url} }\n`;
    let submission: string | undefined;
    const submitter: RequestObserver = { onStart: (ctx) => { submission = app.telemetry.jobs.submitted(ctx, 'job-1'); } };
    const app = createApp(compileConfig(parseConfigText(text, 'test.yaml', {})), [submitter]);
    const { port } = await app.listen();
    cleanups.push(async () => { await app.shutdown(1000); });
    await get(`http://127.0.0.1:${port}/api/items/9`, { headers: { 'x-request-id': 'submit' } });
    expect(submission).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);

    for (const attempt of [1, 2]) {
      const trace = app.telemetry.jobs.attemptStarted({ id: 'job-1', route: 'default', method: 'GET', attempt, submission });
      const headers: Record<string, string> = {};
      trace.beforeUpstream(be.url, '/api/echo', headers);
      const res = await get(`${be.url}/api/echo`, { headers });
      trace.afterUpstream({ status: res.status });
      trace.end(attempt === 1 ? 'retrying' : 'succeeded', attempt === 1 ? 'upstream_unavailable' : undefined);
      expect(res.headers['x-backend-traceparent']).toBe(headers['traceparent']);
    }
    const spans = await receiver.waitFor((s) => s.filter((x) => x.name === 'sluice.job.attempt').length === 2);
    const server = serverSpanOf(spans, 'submit')!;
    const submit = spans.find((s) => s.name === 'sluice.job.submit')!;
    expect(submit.kind).toBe(SPAN_KIND.PRODUCER);
    expect(submit.parentSpanId).toBe(server.spanId);
    expect(submission!.split('-')[2]).toBe(submit.spanId);
    const attempts = spans.filter((s) => s.name === 'sluice.job.attempt').sort((a, b) => Number(a.startNs - b.startNs));
    for (const [i, attempt] of attempts.entries()) {
      expect(attempt.kind).toBe(SPAN_KIND.CONSUMER);
      expect(attempt.parentSpanId).toBe('');
      expect(attempt.links).toEqual([{ traceId: submit.traceId, spanId: submit.spanId }]);
      expect(attempt.attributes).toMatchObject({ 'sluice.job.id': 'job-1', 'sluice.job.attempt': i + 1 });
      const call = spans.find((s) => s.kind === SPAN_KIND.CLIENT && s.parentSpanId === attempt.spanId)!;
      expect(call.traceId).toBe(attempt.traceId);
    }
    expect(attempts[0]!.attributes['sluice.job.outcome']).toBe('retrying');
    expect(attempts[0]!.status.code).toBe(2);
    expect(attempts[1]!.attributes['sluice.job.outcome']).toBe('succeeded');
  });
});
