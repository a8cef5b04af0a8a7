// Read path, part 3: turns the backend's answer into the read path's answer, stores it,
// and publishes it to the flight's followers before this request's own response is
// written (so followers never wait for the leader's slow client):
// - a 304 to Sluice's own revalidation refreshes the stored copy and serves its body;
// - a 5xx within the stored copy's stale-if-error window serves the stale copy;
// - a storable answer is stored; a 5xx is remembered for the route's error_ttl.
// onError (on-error.ts) does the same for a backend call that threw. Each client's own
// conditional or range request is answered last, from the complete answer.
//
// For every request, read path or not: a successful unsafe request invalidates what is
// stored for its URI and for same-origin Location / Content-Location (RFC 9111 §4.4), and
// RFC 9213 targeted fields addressed to Sluice alone (Sluice-Cache-Control) are removed
// from what the client sees.
//
// Body ownership: requests outside the read path dispose their own backend body after
// their response; the read path owns the backend body of every request it handles. The
// body is disposed once the last response reading it (the leader's and each follower's)
// has been written; stored copies live in memory and are never disposed.
import { formatCacheStatus, type CacheStatusParams } from '../../cache/cache-status.js';
import { clientAnswer } from '../../cache/conditional.js';
import { wholeRepresentation } from '../../cache/range.js';
import { normalizedTarget, varyFields } from '../../cache/request-key.js';
import { resourceOf, type ResponseCache } from '../../cache/response-cache.js';
import { SharedBody } from '../../coalesce/shared-answer.js';
import { BufferedBody } from '../../http/body-buffer.js';
import { endToEndHeaders, firstHeader, type HeaderMap } from '../../http/headers.js';
import type { ProxyResponse, RequestContext } from '../context.js';
import type { PipelineDeps } from '../deps.js';
import { responseFrom, withoutTargeted } from './lookup-cache.js';
import type { PhaseResult } from './phase.js';

type BufferedResponse = ProxyResponse & { body: BufferedBody };

/** Methods that never change state (RFC 9110 §9.2.1); a success of any other invalidates. */
const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

export async function storeResponse(ctx: RequestContext, deps: PipelineDeps): Promise<PhaseResult> {
  const upstream = ctx.response;
  if (!upstream) return 'continue';
  const cache = deps.cache;
  if (cache && !SAFE_METHODS.has(ctx.method) && upstream.status >= 200 && upstream.status < 400) invalidateAfterUnsafe(ctx, cache, upstream.headers);
  // A 304's Content-Length describes the representation, not this message; clients that
  // read it as a body to wait for (undici among them) fail, so it is not passed on.
  if (upstream.status === 304 && upstream.headers['content-length'] !== undefined) {
    upstream.headers = { ...upstream.headers };
    delete upstream.headers['content-length'];
  }
  if (!ctx.cacheLookup && !ctx.leadership) {
    if (cache) upstream.headers = withoutTargeted(upstream.headers, cache.ownFields);
    // Outside the read path this request alone reads the body: delete a spilled one after.
    const body = upstream.body;
    if (body instanceof BufferedBody) ctx.finalizers.push(() => body.dispose());
    return 'continue';
  }
  if (!(upstream.body instanceof BufferedBody)) return 'continue';
  const params: CacheStatusParams = { fwd: ctx.cacheLookup?.fwd ?? 'bypass', fwdStatus: upstream.status };
  const complete = wholeRepresentation(upstream as BufferedResponse) ?? (upstream as BufferedResponse);
  const answer = await resolveAnswer(ctx, deps, complete, params);
  if (answer.response.body !== upstream.body) await upstream.body.dispose();
  publish(ctx, answer.response, answer.params);
  return 'continue';
}

async function resolveAnswer(ctx: RequestContext, deps: PipelineDeps, upstream: BufferedResponse, params: CacheStatusParams): Promise<{ response: BufferedResponse; params: CacheStatusParams }> {
  const lookup = ctx.cacheLookup;
  const cache = deps.cache;
  ctx.cacheStatus = lookup && (lookup.fwd === 'miss' || lookup.fwd === 'stale') ? 'miss' : 'bypass';
  if (!lookup || !cache) return { response: upstream, params };
  const rules = ctx.route!.cache;
  if (upstream.status === 304 && lookup.validators && lookup.stale) {
    const { entry, stored } = cache.revalidated(lookup.request, lookup.stale, upstream.headers, rules);
    ctx.cacheStatus = 'revalidated';
    return { response: responseFrom(cache, entry, cache.freshness(entry).age), params: { ...params, stored } };
  }
  if (upstream.status >= 500 && lookup.stale && cache.canServeOnError(lookup.stale)) {
    const { ttl, age } = cache.freshness(lookup.stale);
    cache.count('error-stale');
    ctx.cacheStatus = 'error-stale';
    return { response: responseFrom(cache, lookup.stale, age), params: { ...params, ttl, detail: 'stale-if-error' } };
  }
  const client = { ...upstream, headers: withoutTargeted(upstream.headers, cache.ownFields) };
  if (!lookup.store || ctx.method !== 'GET') return { response: client, params };
  const stored = (await cache.store(lookup.request, upstream, rules)) !== undefined;
  if (upstream.status >= 500 && rules.error_ttl && upstream.body.size <= rules.max_object) {
    const failure = { status: upstream.status, headers: upstream.headers, body: await upstream.body.toBuffer() };
    cache.storeFailure(lookup.request, { response: failure, errorCode: undefined }, rules.error_ttl);
  }
  return { response: client, params: { ...params, stored } };
}

/**
 * RFC 9111 §4.4: the request's URI, and Location / Content-Location when they name the
 * same host, lose every stored response, so the next read sees the change.
 */
function invalidateAfterUnsafe(ctx: RequestContext, cache: ResponseCache, headers: HeaderMap): void {
  const host = firstHeader(endToEndHeaders(ctx.req.headers)['host']);
  cache.invalidateResource(resourceOf(host, normalizedTarget(ctx.pathname, ctx.search)));
  for (const name of ['location', 'content-location']) {
    const value = firstHeader(headers[name]);
    if (value === undefined) continue;
    let base: URL;
    let url: URL;
    try {
      base = new URL(ctx.pathname + ctx.search, `http://${host ?? 'sluice.invalid'}`);
      url = new URL(value, base);
    } catch {
      continue;
    }
    if (url.host !== base.host) continue; // another origin's URI is not ours to invalidate
    cache.invalidateResource(resourceOf(host, normalizedTarget(url.pathname, url.search)));
  }
}

/** Sets this request's answer and hands it to the flight's followers, if it leads one. */
export function publish(ctx: RequestContext, response: BufferedResponse, params: CacheStatusParams): void {
  const owner = new SharedBody(response.body);
  ctx.finalizers.push(() => owner.release());
  ctx.cacheStatusDetail = formatCacheStatus(params);
  const leadership = ctx.leadership;
  if (leadership) {
    const delivered = leadership.finish({
      answer: { response, cacheStatus: ctx.cacheStatus, cacheStatusDetail: formatCacheStatus({ ...params, stored: false }), owner },
      failed: response.status >= 500,
      vary: varyFields(response.headers),
    });
    owner.retain(delivered);
  }
  ctx.response = clientAnswer(ctx.req.headers, ctx.method, response);
}
