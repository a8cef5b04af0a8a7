// The error path, run by the orchestrator after a phase threw; never throws. On the read
// path a failure may still be answered: a stored copy within stale-if-error is served (and
// handed to the flight's followers), and a backend failure is remembered for the route's
// error_ttl. A coalescing leader that ends with an error hands it to its followers.
import type { ErrorCode, SluiceError } from '../../errors.js';
import type { RequestContext } from '../context.js';
import type { PipelineDeps } from '../deps.js';
import { responseFrom } from './lookup-cache.js';
import { publish } from './store-response.js';

/** Failures after which a stale copy is better than an error (stale-if-error). */
const STALE_IF_ERROR_CODES: ReadonlySet<ErrorCode> = new Set(['queue_full', 'queue_timeout', 'queue_shed']);

export async function onError(ctx: RequestContext, deps: PipelineDeps): Promise<void> {
  const error = ctx.error!;
  try {
    const lookup = ctx.cacheLookup;
    const cache = deps.cache;
    if (!lookup || !cache || error.code === 'client_closed') return;
    if (lookup.stale && servesStale(error) && cache.canServeOnError(lookup.stale)) {
      const { ttl, age } = cache.freshness(lookup.stale);
      cache.count('error-stale');
      ctx.error = undefined;
      ctx.cacheStatus = 'error-stale';
      publish(ctx, responseFrom(cache, lookup.stale, age), { fwd: 'stale', ttl, detail: 'stale-if-error' });
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

function servesStale(error: SluiceError): boolean {
  return error.source === 'backend' || STALE_IF_ERROR_CODES.has(error.code);
}
