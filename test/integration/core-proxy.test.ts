// HTTP correctness of the proxy: headers, methods, bodies, framing, and every error Sluice
// itself answers with.
import { afterEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backend, backendYaml, get, sluice, type RunningSluice } from '../helpers/harness.js';
import type { TestBackend } from '../../src/testing/backend.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

async function setup(yaml = '', slots = 4): Promise<{ be: TestBackend; gw: RunningSluice }> {
  const be = await backend({ slots, latencyMs: 10 });
  cleanups.push(() => be.close());
  const gw = await sluice(backendYaml(be, slots) + yaml);
  cleanups.push(() => gw.close());
  return { be, gw };
}

/** Sends raw bytes and returns the raw response text once the server closes or `until` matches. */
function raw(base: string, payload: string, until: RegExp = /\r\n\r\n[\s\S]*$/): Promise<string> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = connect(Number(port), hostname, () => socket.write(payload));
    const timer = setTimeout(() => { socket.destroy(); resolve(text); }, 3000);
    socket.on('data', (d) => { text += d.toString('latin1'); if (until.test(text)) { clearTimeout(timer); socket.destroy(); resolve(text); } });
    socket.on('end', () => { clearTimeout(timer); resolve(text); });
    socket.on('error', reject);
  });
}

describe('proxying', () => {
  it('forwards method, path, query, headers and body; strips hop-by-hop; adds X-Forwarded-* and Via', async () => {
    const { gw } = await setup();
    const text = await raw(gw.url, 'POST /api/echo?a=1&b=two HTTP/1.1\r\nHost: 127.0.0.1:1234\r\nContent-Type: text/plain\r\n' +
      'X-Custom: kept\r\nConnection: close, x-drop-me\r\nX-Drop-Me: secret\r\nKeep-Alive: timeout=5\r\nX-Forwarded-For: 10.9.9.9\r\nContent-Length: 10\r\n\r\nhello body', /\}\s*$/);
    expect(text).toMatch(/^HTTP\/1\.1 200/);
    expect(text).toMatch(/\r\nvia: 1\.1 sluice\r\n/i);
    const echo = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4));
    expect(echo.method).toBe('POST');
    expect(echo.path).toBe('/api/echo');
    expect(echo.query).toMatchObject({ a: '1', b: 'two' });
    expect(echo.body_sha256).toBe(createHash('sha256').update('hello body').digest('hex'));
    expect(echo.headers['x-custom']).toBe('kept');
    expect(echo.headers['x-drop-me']).toBeUndefined();
    expect(echo.headers['keep-alive']).toBeUndefined();
    // The client is not a trusted proxy: its own X-Forwarded-For is replaced, not appended to.
    expect(echo.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(echo.headers['x-forwarded-proto']).toBe('http');
    expect(echo.headers['x-forwarded-host']).toBe('127.0.0.1:1234');
    expect(echo.headers['via']).toBe('1.1 sluice');
    expect(text).toMatch(/\r\nx-request-id: [0-9a-f-]{36}\r\n/i);
  });

  it('keeps a client-supplied X-Request-Id', async () => {
    const { gw } = await setup();
    const res = await get(`${gw.url}/api/live/1`, { headers: { 'x-request-id': 'abc-123' } });
    expect(res.headers['x-request-id']).toBe('abc-123');
  });

  it('answers HEAD with the headers of a GET and no body', async () => {
    const { gw } = await setup();
    const res = await get(`${gw.url}/api/items/7`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.body.length).toBe(0);
    expect(Number(res.headers['content-length'])).toBeGreaterThan(0);
  });

  it('passes 204 and 304 through without a body', async () => {
    const { gw } = await setup();
    const noContent = await get(`${gw.url}/api/live/1?status=204`);
    expect(noContent.status).toBe(204);
    expect(noContent.body.length).toBe(0);
    const first = await get(`${gw.url}/api/items/9`);
    const notModified = await get(`${gw.url}/api/items/9`, { headers: { 'if-none-match': String(first.headers['etag']), 'cache-control': 'no-cache' } });
    expect(notModified.status).toBe(304);
    expect(notModified.body.length).toBe(0);
  });

  it('accepts a chunked request body and forwards it whole', async () => {
    const { gw } = await setup();
    const text = await raw(gw.url, 'POST /api/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n');
    expect(text).toMatch(/^HTTP\/1\.1 200/);
    expect(text).toContain(`"sha256":"${createHash('sha256').update('hello world').digest('hex')}"`);
    expect(text).toContain('"bytes":11');
  });

  it('carries large bodies both ways through temp files (over the memory buffer)', async () => {
    const spill = mkdtempSync(join(tmpdir(), 'sluice-spill-'));
    const { gw } = await setup(`limits: { memory_buffer: 64KiB, temp_dir: "${spill}" }\n`);
    const big = Buffer.alloc(3 * 1024 * 1024, 7);
    const up = await get(`${gw.url}/api/upload`, { method: 'POST', body: big });
    expect(JSON.parse(up.text)).toEqual({ bytes: big.length, sha256: createHash('sha256').update(big).digest('hex') });
    const down = await get(`${gw.url}/api/live/big?bytes=5000000`);
    expect(down.status).toBe(200);
    expect(down.body.length).toBe(5_000_000);
    expect(down.headers['content-length']).toBe('5000000');
    const post = await get(`${gw.url}/api/echo?bytes=4000000`, { method: 'POST', body: big });
    expect(post.body.length).toBe(4_000_000);
    // Spilled bodies, both ways, are deleted once their response is written.
    await new Promise((r) => setTimeout(r, 100));
    expect(readdirSync(spill)).toEqual([]);
  });

  it('answers Expect: 100-continue only after admission, and 413 before the body is sent when it is too large', async () => {
    const { be, gw } = await setup('routes:\n  - { name: small, match: { path: /api/upload }, max_body: 1KiB }\n');
    const continued = await raw(gw.url, 'POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n', /100 Continue/);
    expect(continued).toMatch(/^HTTP\/1\.1 100 Continue/);
    const refused = await raw(gw.url, 'POST /api/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n');
    expect(refused).toMatch(/^HTTP\/1\.1 413/);
    expect(refused).not.toContain('100 Continue');
    expect(refused).toContain('body_too_large');
    expect(be.stats().by_path['/api/upload']).toBeUndefined();
  });

  it('refuses an oversized body without a Content-Length with 413', async () => {
    const { be, gw } = await setup('routes:\n  - { name: small, match: { path: /api/upload }, max_body: 1KiB }\n');
    const res = await raw(gw.url, `POST /api/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n${'a'.repeat(2048)}\r\n0\r\n\r\n`);
    expect(res).toMatch(/^HTTP\/1\.1 413/);
    expect(be.stats().by_path['/api/upload']).toBeUndefined();
  });

  it('answers malformed requests 400 and oversized heads 431', async () => {
    const { be, gw } = await setup('limits: { max_header_bytes: 4KiB }\n');
    const bad = await raw(gw.url, 'THIS IS NOT HTTP\r\n\r\n');
    expect(bad).toMatch(/^HTTP\/1\.1 400/);
    expect(bad).toContain('bad_request');
    const huge = await raw(gw.url, `GET /api/live/1 HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(8000)}\r\n\r\n`);
    expect(huge).toMatch(/^HTTP\/1\.1 431/);
    expect(be.stats().total).toBe(0);
  });

  it('keeps client connections alive across requests', async () => {
    const { gw } = await setup();
    const text = await raw(gw.url, 'GET /api/live/a HTTP/1.1\r\nHost: x\r\n\r\nGET /api/live/b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', /"id":"b"/);
    expect(text.match(/HTTP\/1\.1 200/g)).toHaveLength(2);
  });
});

describe('backend failures', () => {
  it('maps a refused connection to 502 with a Sluice error code', async () => {
    const gw = await sluice('backend:\n  servers:\n    - { url: "http://127.0.0.1:1", slots: 2 }\n');
    cleanups.push(() => gw.close());
    const res = await get(`${gw.url}/api/live/1`);
    expect(res.status).toBe(502);
    expect(JSON.parse(res.text).error.code).toBe('upstream_connect_failed');
    expect(res.headers['retry-after']).toBeUndefined();
  });

  it('maps a slow backend to 504 (response timeout), and a backend 503 passes through untouched', async () => {
    const { gw } = await setup('routes:\n  - { name: slow, match: { path: /api/* }, timeouts: { response: 200ms } }\n');
    const slow = await get(`${gw.url}/api/live/1?ms=1000`);
    expect(slow.status).toBe(504);
    expect(JSON.parse(slow.text).error.code).toBe('response_timeout');
    const backend503 = await get(`${gw.url}/api/live/2?status=503`);
    expect(backend503.status).toBe(503);
    expect(backend503.headers['x-sluice-error']).toBeUndefined();
  });

  it('maps the route total timeout, counting queue time, to 504', async () => {
    const { gw } = await setup('routes:\n  - { name: tight, match: { path: /api/* }, timeout: 300ms }\n', 1);
    const res = await get(`${gw.url}/api/live/1?ms=2000`);
    expect(res.status).toBe(504);
    expect(JSON.parse(res.text).error.code).toBe('total_timeout');
  });

  it('maps a backend that resets the connection to 502', async () => {
    const { createServer } = await import('node:net');
    const resetter = createServer((s) => s.once('data', () => s.resetAndDestroy()));
    await new Promise<void>((r) => resetter.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise((r) => resetter.close(() => r())));
    const port = (resetter.address() as { port: number }).port;
    const gw = await sluice(`backend:\n  servers:\n    - { url: "http://127.0.0.1:${port}", slots: 2 }\n`);
    cleanups.push(() => gw.close());
    const res = await get(`${gw.url}/api/live/1`, { method: 'POST', body: 'x' });
    expect(res.status).toBe(502);
    expect(JSON.parse(res.text).error.code).toBe('upstream_reset');
  });
});


describe('response limits', () => {
  it('refuses a backend answer over limits.max_response with 502 and keeps serving', async () => {
    const be = await backend({ slots: 2, latencyMs: 1 });
    cleanups.push(() => be.close());
    const gw = await sluice(backendYaml(be, 2) + 'limits: { max_response: 1KiB }\n');
    cleanups.push(() => gw.close());
    const big = await get(`${gw.url}/api/live/big?bytes=50000`);
    expect(big.status).toBe(502);
    expect(JSON.parse(big.text).error.code).toBe('upstream_response_too_large');
    await new Promise((r) => setTimeout(r, 100));
    expect((await get(`${gw.url}/api/live/small`)).status).toBe(200);
  });
});
