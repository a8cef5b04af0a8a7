// The closed-loop generator: wrk's output parsed (a captured real run, and a live run
// against a node:http server on port 0 when wrk is installed), and the Node fallback
// measured the same way when it is not, so this file checks something on every machine.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { measureClosedLoop, pickGenerator } from '../../bench/loadgen/closed-measure.js';
import { parseWrkDone, parseWrkText, parseWrkTime } from '../../bench/loadgen/wrk-parse.js';
import { runWrk } from '../../bench/loadgen/wrk.js';

const FIXTURE = new URL('./fixtures/wrk-latency-output.txt', import.meta.url);

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
  server = undefined;
});

/** Answers 500 to every 10th request, and remembers every URL it was asked for. */
async function countingServer(): Promise<{ origin: string; seen: Set<string>; total: () => number }> {
  const seen = new Set<string>();
  let n = 0;
  server = createServer((req, res) => {
    n++;
    seen.add(req.url ?? '');
    res.writeHead(n % 10 === 0 ? 500 : 200, { 'content-type': 'text/plain', 'content-length': '2' });
    res.end('ok');
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, total: () => n };
}

describe('wrk output', () => {
  it('reads durations in every unit wrk prints', () => {
    expect(parseWrkTime('206.00us')).toBeCloseTo(0.206, 9);
    expect(parseWrkTime('1.16ms')).toBe(1.16);
    expect(parseWrkTime('2.00s')).toBe(2000);
    expect(parseWrkTime('1.50m')).toBe(90_000);
  });

  it('parses a captured real run: the --latency text and the done() JSON agree', () => {
    const out = readFileSync(FIXTURE, 'utf8');
    const text = parseWrkText(out);
    expect(text).toMatchObject({ requests: 39325, requestsPerSec: 35771.43, errorStatus: 3932 });
    expect(text.durationS).toBeCloseTo(1.1, 9);
    expect(text.latencyMs).toEqual({ '50': 0.222, '75': 0.321, '90': 1.33, '99': 6.46 });
    expect(text.socketErrors).toEqual({ connect: 0, read: 0, write: 0, timeout: 0 });
    const done = parseWrkDone(out)!;
    expect(done.requests).toBe(text.requests);
    expect(done.errors.status).toBe(text.errorStatus);
    expect(done.latency_us.p50 / 1000).toBeCloseTo(text.latencyMs['50']!, 2);
    expect(done.latency_us.p99 / 1000).toBeCloseTo(text.latencyMs['99']!, 1);
  });

  it('has no done() line to offer when the script did not run', () => {
    expect(parseWrkDone('unable to connect to 127.0.0.1:1 Connection refused\n')).toBeNull();
    expect(() => parseWrkText('unable to connect\n')).toThrow(/no summary/);
  });
});

describe('closed-loop measurement on this machine', () => {
  const generator = pickGenerator();
  // The Node generator is the fallback everywhere, so it is measured too.
  const generators = [...new Set([generator, 'node' as const])];

  it.each(generators)('measures a real server with %s: unique URLs, non-2xx counted as errors, window hooks called', async (generator) => {
    const srv = await countingServer();
    const events: string[] = [];
    const r = await measureClosedLoop(generator, {
      name: 'unique', origin: srv.origin, path: '/health?c=', unique: true,
      connections: 8, threads: 2, durationS: 1, warmupS: 0.3,
      onMeasureStart: () => events.push('start'), onMeasureEnd: () => events.push('end'),
    });
    expect(events).toEqual(['start', 'end']);
    expect(r.extra?.generator).toBe(generator);
    const errors = r.counts.http_other + r.counts.http5xx;
    const answered = r.counts.ok + errors;
    expect(answered).toBeGreaterThan(100);
    // One in ten answers is a 500, and each is an error, not a success.
    expect(errors / answered).toBeGreaterThan(0.08);
    expect(errors / answered).toBeLessThan(0.12);
    expect(r.goodput).toBeGreaterThan(0);
    expect(r.latency.p50).toBeGreaterThan(0);
    expect(r.latency.p50).toBeLessThanOrEqual(r.latency.p99);
    expect(r.latency.p99).toBeLessThanOrEqual(r.latency.max);
    // Every request the server saw (warm-up included) had a URL of its own.
    expect(srv.seen.size).toBe(srv.total());
    expect(srv.total()).toBeGreaterThanOrEqual(answered);
  });

  it.runIf(generator === 'wrk')('parses a live wrk run: text and JSON describe the same requests', async () => {
    const srv = await countingServer();
    const run = await runWrk({ name: 'live', origin: srv.origin, path: '/', threads: 2, connections: 8, durationS: 1 });
    expect(run.done.requests).toBe(run.text.requests);
    expect(run.done.errors.status).toBe(run.text.errorStatus);
    expect(run.text.errorStatus / run.text.requests).toBeCloseTo(0.1, 2);
    expect(run.text.requestsPerSec).toBeGreaterThan(100);
    expect(Object.keys(run.text.latencyMs)).toEqual(['50', '75', '90', '99']);
    expect(run.done.latency_us.p50 / 1000).toBeCloseTo(run.text.latencyMs['50']!, 1);
  });
});
