// The /api endpoints of the test backend. Every handler here runs inside a slot: the
// caller has already acquired it and releases it once the response is fully written.
import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import {
  FIXED_LAST_MODIFIED,
  type BodyDigest,
  type Overrides,
  drainBody,
  filler,
  headerValue,
  notModified,
  parseOverrides,
  send,
  sendJson,
  sleep,
  strongEtag,
} from './backend-http.js';

/** What a handler may use from the backend that owns it. */
export interface RouteEnv {
  latencyMs: number;
  reportLatencyMs: number;
  errorRate: number;
  stallRate: number;
  stallMs: number;
  /** Aborted when the backend closes, so sleeping handlers end promptly. */
  signal: AbortSignal;
  random(): number;
  nextLiveCounter(): number;
}

type RouteName = 'items' | 'live' | 'reports' | 'upload' | 'echo';

interface Route {
  name: RouteName;
  id: string;
  allow: readonly string[] | null; // null: any method
}

const ROUTES: ReadonlyArray<{ re: RegExp; name: RouteName; allow: readonly string[] | null }> = [
  { re: /^\/api\/items\/([^/]+)$/, name: 'items', allow: ['GET', 'HEAD'] },
  { re: /^\/api\/live\/([^/]+)$/, name: 'live', allow: ['GET', 'HEAD'] },
  { re: /^\/api\/reports$/, name: 'reports', allow: ['POST'] },
  { re: /^\/api\/upload$/, name: 'upload', allow: ['POST'] },
  { re: /^\/api\/echo$/, name: 'echo', allow: null },
];

function matchRoute(pathname: string): Route | null {
  for (const r of ROUTES) {
    const m = r.re.exec(pathname);
    if (m) return { name: r.name, id: decodeURIComponent(m[1] ?? ''), allow: r.allow };
  }
  return null;
}

/** A representation before query overrides and conditional handling are applied. */
interface Draft {
  status: number;
  headers: OutgoingHttpHeaders;
  body: Record<string, unknown>;
  /** Items carry a strong ETag derived from the exact body bytes. */
  etag: boolean;
}

/** Deterministic per id: a cache in front must be able to serve it for any client. */
function itemBody(id: string): Record<string, unknown> {
  const h = createHash('sha256').update(`item:${id}`).digest();
  return {
    id,
    name: `Item ${id}`,
    price_cents: h.readUInt32BE(0) % 100_000,
    stock: h.readUInt16BE(4) % 500,
    tags: ['alpha', 'beta', 'gamma', 'delta'].filter((_, i) => ((h[6] ?? 0) >> i) & 1),
    description: `Deterministic test item ${id} from the sluice test backend.`,
  };
}

function buildDraft(route: Route, req: IncomingMessage, url: URL, body: BodyDigest, env: RouteEnv): Draft {
  switch (route.name) {
    case 'items':
      return { status: 200, headers: { 'cache-control': 'public, max-age=5' }, body: itemBody(route.id), etag: true };
    case 'live':
      return {
        status: 200,
        headers: { 'cache-control': 'no-store' },
        body: { id: route.id, counter: env.nextLiveCounter(), served_at: new Date().toISOString() },
        etag: false,
      };
    case 'reports':
      return {
        status: 201,
        headers: {},
        body: {
          report_id: randomUUID(),
          status: 'done',
          body_bytes: body.bytes,
          body_sha256: body.sha256,
          idempotency_key: headerValue(req, 'idempotency-key'),
        },
        etag: false,
      };
    case 'upload':
      return { status: 200, headers: {}, body: { bytes: body.bytes, sha256: body.sha256 }, etag: false };
    case 'echo':
      return {
        status: 200,
        headers: {},
        body: {
          method: req.method,
          path: url.pathname,
          query: Object.fromEntries(url.searchParams),
          headers: req.headers,
          body_bytes: body.bytes,
          body_sha256: body.sha256,
        },
        etag: false,
      };
  }
}

function defaultLatency(route: Route, env: RouteEnv): number {
  if (route.name === 'reports') return env.reportLatencyMs;
  if (route.name === 'upload') return 0; // its cost is the transfer itself
  return env.latencyMs;
}

/** Applies the query overrides and answers; conditional requests may become 304. */
function respond(req: IncomingMessage, res: ServerResponse, draft: Draft, o: Overrides): void {
  const headers: OutgoingHttpHeaders = { ...draft.headers };
  const body = draft.body;
  if (o.vary !== undefined) {
    headers['vary'] = o.vary;
    body['vary'] = { [o.vary]: headerValue(req, o.vary.toLowerCase()) };
  }
  if (o.cacheControl !== undefined) headers['cache-control'] = o.cacheControl;
  if (o.setCookie) headers['set-cookie'] = `sluice_test=${randomUUID()}; Path=/; HttpOnly`;
  if (o.lastModified) headers['last-modified'] = FIXED_LAST_MODIFIED;
  for (const [name, value] of o.headers) {
    const prior = headers[name];
    headers[name] = prior === undefined ? value : [prior, value].flat().map(String);
  }

  const bytes = o.bytes !== undefined ? filler(o.bytes) : Buffer.from(JSON.stringify(body));
  headers['content-type'] = o.bytes !== undefined ? 'text/plain; charset=utf-8' : 'application/json';
  const etag = o.etag ?? (draft.etag ? strongEtag(bytes) : undefined);
  if (etag !== undefined) headers['etag'] = etag;

  const status = o.status ?? draft.status;
  const conditional = (req.method === 'GET' || req.method === 'HEAD') && status === 200;
  if (conditional && notModified(req, etag, o.lastModified ? FIXED_LAST_MODIFIED : undefined)) {
    delete headers['content-type'];
    // Node drops Content-Length on a 304 unless it is written by hand, as some servers do.
    if (o.contentLengthOn304) headers['content-length'] = bytes.length;
    send(res, 304, headers);
    return;
  }
  send(res, status, headers, bytes);
}

/** An interim (1xx) response before the final one, as Flask/Gunicorn can send for Early Hints. */
function writeInterim(res: ServerResponse, code: number): void {
  if (code === 100) res.writeContinue();
  else if (code === 102) res.writeProcessing();
  else res.writeEarlyHints({ link: '</static/app.css>; rel=preload; as=style' });
}

/**
 * Runs one /api request the way a Flask view under Gunicorn would: read the body, compute
 * (sleep), maybe stall or fail, then answer. The work happens even if the client is gone.
 */
export async function handleApi(req: IncomingMessage, res: ServerResponse, url: URL, env: RouteEnv): Promise<void> {
  const route = matchRoute(url.pathname);
  const body = await drainBody(req);
  if (route === null) {
    sendJson(res, 404, { error: 'not_found', path: url.pathname });
    return;
  }
  if (route.allow !== null && !route.allow.includes(req.method ?? '')) {
    sendJson(res, 405, { error: 'method_not_allowed', allow: route.allow }, { allow: route.allow.join(', ') });
    return;
  }
  let overrides: Overrides;
  try {
    overrides = parseOverrides(url.searchParams);
  } catch (err) {
    sendJson(res, 400, { error: 'bad_query', detail: (err as Error).message });
    return;
  }
  for (const code of overrides.interim) writeInterim(res, code);
  await sleep(overrides.ms ?? defaultLatency(route, env), env.signal);
  if (env.stallRate > 0 && env.random() < env.stallRate) await sleep(env.stallMs, env.signal);
  if (env.errorRate > 0 && env.random() < env.errorRate) {
    sendJson(res, 500, { error: 'injected_error', path: url.pathname });
    return;
  }
  respond(req, res, buildDraft(route, req, url, body, env), overrides);
}
