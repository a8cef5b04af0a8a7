// Nothing a client says about who it is is believed unless it is a trusted proxy. Raw bytes,
// and what the backend received, against the test backend and against Gunicorn + Flask.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestBackend } from '../../src/testing/backend.js';
import { backend, backendYaml, sluice, type RunningSluice } from '../helpers/harness.js';
import { startGunicorn, type RunningGunicorn } from '../helpers/gunicorn.js';
import { exchange, request } from '../helpers/raw-http.js';

const SPOOFED = {
  'X-Forwarded-For': '6.6.6.6',
  'X_Forwarded_For': '6.6.6.7',
  'X-Forwarded-Host': 'evil.example',
  'X_Forwarded_Host': 'evil.example',
  'X-Forwarded-Proto': 'https',
  'X_Forwarded_Proto': 'https',
  'X-Forwarded-Port': '443',
  'X-Forwarded-Prefix': '/admin',
  'X-Forwarded-Ssl': 'on',
  'Forwarded': 'for=6.6.6.6;host=evil.example;proto=https',
  'X-Real-IP': '6.6.6.6',
  'X-Original-URL': '/admin',
  'X-Rewrite-URL': '/admin',
  'X-HTTP-Method-Override': 'DELETE',
  'X-Method-Override': 'DELETE',
  'True-Client-IP': '6.6.6.6',
  'Other_Header': 'underscore',
  'X-Kept': 'yes',
};

async function echoThrough(url: string, headers: Record<string, string>): Promise<Record<string, string>> {
  const { responses } = await exchange(url, request('GET', '/api/echo', headers));
  expect(responses[0]?.status).toBe(200);
  return JSON.parse(responses[0]!.body).headers as Record<string, string>;
}

describe('from an untrusted peer', () => {
  let be: TestBackend;
  let gw: RunningSluice;
  beforeAll(async () => {
    be = await backend({ slots: 2, latencyMs: 1 });
    gw = await sluice(backendYaml(be, 2));
  });
  afterAll(async () => {
    await gw?.close();
    await be?.close();
  });

  it('removes forwarding, original-URL and method-override headers and every name with _; sets its own', async () => {
    const seen = await echoThrough(gw.url, SPOOFED);
    expect(seen['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen['x-forwarded-host']).toBe('sluice.test');
    expect(seen['x-forwarded-proto']).toBe('http');
    for (const name of ['x_forwarded_for', 'x_forwarded_host', 'x_forwarded_proto', 'x-forwarded-port', 'x-forwarded-prefix', 'x-forwarded-ssl',
      'forwarded', 'x-real-ip', 'x-original-url', 'x-rewrite-url', 'x-http-method-override', 'x-method-override', 'true-client-ip', 'other_header']) {
      expect(seen[name], name).toBeUndefined();
    }
    expect(seen['x-kept']).toBe('yes');
  });
});

describe('options', () => {
  let be: TestBackend;
  let gw: RunningSluice;
  beforeAll(async () => {
    be = await backend({ slots: 2, latencyMs: 1 });
    gw = await sluice(`${backendYaml(be, 2)}
listen: { host: 127.0.0.1, port: 0, trusted_proxies: [127.0.0.0/8, "::1"] }
http: { allow_underscore_headers: true, forwarded_header: true }
`);
  });
  afterAll(async () => {
    await gw?.close();
    await be?.close();
  });

  it('a trusted proxy keeps its forwarding headers, appended to; underscores pass when allowed; Forwarded is added', async () => {
    const seen = await echoThrough(gw.url, { 'X-Forwarded-For': '203.0.113.9', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'shop.example', 'Forwarded': 'for=203.0.113.9', 'X-Real-IP': '203.0.113.9', 'Other_Header': 'u' });
    expect(seen['x-forwarded-for']).toBe('203.0.113.9, 127.0.0.1');
    expect(seen['x-forwarded-proto']).toBe('https');
    expect(seen['x-forwarded-host']).toBe('shop.example');
    expect(seen['x-real-ip']).toBe('203.0.113.9');
    expect(seen['forwarded']).toBe('for=203.0.113.9, for=127.0.0.1;proto=https;host=sluice.test');
    expect(seen['other_header']).toBe('u');
  });
});

describe('Flask behind ProxyFix-style trust, under Gunicorn', () => {
  let gunicorn: RunningGunicorn;
  let gw: RunningSluice;
  beforeAll(async () => {
    gunicorn = await startGunicorn([], { LATENCY_MS: '10' });
    gw = await sluice(`backend:\n  servers:\n    - url: ${gunicorn.url}\n      slots: 2\n`);
  }, 120_000);
  afterAll(async () => {
    await gw?.close();
    await gunicorn?.close();
  });

  it('underscore forms cannot be joined into X-Forwarded-* by Gunicorn', async () => {
    const seen = await echoThrough(gw.url, SPOOFED);
    expect(seen['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen['x-forwarded-host']).toBe('sluice.test');
    expect(seen['x-forwarded-proto']).toBe('http');
    expect(seen['forwarded']).toBeUndefined();
    expect(seen['x-real-ip']).toBeUndefined();
    expect(seen['x-http-method-override']).toBeUndefined();
    expect(seen['other-header']).toBeUndefined();
  });
});
