// Read path, part 1: answers from the response cache. A fresh entry answers at once; an
// entry within stale-while-revalidate answers at once and starts the one background
// refresh for its entry; a remembered backend failure (error_ttl) answers at once.
// Anything else goes on to coalescing and the backend, carrying what was found: validators
// for a conditional revalidation, and a stale copy for stale-if-error.
//
// The shared cache never serves one user's answer to another: a request with Cookie or
// Authorization neither reads nor writes it unless the route keys on that header
// (cache.key_headers) or ignores cookies (cache.ignore_cookies). Keys and variants are
// computed from the headers Sluice forwards, after hop-by-hop stripping, so a header the
// backend never saw cannot select a stored answer. A client's no-cache is answered from a
// revalidation and never replaces the stored answer unless the route allows it
// (cache.allow_client_refresh), so one client cannot overwrite what everyone is served.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { formatCacheStatus, type CacheStatusParams } from '../../cache/cache-status.js';
import { clientAnswer } from '../../cache/conditional.js';
import { requestDirectives } from '../../cache/admission.js';
import type { CacheLookupState } from '../../cache/lookup-state.js';
import { headerDigest, normalizedTarget, readKey } from '../../cache/request-key.js';
import { requestView } from '../../cache/response-view.js';
import { resourceOf, type CacheEntry, type CacheRequest, type Lookup, type ResponseCache } from '../../cache/response-cache.js';
import type { CacheKeyPlan } from '../../config/compile.js';
import { SluiceError } from '../../errors.js';
import { BufferedBody } from '../../http/body-buffer.js';
import { clientResponseHeaders, endToEndHeaders, type HeaderMap } from '../../http/headers.js';
import type { CacheStatus, ProxyResponse, RequestContext } from '../context.js';
import type { PipelineDeps } from '../deps.js';
import type { PhaseResult } from './phase.js';
import { hasBody } from './read-body.js';
import { refreshInBackground } from './refresh-cache.js';

export function lookupCache(ctx: RequestContext, deps: PipelineDeps): PhaseResult | Promise<PhaseResult> {
  const cache = deps.cache;
  if (!cache || !cacheApplies(ctx)) return 'continue';
  const plan = ctx.route!.cacheKey;
  const target = normalizedTarget(ctx.pathname, ctx.search);
  if (plainRequest(ctx.req.headers, plan) && serveFreshHit(ctx, cache, deps.via, plan, target)) return 'respond';
  const request = cacheRequestFor(ctx, plan, target);
  const directives = requestDirectives(request.view);
  const credentialed = unkeyedCredentials(plan, request.headers);
  if (credentialed && !directives['only-if-cached']) {
    return forward(ctx, cache, { request, fwd: 'bypass', stale: undefined, validators: undefined, store: false });
  }
  if (directives['no-store']) return forward(ctx, cache, { request, fwd: 'request', stale: undefined, validators: undefined, store: false });
  const refresh = directives['no-cache'] !== undefined;
  const found: Lookup = credentialed ? { kind: 'miss' } : cache.lookup(request, { useFailures: !refresh });
  // Scale-out: a local miss may be in the shared tier, stored there by another instance.
  if (found.kind === 'miss' && !refresh && !credentialed && deps.sharedCache) {
    return deps.sharedCache.fill(request, ctx.route!.cache)
      .then((filled) => answer(ctx, deps, cache, request, directives, filled ? cache.lookup(request, { useFailures: true }) : found));
  }
  return answer(ctx, deps, cache, request, directives, found);
}

function answer(ctx: RequestContext, deps: PipelineDeps, cache: ResponseCache, request: CacheRequest, directives: ReturnType<typeof requestDirectives>, found: Lookup): PhaseResult {
  const refresh = directives['no-cache'] !== undefined;
  // RFC 9111 §5.2.1.7: the client wants no backend call; what the cache cannot answer is a 504.
  if (directives['only-if-cached'] && found.kind !== 'fresh' && found.kind !== 'stale-while-revalidate') throw new SluiceError('not_cached');
  switch (found.kind) {
    case 'fresh':
      return serveStored(ctx, cache, found.entry, 'hit', { hit: true });
    case 'stale-while-revalidate':
      refreshInBackground(ctx, deps, cache, request, found.entry, validatorsOf(found.entry));
      return serveStored(ctx, cache, found.entry, 'stale', { hit: true, detail: 'stale-while-revalidate' });
    case 'failure':
      return serveFailure(ctx, cache, found);
    case 'expired': {
      // Still fresh but not acceptable to this request (its no-cache or max-age=0): fwd=request.
      // A client's no-cache may replace only an entry that is stale anyway: any request
      // would refetch that one.
      const stale = found.entry.policy.stale();
      return forward(ctx, cache, {
        request, fwd: refresh ? 'request' : stale ? 'stale' : 'request', stale: found.entry,
        store: !refresh || stale || ctx.route!.cache.allow_client_refresh,
        validators: ctx.method === 'GET' ? validatorsOf(found.entry) : undefined,
      });
    }
    case 'miss':
      return forward(ctx, cache, { request, fwd: refresh ? 'request' : 'miss', stale: undefined, validators: undefined, store: true });
  }
}

/**
 * A request the fast path may answer: nothing of its own that changes what the cache may
 * serve (Cache-Control, Pragma, Range), no Connection header that could hide a key header,
 * and no credential the route's key does not account for.
 */
function plainRequest(headers: IncomingHttpHeaders, plan: CacheKeyPlan): boolean {
  if (headers['cache-control'] !== undefined || headers['pragma'] !== undefined || headers['range'] !== undefined) return false;
  const connection = headers['connection'];
  if (connection !== undefined && !PLAIN_CONNECTION.test(connection)) return false;
  return !unkeyedCredentials(plan, headers);
}

const PLAIN_CONNECTION = /^\s*(?:keep-alive|close)\s*$/i;

/** Headers as node:http's flat list form; a repeated field (Set-Cookie) repeats its name. Content-Length is the writer's. */
function headerList(headers: OutgoingHttpHeaders): string[] {
  const list: string[] = [];
  for (const name in headers) {
    if (name === 'content-length') continue;
    const value = headers[name];
    if (Array.isArray(value)) for (const v of value) list.push(name, v);
    else if (value !== undefined) list.push(name, String(value));
  }
  return list;
}

/**
 * A fresh hit without http-cache-semantics: the key, one map lookup, two comparisons and
 * the Age value; the client-ready headers are built once per stored entry. Whatever this
 * cannot decide (variants, stale entries, conditionals beyond the plain 304) takes the full path.
 */
function serveFreshHit(ctx: RequestContext, cache: ResponseCache, via: string, plan: CacheKeyPlan, target: string): boolean {
  const headers = ctx.req.headers;
  const key = readKey({ method: 'GET', host: headers.host, target, headers: headerDigest(headers, plan.headers) });
  const hit = cache.freshHit(key);
  if (!hit) return false;
  const { entry } = hit;
  if (headers['if-none-match'] !== undefined || headers['if-modified-since'] !== undefined) {
    ctx.response = clientAnswer(headers, ctx.method, responseFrom(cache, entry, hit.ageSec));
  } else {
    entry.clientHeaderList ??= headerList(clientResponseHeaders(withoutTargeted(entry.headers, cache.ownFields), via));
    ctx.response = { status: entry.status, headers: entry.headers, body: BufferedBody.fromBuffer(entry.body), clientHeaderList: entry.clientHeaderList, ageSec: Math.floor(hit.ageSec) };
  }
  ctx.cacheStatus = 'hit';
  ctx.cacheStatusDetail = `hit; ttl=${Math.floor(hit.ttlSec)}`;
  cache.count('hit');
  return true;
}

/** GET/HEAD without a body, on a route that caches and buffers responses. */
export function cacheApplies(ctx: RequestContext): boolean {
  const route = ctx.route!;
  return route.cache.enabled && (ctx.method === 'GET' || ctx.method === 'HEAD') && sharable(ctx) && !hasBody(ctx.req);
}

/**
 * Streamed responses cannot be shared or stored. A Range request is on the read path only
 * where the route caches: the whole answer is fetched and each client's range cut from it;
 * elsewhere ranges are the backend's to answer.
 */
export function sharable(ctx: RequestContext): boolean {
  return !ctx.route!.streamResponse && (ctx.req.headers['range'] === undefined || ctx.route!.cache.enabled);
}

/** The stored response as an answer, with its current Age, without the fields meant for Sluice alone. */
export function responseFrom(cache: ResponseCache, entry: CacheEntry, ageSec: number): ProxyResponse & { body: BufferedBody } {
  const headers = withoutTargeted({ ...entry.headers, age: String(Math.floor(ageSec)) }, cache.ownFields);
  return { status: entry.status, headers, body: BufferedBody.fromBuffer(entry.body) };
}

/** Targeted fields addressed to Sluice alone (RFC 9213) never reach clients. Copies only when one is present. */
export function withoutTargeted(headers: HeaderMap, fields: readonly string[]): HeaderMap {
  if (!fields.some((f) => f in headers)) return headers;
  const out = { ...headers };
  for (const f of fields) delete out[f];
  return out;
}

function cacheRequestFor(ctx: RequestContext, plan: CacheKeyPlan, target: string): CacheRequest {
  const headers = endToEndHeaders(ctx.req.headers);
  if (plan.cookie === 'ignored') delete headers['cookie'];
  const host = headers['host'] as string | undefined;
  return {
    key: readKey({ method: 'GET', host, target, headers: headerDigest(headers, plan.headers) }),
    target,
    resource: resourceOf(host, target),
    headers,
    view: { method: 'GET', url: target, headers: requestView(headers) },
  };
}

/** True when the request carries a credential the route's cache key does not account for. */
function unkeyedCredentials(plan: CacheKeyPlan, headers: Readonly<Record<string, unknown>>): boolean {
  return (plan.authorization === 'bypass' && headers['authorization'] !== undefined)
    || (plan.cookie === 'bypass' && headers['cookie'] !== undefined);
}

function forward(ctx: RequestContext, cache: ResponseCache, state: CacheLookupState): PhaseResult {
  ctx.cacheLookup = state;
  const bypass = state.fwd === 'request' || state.fwd === 'bypass';
  ctx.cacheStatus = bypass ? 'bypass' : 'miss';
  ctx.cacheStatusDetail = formatCacheStatus({ fwd: state.fwd });
  cache.count(ctx.cacheStatus);
  return 'continue';
}

function serveStored(ctx: RequestContext, cache: ResponseCache, entry: CacheEntry, status: CacheStatus, params: CacheStatusParams): PhaseResult {
  const { ttl, age } = cache.freshness(entry);
  ctx.response = clientAnswer(ctx.req.headers, ctx.method, responseFrom(cache, entry, age));
  ctx.cacheStatus = status;
  ctx.cacheStatusDetail = formatCacheStatus({ ...params, ttl });
  cache.count(status);
  return 'respond';
}

function serveFailure(ctx: RequestContext, cache: ResponseCache, found: Extract<Lookup, { kind: 'failure' }>): PhaseResult {
  if (found.stale && cache.canServeOnError(found.stale)) {
    return serveStored(ctx, cache, found.stale, 'error-stale', { hit: true, detail: 'stale-if-error' });
  }
  const { failure } = found;
  ctx.cacheStatus = 'error-cached';
  ctx.cacheStatusDetail = formatCacheStatus({ hit: true, ttl: (failure.storedAt + failure.ttlMs - Date.now()) / 1000, detail: 'error-ttl' });
  cache.count('error-cached');
  if (failure.response) {
    const headers = withoutTargeted(failure.response.headers, cache.ownFields);
    ctx.response = { status: failure.response.status, headers, body: BufferedBody.fromBuffer(failure.response.body) };
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
