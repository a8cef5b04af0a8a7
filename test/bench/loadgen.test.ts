// The load generator's contracts, checked against real local servers on port 0: the
// schedule is open loop, latency counts from the scheduled time, keys follow the
// requested distribution, and every way a request can end is counted as such.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { makeKeySampler, zipfCdf } from '../../bench/loadgen/keys.js';
import { runIdleConnections, runOpenLoop, runSlowUploads, selfCheck } from '../../bench/loadgen/index.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const servers: Server[] = [];

async function serve(handler: Handler): Promise<{ origin: string; port: number; server: Server }> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return { origin: `http://127.0.0.1:${port}`, port, server };
}

afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
});

function ok(res: ServerResponse, body = 'ok'): void {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(body)) });
  res.end(body);
}

describe('open-loop schedule', () => {
  it('keeps sending at the configured rate while the server answers nothing', async () => {
    let arrived = 0;
    const { origin } = await serve(() => {
      arrived++; // never answers: a closed-loop client would stop after its first batch
    });
    const r = await runOpenLoop({
      name: 'stalled', origin, method: 'GET', path: '/x/{key}', keys: { kind: 'unique' },
      rate: 200, durationS: 1, timeoutMs: 300,
    });
    expect(r.sent).toBe(200);
    expect(arrived).toBeGreaterThanOrEqual(180);
    expect(r.counts.timeout).toBe(200);
    expect(r.counts.ok).toBe(0);
    expect(r.extra?.sendWindowS as number).toBeLessThan(2);
  });

  it('measures latency from the scheduled time, so a stall shows in the percentiles', async () => {
    let stalled = false;
    const { origin } = await serve((_req, res) => {
      ok(res);
      setTimeout(() => {
        if (stalled) return;
        stalled = true;
        // Block this process's event loop (server and generator alike) for 300 ms:
        // requests due meanwhile go out late, and must be charged for the wait.
        const until = performance.now() + 300;
        while (performance.now() < until) { /* stall */ }
      }, 400).unref();
    });
    const r = await runOpenLoop({
      name: 'stall', origin, method: 'GET', path: '/x', keys: { kind: 'fixed', key: '1' },
      rate: 200, durationS: 1.5, timeoutMs: 5_000,
    });
    expect(r.counts.ok).toBe(300);
    // ~60 of 300 requests were due during the stall: at least 10% must show >= 100 ms.
    expect(r.latency.p90).toBeGreaterThanOrEqual(50);
    expect(r.latency.p99).toBeGreaterThanOrEqual(200);
    expect(r.latency.max).toBeGreaterThanOrEqual(250);
    expect(r.sendLag.max).toBeGreaterThanOrEqual(250);
  });
});

describe('outcomes', () => {
  it('counts client timeouts at the deadline', async () => {
    const { origin } = await serve(() => undefined);
    const r = await runOpenLoop({
      name: 't', origin, method: 'GET', path: '/', keys: { kind: 'fixed', key: '' },
      rate: 50, durationS: 0.4, timeoutMs: 200,
    });
    expect(r.counts.timeout).toBe(20);
    expect(r.latencyAll.p50).toBeGreaterThanOrEqual(190);
    expect(r.goodput).toBe(0);
  });

  it('tells shed 503s (with Retry-After) from other 5xx and from connection errors', async () => {
    let n = 0;
    const { origin } = await serve((_req, res) => {
      n++;
      if (n % 2 === 0) res.writeHead(503, { 'retry-after': '1' });
      else res.writeHead(503);
      res.end();
    });
    const r = await runOpenLoop({
      name: 'shed', origin, method: 'GET', path: '/', keys: { kind: 'fixed', key: '' },
      rate: 100, durationS: 0.2, timeoutMs: 2_000,
    });
    expect(r.counts.shed + r.counts.http5xx).toBe(20);
    expect(r.counts.shed).toBe(10);

    const closed = await serve(ok);
    const deadOrigin = closed.origin;
    closed.server.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const dead = await runOpenLoop({
      name: 'dead', origin: deadOrigin, method: 'GET', path: '/', keys: { kind: 'fixed', key: '' },
      rate: 50, durationS: 0.2, timeoutMs: 2_000,
    });
    expect(dead.counts.conn_error).toBe(10);
  });
});

describe('key distributions', () => {
  it('Zipf(1.0) over 1,000 ids puts ~13% of requests on the top key and ~39% on the top ten', () => {
    const next = makeKeySampler({ kind: 'zipf', n: 1000, s: 1.0 }, 42);
    const counts = new Map<string, number>();
    const samples = 50_000;
    for (let i = 0; i < samples; i++) {
      const k = next();
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    const freq = (k: number) => (counts.get(String(k)) ?? 0) / samples;
    const harmonic = (n: number) => Array.from({ length: n }, (_, i) => 1 / (i + 1)).reduce((a, b) => a + b, 0);
    expect(freq(1)).toBeCloseTo(1 / harmonic(1000), 1);
    expect(Math.abs(freq(1) - 1 / harmonic(1000))).toBeLessThan(0.01);
    expect(freq(1)).toBeGreaterThan(freq(2));
    expect(freq(2)).toBeGreaterThan(freq(10));
    const top10 = Array.from({ length: 10 }, (_, i) => freq(i + 1)).reduce((a, b) => a + b, 0);
    expect(Math.abs(top10 - harmonic(10) / harmonic(1000))).toBeLessThan(0.02);
    expect(counts.size).toBeGreaterThan(500); // the long tail is sampled too
  });

  it('has a CDF that ends at 1 and a uniform sampler without a hot key', () => {
    const cdf = zipfCdf(1000, 1.0);
    expect(cdf[cdf.length - 1]).toBe(1);
    const next = makeKeySampler({ kind: 'uniform', n: 1000 }, 7);
    const counts = new Map<string, number>();
    for (let i = 0; i < 50_000; i++) {
      const k = next();
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    expect(Math.max(...counts.values()) / 50_000).toBeLessThan(0.005);
  });

  it('never repeats a unique key', () => {
    const next = makeKeySampler({ kind: 'unique' });
    const keys = new Set(Array.from({ length: 10_000 }, next));
    expect(keys.size).toBe(10_000);
  });
});

describe('slow uploads and idle connections', () => {
  it('paces upload bodies and verifies the echoed sha256', async () => {
    const { origin } = await serve((req, res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      req.on('data', (d: Buffer) => { bytes += d.length; hash.update(d); });
      req.on('end', () => ok(res, JSON.stringify({ bytes, sha256: hash.digest('hex') })));
    });
    const r = await runSlowUploads({
      name: 'up', origin, path: '/api/upload', clients: 3, bytes: 8192, bytesPerSec: 16_384, durationS: 0.3,
    });
    expect(r.sent).toBe(3);
    expect(r.counts.ok).toBe(3);
    expect(r.extra?.mismatches).toBe(0);
    // 8 KiB at 16 KiB/s cannot take less than ~0.5 s (minus the first immediate chunk).
    expect(r.latency.p50).toBeGreaterThanOrEqual(400);
  });

  it('holds keep-alive connections and sends on each at the interval', async () => {
    const { port } = await serve((_req, res) => ok(res));
    const r = await runIdleConnections({
      name: 'idle', host: '127.0.0.1', port, path: '/health', connections: 50, intervalS: 0.5, durationS: 1,
    });
    expect(r.sent).toBe(100);
    expect(r.counts.ok).toBe(100);
    expect(r.extra?.connectPhase).toMatchObject({ opened: 50, failed: 0 });
    expect(r.extra?.reconnects).toBe(0);
  });
});

describe('self-check', () => {
  it('runs the generator against an immediate server and judges it by the threshold', async () => {
    const r = await selfCheck({ rate: 100, durationS: 0.5, maxP99Ms: 60_000 });
    expect(r.sent).toBe(50);
    expect(r.ok).toBe(50);
    expect(r.passed).toBe(true);
    expect(r.reasons).toEqual([]);
  });

  it('refuses when the generator cannot meet the threshold', async () => {
    // No machine answers in zero milliseconds: both attempts fail and say why.
    const r = await selfCheck({ rate: 100, durationS: 0.3, maxP99Ms: 0 });
    expect(r.passed).toBe(false);
    expect(r.attempts).toBe(2);
    expect(r.reasons.join(' ')).toMatch(/p99 latency .* > 0 ms/);
  });
});
