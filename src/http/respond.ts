// Writes the final answer of a request: a proxied/cached/coalesced response, or a Sluice
// error. Every response carries X-Request-Id and a Server-Timing breakdown whose parts add
// up to the total; Sluice's own errors also carry their code so they are never mistaken for
// the backend's.
import type { OutgoingHttpHeaders } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { errorBody, type SluiceError } from '../errors.js';
import type { RequestContext } from '../pipeline/context.js';
import { BufferedBody } from './body-buffer.js';
import { clientResponseHeaders } from './headers.js';

const BODYLESS_STATUSES = new Set([204, 304]);
const BODY_ABANDONED = new Set(['body_too_large', 'client_body_timeout', 'buffer_full']);

/**
 * Server-Timing: where the request's time went, up to the moment the response head is
 * written. Parts are rounded to 0.1 ms first and `gateway` (Sluice's own work: routing,
 * cache lookup, writing) is what remains, so the durations add up to `total` exactly.
 * `body` appears when a request body was read; `coalesce`, `cache` and `error` when they apply;
 * `job` is the time a request that became a job was held waiting for its result.
 */
export function serverTimingHeader(ctx: RequestContext, now = performance.now()): string {
  const total = tenths(now - ctx.startedAt);
  const queue = tenths(ctx.timings.queueMs);
  // A part that is not shown is not subtracted either: its time stays in `gateway`.
  const showBody = ctx.body !== undefined && ctx.body.size > 0;
  const body = showBody ? tenths(ctx.timings.readBodyMs) : 0;
  const coalesce = ctx.coalesceRole ? tenths(ctx.timings.coalesceWaitMs) : 0;
  const upstream = tenths(ctx.timings.upstreamMs);
  const showJob = ctx.jobId !== undefined && ctx.timings.jobWaitMs > 0;
  const job = showJob ? tenths(ctx.timings.jobWaitMs) : 0;
  const gateway = Math.max(0, tenths(total - queue - body - coalesce - upstream - job));
  const parts = [`queue;dur=${queue}`];
  if (showBody) parts.push(`body;dur=${body}`);
  if (ctx.coalesceRole) parts.push(`coalesce;desc=${ctx.coalesceRole};dur=${coalesce}`);
  if (showJob) parts.push(`job;dur=${job}`);
  parts.push(`upstream;dur=${upstream}`, `gateway;dur=${gateway}`);
  if (ctx.cacheStatus) parts.push(`cache;desc=${ctx.cacheStatus}`);
  if (ctx.error) parts.push(`error;desc=${ctx.error.code}`);
  parts.push(`total;dur=${total}`);
  return parts.join(', ');
}

function tenths(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/** X-Request-Id, Server-Timing and Cache-Status: Sluice's own, replacing any the backend sent. */
function commonFields(ctx: RequestContext, add: (name: string, value: string) => void): void {
  add('x-request-id', ctx.id);
  add('server-timing', serverTimingHeader(ctx));
  if (ctx.cacheStatusDetail) add('cache-status', `sluice; ${ctx.cacheStatusDetail}`);
}

function setCommonHeaders(headers: OutgoingHttpHeaders, ctx: RequestContext): OutgoingHttpHeaders {
  commonFields(ctx, (name, value) => { headers[name] = value; });
  return headers;
}

/** HEAD, 204, 304 and interim answers carry no body (RFC 9110 §6.4.1). */
function isBodyless(method: string, status: number): boolean {
  return method === 'HEAD' || BODYLESS_STATUSES.has(status) || (status >= 100 && status < 200);
}

export async function writeResponse(ctx: RequestContext, via: string): Promise<void> {
  const { res } = ctx;
  const response = ctx.response!;
  if (response.clientHeaderList && response.body instanceof BufferedBody) {
    writeStored(ctx, response.status, response.clientHeaderList, response.ageSec ?? 0, response.body);
    return;
  }
  const headers = clientResponseHeaders(response.headers, via);
  setCommonHeaders(headers, ctx);
  const bodyless = isBodyless(ctx.method, response.status);
  if (response.body instanceof BufferedBody) {
    // HEAD keeps the backend's Content-Length (the size a GET would have); others get the real size.
    if (!bodyless) headers['content-length'] = String(response.body.size);
    res.writeHead(response.status, headers);
    if (bodyless) {
      res.end();
      return;
    }
    ctx.bytesSent = response.body.size;
    if (response.body.buffer) {
      res.end(response.body.buffer);
      return;
    }
    await pipeline(response.body.stream(), res);
    return;
  }
  // A live stream from the backend (stream_response): keep its framing.
  delete headers['content-length'];
  const declared = response.headers['content-length'];
  if (declared !== undefined && !Array.isArray(declared)) headers['content-length'] = declared;
  res.writeHead(response.status, headers);
  if (bodyless) {
    response.body.resume();
    res.end();
    return;
  }
  response.body.on('data', (chunk: Buffer) => { ctx.bytesSent += chunk.length; });
  await pipeline(response.body, res);
}

/** A fresh hit: the entry's client-ready list plus this response's own fields, in one array, no header object. */
function writeStored(ctx: RequestContext, status: number, stored: readonly string[], ageSec: number, body: BufferedBody): void {
  const { res } = ctx;
  const list = stored.concat('age', String(ageSec));
  commonFields(ctx, (name, value) => { list.push(name, value); });
  const bodyless = isBodyless(ctx.method, status);
  // HEAD gets the size a GET would have; a 204 or 304 gets none.
  if (!bodyless || ctx.method === 'HEAD') list.push('content-length', String(body.size));
  res.writeHead(status, list);
  if (bodyless) {
    res.end();
    return;
  }
  ctx.bytesSent = body.size;
  res.end(body.buffer);
}

export function writeError(ctx: RequestContext, err: SluiceError): void {
  const { res } = ctx;
  if (res.headersSent) {
    // The status line is gone; the only honest signal left is an abrupt close.
    res.destroy(err);
    return;
  }
  const body = errorBody(err, ctx.id);
  const headers: OutgoingHttpHeaders = {
    ...err.headers,
    ...setCommonHeaders({}, ctx),
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-sluice-error': err.code,
  };
  if (err.retryAfterSeconds !== undefined) headers['retry-after'] = String(err.retryAfterSeconds);
  // The rest of an unread body would be taken for the next request: close instead.
  if (ctx.method !== 'HEAD' && !res.req.readableEnded && BODY_ABANDONED.has(err.code)) headers['connection'] = 'close';
  res.writeHead(err.status, headers);
  ctx.bytesSent = ctx.method === 'HEAD' ? 0 : Buffer.byteLength(body);
  res.end(ctx.method === 'HEAD' ? undefined : body);
}
