// The parameters of the Cache-Status response header (RFC 9211). respond.ts writes them
// after `sluice; `. The words are RFC 9211's: `hit`, `fwd=` (why the request went to the
// backend), `fwd-status`, `ttl` (seconds of freshness left, negative once stale),
// `stored`, `collapsed`, `detail`.

/**
 * What the cache did for a request: the one vocabulary of cache outcomes, used verbatim in
 * Server-Timing (`cache;desc=`), the `sluice_cache_lookups_total` status label, span
 * attributes and access lines. `error-cached`: a remembered backend failure (error_ttl).
 */
export type CacheStatus = 'hit' | 'stale' | 'miss' | 'bypass' | 'revalidated' | 'error-stale' | 'error-cached';

/** Why a request went to the backend (RFC 9211 §2.2). */
export type ForwardReason = 'bypass' | 'miss' | 'stale' | 'request';

export interface CacheStatusParams {
  /** Answered from the cache without contacting the backend. */
  readonly hit?: boolean;
  readonly fwd?: ForwardReason;
  /** Status the backend answered the forwarded request with. */
  readonly fwdStatus?: number;
  readonly ttl?: number;
  /** This request's response was stored (or a stored one refreshed). */
  readonly stored?: boolean;
  /** This request was answered by another identical request's backend call. */
  readonly collapsed?: boolean;
  readonly detail?: 'stale-while-revalidate' | 'stale-if-error' | 'error-ttl';
}

export function formatCacheStatus(p: CacheStatusParams): string {
  const parts: string[] = [];
  if (p.hit) parts.push('hit');
  if (p.fwd) parts.push(`fwd=${p.fwd}`);
  if (p.fwdStatus !== undefined) parts.push(`fwd-status=${p.fwdStatus}`);
  if (p.ttl !== undefined) parts.push(`ttl=${Math.floor(p.ttl)}`);
  if (p.stored) parts.push('stored');
  if (p.collapsed) parts.push('collapsed');
  if (p.detail) parts.push(`detail=${p.detail}`);
  return parts.join('; ');
}
