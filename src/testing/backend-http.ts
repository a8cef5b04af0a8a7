// Small HTTP helpers for the test backend: body draining, sleeping, response writing,
// query overrides and conditional requests. Kept free of backend state so the route
// handlers and the slot model stay readable.
import { createHash } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { setTimeout as sleepTimer } from 'node:timers/promises';

export interface BodyDigest {
  bytes: number;
  sha256: string;
  /** false when the client went away before the body ended (we hash what arrived). */
  complete: boolean;
}

/**
 * Reads and hashes the request body without buffering it, so multi-GB uploads cost no
 * memory. Never rejects: an aborted upload resolves with what arrived, because the
 * backend keeps running work for gone clients (that is the behaviour being modelled).
 */
export function drainBody(req: IncomingMessage): Promise<BodyDigest> {
  return new Promise((resolve) => {
    const hash = createHash('sha256');
    let bytes = 0;
    let settled = false;
    const finish = (complete: boolean): void => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      resolve({ bytes, sha256: hash.digest('hex'), complete });
    };
    const onData = (chunk: Buffer): void => {
      bytes += chunk.length;
      hash.update(chunk);
    };
    if (req.readableEnded) return finish(true);
    if (req.destroyed) return finish(false);
    req.on('data', onData);
    req.once('end', () => finish(true));
    req.once('error', () => finish(false));
    req.once('close', () => finish(req.complete && req.readableEnded));
  });
}

/** Sleeps `ms`; rejects with AbortError when the backend is closing. */
export async function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms > 0) await sleepTimer(ms, undefined, { signal });
}

/** Resolves once the response is fully handed to the OS or the connection is gone. */
export function responseDone(res: ServerResponse): Promise<void> {
  if (res.writableFinished || res.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    res.once('finish', () => resolve());
    res.once('close', () => resolve());
  });
}

/** Writes a complete response, or nothing if the client is already gone. */
export function send(
  res: ServerResponse,
  status: number,
  headers: OutgoingHttpHeaders,
  body?: Buffer | string,
): void {
  if (res.destroyed || res.headersSent) return;
  const noBody = status === 204 || status === 304 || (status >= 100 && status < 200);
  const payload = noBody || body === undefined ? undefined : Buffer.from(body);
  if (payload) headers['content-length'] = payload.length;
  res.writeHead(status, headers);
  res.end(payload);
}

export function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: OutgoingHttpHeaders = {},
): void {
  send(res, status, { 'content-type': 'application/json', ...headers }, JSON.stringify(value));
}

export function headerValue(req: IncomingMessage, name: string): string | null {
  const v = req.headers[name];
  if (v === undefined) return null;
  return Array.isArray(v) ? v.join(', ') : v;
}

// Same 64-byte line in examples/flask-gunicorn/app.py, so both backends produce the
// same bytes (and the same sha256) for the same ?bytes=N.
const FILLER_LINE = 'sluice test backend filler 0123456789 abcdefghijklmnopqrstuvwxy\n';
export const MAX_FILLER_BYTES = 256 * 1024 * 1024;

export function filler(n: number): Buffer {
  return Buffer.alloc(n, FILLER_LINE);
}

export function strongEtag(body: Buffer): string {
  return `"${createHash('sha256').update(body).digest('hex').slice(0, 32)}"`;
}

/** Fixed so caches and tests can reason about If-Modified-Since deterministically. */
export const FIXED_LAST_MODIFIED = 'Mon, 01 Jan 2024 00:00:00 GMT';

export interface Overrides {
  ms?: number;
  status?: number;
  bytes?: number;
  cacheControl?: string;
  vary?: string;
  setCookie: boolean;
  etag?: string;
  lastModified: boolean;
  /** Extra response headers, exactly as given (`header=Name: value`, repeatable): Expires, Age, Date, Location... */
  headers: Array<[string, string]>;
  /** Sent before the final response: 100, 102 or 103 (with a Link preload hint). */
  interim: number[];
  /** A 304 also carries Content-Length (the size of the representation), as some servers send. */
  contentLengthOn304: boolean;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const HEADER_TEXT = /^[\t\x20-\x7e]*$/;

function nonNegativeInt(raw: string, name: string, max: number): number {
  if (!/^\d+$/.test(raw)) throw new Error(`${name} must be a non-negative integer`);
  const n = Number(raw);
  if (n > max) throw new Error(`${name} must be at most ${max}`);
  return n;
}

/** Parses the per-request query overrides; throws Error with a user-facing message. */
export function parseOverrides(q: URLSearchParams): Overrides {
  const o: Overrides = {
    setCookie: q.get('set_cookie') === '1', lastModified: q.get('last_modified') === '1',
    headers: [], interim: [], contentLengthOn304: q.get('content_length_on_304') === '1',
  };
  for (const [param, name] of [['expires', 'expires'], ['cdn_cache_control', 'cdn-cache-control'], ['sluice_cache_control', 'sluice-cache-control']] as const) {
    const value = q.get(param);
    if (value === null) continue;
    if (!HEADER_TEXT.test(value)) throw new Error(`${param} has invalid characters`);
    o.headers.push([name, value]);
  }
  for (const header of q.getAll('header')) {
    const colon = header.indexOf(':');
    const name = header.slice(0, colon).trim();
    const value = header.slice(colon + 1).trim();
    if (colon < 1 || !TOKEN.test(name) || !HEADER_TEXT.test(value)) throw new Error('header must be "Name: value"');
    o.headers.push([name.toLowerCase(), value]);
  }
  for (const code of q.getAll('interim')) {
    if (!['100', '102', '103'].includes(code)) throw new Error('interim must be 100, 102 or 103');
    o.interim.push(Number(code));
  }
  const ms = q.get('ms');
  if (ms !== null) o.ms = nonNegativeInt(ms, 'ms', 3_600_000);
  const status = q.get('status');
  if (status !== null) {
    o.status = nonNegativeInt(status, 'status', 599);
    if (o.status < 200) throw new Error('status must be within 200..599');
  }
  const bytes = q.get('bytes');
  if (bytes !== null) o.bytes = nonNegativeInt(bytes, 'bytes', MAX_FILLER_BYTES);
  const cc = q.get('cache_control');
  if (cc !== null) {
    if (!HEADER_TEXT.test(cc)) throw new Error('cache_control has invalid characters');
    o.cacheControl = cc;
  }
  const vary = q.get('vary');
  if (vary !== null) {
    if (!TOKEN.test(vary)) throw new Error('vary must be a header name');
    o.vary = vary;
  }
  const etag = q.get('etag');
  if (etag !== null) {
    if (!HEADER_TEXT.test(etag) || etag === '') throw new Error('etag has invalid characters');
    o.etag = etag.startsWith('"') || etag.startsWith('W/"') ? etag : `"${etag}"`;
  }
  return o;
}

function opaque(tag: string): string {
  return tag.trim().replace(/^W\//, '');
}

/**
 * RFC 9110 13.1.2/13.1.3 for GET/HEAD: If-None-Match (weak comparison) wins; only when
 * it is absent is If-Modified-Since consulted.
 */
export function notModified(
  req: IncomingMessage,
  etag: string | undefined,
  lastModified: string | undefined,
): boolean {
  const inm = headerValue(req, 'if-none-match');
  if (inm !== null) {
    if (etag === undefined) return false;
    if (inm.trim() === '*') return true;
    return inm.split(',').some((t) => opaque(t) === opaque(etag));
  }
  const ims = headerValue(req, 'if-modified-since');
  if (ims === null || lastModified === undefined) return false;
  const since = Date.parse(ims);
  return !Number.isNaN(since) && Date.parse(lastModified) <= since;
}
