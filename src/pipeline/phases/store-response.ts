// Read path, part 3: turns the backend's answer into the read path's answer, stores it,
// and publishes it to the flight's followers before this request's own response is
// written (so followers never wait for the leader's slow client):
// - a 304 to Sluice's own revalidation refreshes the stored copy and serves its body;
// - a 5xx within the stored copy's stale-if-error window serves the stale copy;
// - a storable answer is stored; a 5xx is remembered for the route's error_ttl.
// `recoverFromError` does the same for a backend call that threw. Each client's own
// conditional request is answered last, from the complete answer.
//
// Body ownership: requests outside the read path dispose their own backend body after
// their response; the read path owns the backend body of every request it handles. The
// body is disposed once the last response reading it (the leader's and each follower's)
// has been written; stored copies live in memory and are never disposed.
import { formatCacheStatus, type CacheStatusParams } from '../../cache/cache-status.js';
import { conditionalAnswer } from '../../cache/conditional.js';
import { SharedBody } from '../../coalesce/shared-answer.js';
import { type ErrorCode, type SluiceError } from '../../errors.js';
import { BufferedBody } from '../../http/body-buffer.js';
import type { HeaderMap } from '../../http/headers.js';
import type { ProxyResponse, RequestContext } from '../context.js';
import type { PipelineDeps } from '../deps.js';
import { responseFrom } from './lookup-cache.js';
import type { PhaseResult } from './phase.js';

type BufferedResponse = ProxyResponse & { body: BufferedBody };

/** Failures after which a stale copy is better than an error (stale-if-error). */
const STALE_IF_ERROR_CODES: ReadonlySet<ErrorCode> = new Set(['queue_full', 'queue_timeout', 'queue_shed']);

export async function storeResponse(ctx: RequestContext, deps: PipelineDeps): Promise<PhaseResult> {
  const upstream = ctx.response;
  if (!upstream || !(upstream.body instanceof BufferedBody)) return 'continue';
  if (!ctx.cacheLookup && !ctx.leadership) {
    // Outside the read path this request alone reads the body: delete a spilled one after.
    const body = upstream.body;
    ctx.finalizers.push(() => body.dispose());
    return 'continue';
  }
  const params: CacheStatusParams = { fwd: ctx.cacheLookup?.fwd ?? 'bypass', fwdStatus: upstream.status };
  const answer = await resolveAnswer(ctx, deps, upstream as BufferedResponse, params);
  if (answer.response !== upstream) await upstream.body.dispose();
  publish(ctx, answer.response, answer.params);
  return 'continue';
}

/** The error path of the read path (called by the orchestrator after a phase threw). Never throws. */
export async function recoverFromError(ctx: RequestContext, deps: PipelineDeps): Promise<void> {
  const error = ctx.error!;
  try {
    const lookup = ctx.cacheLookup;
    const cache = deps.cache;
    if (!lookup || !cache || error.code === 'client_closed') return;
    if (lookup.stale && servesStale(error) && cache.canServeOnError(lookup.stale)) {
      const { ttl, age } = cache.freshness(lookup.stale);
      cache.count('error_stale');
      ctx.error = undefined;
      ctx.cacheStatus = 'error-stale';
      publish(ctx, responseFrom(lookup.stale, age), { fwd: 'stale', ttl, detail: 'stale-if-error' });
      return;
    }
    const errorTtl = ctx.route!.cache.error_ttl;
    if (errorTtl && lookup.store && error.source === 'backend') {
      cache.storeFailure(lookup.request, { response: undefined, errorCode: error.code }, errorTtl);
    }
  } catch {
    // Recovery is best effort: the original error stands.
  } finally {
    if (ctx.error) ctx.leadership?.finish({ error: ctx.error });
  }
}

async function resolveAnswer(ctx: RequestContext, deps: PipelineDeps, upstream: BufferedResponse, params: CacheStatusParams): Promise<{ response: BufferedResponse; params: CacheStatusParams }> {
  const lookup = ctx.cacheLookup;
  const cache = deps.cache;
  ctx.cacheStatus = lookup ? 'miss' : 'bypass';
  if (!lookup || !cache) return { response: upstream, params };
  const rules = ctx.route!.cache;
  if (upstream.status === 304 && lookup.validators && lookup.stale) {
    const { entry, stored } = cache.revalidated(lookup.request, lookup.stale, upstream.headers, rules);
    ctx.cacheStatus = 'revalidated';
    return { response: responseFrom(entry, cache.freshness(entry).age), params: { ...params, stored } };
  }
  if (upstream.status >= 500 && lookup.stale && cache.canServeOnError(lookup.stale)) {
    const { ttl, age } = cache.freshness(lookup.stale);
    cache.count('error_stale');
    ctx.cacheStatus = 'error-stale';
    return { response: responseFrom(lookup.stale, age), params: { ...params, ttl, detail: 'stale-if-error' } };
  }
  if (!lookup.store || ctx.method !== 'GET') return { response: upstream, params };
  const stored = (await cache.store(lookup.request, upstream, rules)) !== undefined;
  if (upstream.status >= 500 && rules.error_ttl && upstream.body.size <= rules.max_object) {
    const failure = { status: upstream.status, headers: upstream.headers, body: await upstream.body.toBuffer() };
    cache.storeFailure(lookup.request, { response: failure, errorCode: undefined }, rules.error_ttl);
  }
  return { response: upstream, params: { ...params, stored } };
}

/** Sets this request's answer and hands it to the flight's followers, if it leads one. */
function publish(ctx: RequestContext, response: BufferedResponse, params: CacheStatusParams): void {
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
  ctx.response = conditionalAnswer(ctx.req.headers, response);
}

function servesStale(error: SluiceError): boolean {
  return error.source === 'backend' || STALE_IF_ERROR_CODES.has(error.code);
}

function varyFields(headers: HeaderMap): string[] {
  const vary = headers['vary'];
  if (vary === undefined) return [];
  return [vary].flat().join(',').split(',').map((f) => f.trim().toLowerCase()).filter((f) => f.length > 0);
}
