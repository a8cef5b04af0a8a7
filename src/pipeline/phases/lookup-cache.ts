// Read path, part 1: answers from the response cache. A fresh entry answers at once; an
// entry within stale-while-revalidate answers at once and starts the one background
// refresh for its entry; a remembered backend failure (error_ttl) answers at once.
// Anything else goes on to coalescing and the backend, carrying what was found: validators
// for a conditional revalidation, and a stale copy for stale-if-error.
import type { IncomingMessage } from 'node:http';
import { formatCacheStatus, type CacheStatusParams } from '../../cache/cache-status.js';
import { CLIENT_VALIDATORS, conditionalAnswer } from '../../cache/conditional.js';
import { requestDirectives } from '../../cache/admission.js';
import type { CacheLookupState } from '../../cache/lookup-state.js';
import { headerDigest, normalizedTarget, readKey } from '../../cache/request-key.js';
import type { CacheEntry, CacheRequest, Lookup, ResponseCache } from '../../cache/response-cache.js';
import { PRIORITY_CLASSES } from '../../config/schema.js';
import { SluiceError } from '../../errors.js';
import { BufferedBody } from '../../http/body-buffer.js';
import { upstreamRequestHeaders, type HeaderMap } from '../../http/headers.js';
import { callBackend } from '../../upstream/forward.js';
import type { CacheStatus, ProxyResponse, RequestContext } from '../context.js';
import type { PipelineDeps, RequestObserver } from '../deps.js';
import type { PhaseResult } from './phase.js';

const BACKGROUND_RANK = PRIORITY_CLASSES.indexOf('background');

export function lookupCache(ctx: RequestContext, deps: PipelineDeps): PhaseResult {
  const cache = deps.cache;
  if (!cache || !cacheApplies(ctx)) return 'continue';
  const request = cacheRequestFor(ctx);
  const directives = requestDirectives(request.view);
  if (directives['no-store']) return forward(ctx, cache, { request, fwd: 'request', stale: undefined, validators: undefined, store: false });
  const fwd = directives['no-cache'] ? 'request' : undefined;
  const found = cache.lookup(request, { useFailures: !fwd });
  switch (found.kind) {
    case 'fresh':
      return serveStored(ctx, cache, found.entry, 'hit', { hit: true });
    case 'stale-while-revalidate':
      refreshInBackground(ctx, deps, cache, request, found.entry);
      return serveStored(ctx, cache, found.entry, 'stale', { hit: true, detail: 'stale-while-revalidate' });
    case 'failure':
      return serveFailure(ctx, cache, found);
    case 'expired':
      // Still fresh but not acceptable to this request (e.g. its max-age=0): fwd=request.
      return forward(ctx, cache, {
        request, fwd: fwd ?? (found.entry.policy.stale() ? 'stale' : 'request'), stale: found.entry, store: true,
        validators: ctx.method === 'GET' ? validatorsOf(found.entry) : undefined,
      });
    case 'miss':
      return forward(ctx, cache, { request, fwd: fwd ?? 'miss', stale: undefined, validators: undefined, store: true });
  }
}

/**
 * The read path's changes to the backend request: a client's own validators are removed
 * (one full answer serves and is stored for everyone; each client's conditional is answered
 * by Sluice), and the stored response's validators are added to revalidate it.
 */
export const readPathUpstreamHeaders: RequestObserver = {
  beforeUpstream(ctx, headers) {
    if (!ctx.cacheLookup && !ctx.leadership) return;
    for (const name of CLIENT_VALIDATORS) delete headers[name];
    Object.assign(headers, ctx.cacheLookup?.validators);
  },
};

/** GET/HEAD without a body or a Range, on a route that caches and buffers responses. */
export function cacheApplies(ctx: RequestContext): boolean {
  const route = ctx.route!;
  return route.cache.enabled && (ctx.method === 'GET' || ctx.method === 'HEAD') && sharable(ctx) && !hasBody(ctx.req);
}

/** Streamed responses cannot be shared or stored; ranges are the backend's to answer. */
export function sharable(ctx: RequestContext): boolean {
  return !ctx.route!.streamResponse && ctx.req.headers['range'] === undefined;
}

export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** The stored response as an answer, with its current Age. */
export function responseFrom(entry: CacheEntry, ageSec: number): ProxyResponse & { body: BufferedBody } {
  return { status: entry.status, headers: { ...entry.headers, age: String(Math.floor(ageSec)) }, body: BufferedBody.fromBuffer(entry.body) };
}

function cacheRequestFor(ctx: RequestContext): CacheRequest {
  const route = ctx.route!;
  const target = normalizedTarget(ctx.pathname, ctx.search);
  // Who may reuse a stored answer is RFC 9111's call (Vary, private, Authorization); the
  // route can add request headers the backend varies on without saying so.
  const headers = headerDigest(ctx.req.headers, route.cache.vary_extra);
  return {
    key: readKey({ method: 'GET', host: ctx.req.headers.host, target, headers }),
    target,
    view: { method: 'GET', url: target, headers: ctx.req.headers },
  };
}

function forward(ctx: RequestContext, cache: ResponseCache, state: CacheLookupState): PhaseResult {
  ctx.cacheLookup = state;
  ctx.cacheStatus = state.fwd === 'request' ? 'bypass' : 'miss';
  ctx.cacheStatusDetail = formatCacheStatus({ fwd: state.fwd });
  cache.count(state.fwd === 'request' ? 'bypass' : 'misses');
  return 'continue';
}

function serveStored(ctx: RequestContext, cache: ResponseCache, entry: CacheEntry, status: CacheStatus, params: CacheStatusParams): PhaseResult {
  const { ttl, age } = cache.freshness(entry);
  ctx.response = conditionalAnswer(ctx.req.headers, responseFrom(entry, age));
  ctx.cacheStatus = status;
  ctx.cacheStatusDetail = formatCacheStatus({ ...params, ttl });
  cache.count(status === 'hit' ? 'hits' : status === 'stale' ? 'stale' : 'error_stale');
  return 'respond';
}

function serveFailure(ctx: RequestContext, cache: ResponseCache, found: Extract<Lookup, { kind: 'failure' }>): PhaseResult {
  if (found.stale && cache.canServeOnError(found.stale)) {
    return serveStored(ctx, cache, found.stale, 'error-stale', { hit: true, detail: 'stale-if-error' });
  }
  const { failure } = found;
  ctx.cacheStatus = 'hit';
  ctx.cacheStatusDetail = formatCacheStatus({ hit: true, ttl: (failure.storedAt + failure.ttlMs - Date.now()) / 1000, detail: 'error-ttl' });
  cache.count('hits');
  if (failure.response) {
    ctx.response = { status: failure.response.status, headers: failure.response.headers, body: BufferedBody.fromBuffer(failure.response.body) };
    return 'respond';
  }
  throw new SluiceError(failure.errorCode ?? 'upstream_reset', 'remembered for the route\'s error_ttl');
}

function validatorsOf(entry: CacheEntry): HeaderMap | undefined {
  const headers: HeaderMap = {};
  const etag = entry.headers['etag'];
  const lastModified = entry.headers['last-modified'];
  if (etag !== undefined) headers['if-none-match'] = etag;
  if (lastModified !== undefined) headers['if-modified-since'] = lastModified;
  return Object.keys(headers).length > 0 ? headers : undefined;
}

/**
 * Stale-while-revalidate: one refresh per stored entry, queued at the lowest priority
 * inside the route's caps, with no client attached. A failed refresh keeps the stale copy.
 */
function refreshInBackground(ctx: RequestContext, deps: PipelineDeps, cache: ResponseCache, request: CacheRequest, entry: CacheEntry): void {
  if (!cache.beginRefresh(entry)) return;
  const headers = upstreamRequestHeaders(ctx.req.headers, {
    clientAddress: ctx.req.socket.remoteAddress ?? 'unknown', protocol: 'http', host: ctx.req.headers.host, via: deps.via,
  });
  for (const name of CLIENT_VALIDATORS) delete headers[name];
  Object.assign(headers, validatorsOf(entry));
  void refresh(ctx, deps, cache, request, entry, headers)
    .catch(() => { /* the stale copy stays until it expires; the next request tries again */ })
    .finally(() => cache.endRefresh(entry));
}

async function refresh(ctx: RequestContext, deps: PipelineDeps, cache: ResponseCache, request: CacheRequest, entry: CacheEntry, headers: HeaderMap): Promise<void> {
  const route = ctx.route!;
  const path = ctx.pathname + ctx.search;
  const limits = deps.config.raw.limits;
  const lease = await deps.queue.acquire({
    group: deps.queue.group(route.name, { maxSlots: route.maxSlots, reservedSlots: route.reservedSlots }),
    priorityRank: BACKGROUND_RANK,
    queueTimeoutMs: route.queueTimeoutMs,
    info: { requestId: `${ctx.id}:refresh`, method: 'GET', path },
  });
  let response: ProxyResponse;
  try {
    response = await callBackend(deps.pools.forServer(lease.server.url), {
      serviceKey: route.name,
      method: 'GET', path: deps.pools.basePath(lease.server.url) + path, headers, body: undefined,
      signal: AbortSignal.timeout(route.totalTimeoutMs),
      headersTimeoutMs: route.timeouts.responseMs, bodyTimeoutMs: route.timeouts.bodyMs, stream: false,
      buffer: { memoryLimit: limits.memory_buffer, maxBytes: limits.max_response, tempDir: limits.temp_dir },
    });
  } finally {
    lease.release();
  }
  const body = response.body as BufferedBody;
  try {
    if (response.status === 304) cache.revalidated(request, entry, response.headers, route.cache);
    else if (response.status < 500 && !(await cache.store(request, { ...response, body }, route.cache))) cache.invalidate(entry);
  } finally {
    await body.dispose();
  }
}
