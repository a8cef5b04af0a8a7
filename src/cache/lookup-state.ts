// What lookupCache found for a request that still has to go to the backend; storeResponse
// (and the error path) finish the job with it.
import type { HeaderMap } from '../http/headers.js';
import type { ForwardReason } from './cache-status.js';
import type { CacheEntry, CacheRequest } from './response-cache.js';

export interface CacheLookupState {
  readonly request: CacheRequest;
  /** Why the request goes to the backend (Cache-Status `fwd=`). */
  readonly fwd: ForwardReason;
  /** The stored response, expired: revalidated with `validators`, served on error within stale-if-error. */
  readonly stale: CacheEntry | undefined;
  /** If-None-Match / If-Modified-Since sent to the backend to revalidate `stale` (GET only). */
  readonly validators: HeaderMap | undefined;
  /** False when the request said `no-store`: nothing about it may be stored. */
  readonly store: boolean;
}
