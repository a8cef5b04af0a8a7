// Whether a backend response may be stored, and for how long it may be used. The RFC 9111
// decisions (no-store, private, Authorization, status codes, max-age/s-maxage/Expires,
// Vary, request directives) are http-cache-semantics'; Sluice adds only its route rules:
// - no heuristic freshness: a response the backend did not mark fresh is fresh for the
//   route's `ttl`, or not at all;
// - Set-Cookie responses are stored only when the route allows it, and the stored copy
//   never carries the cookie (it was meant for one client);
// - the route's stale_while_revalidate / stale_if_error replace the backend's directives;
// - must-revalidate / proxy-revalidate forbid serving stale, and nothing else (the library
//   treats them as "always revalidate", which would make such responses useless).
// Route rules are applied by rewriting the Cache-Control the library sees, so every
// freshness computation stays the library's.
import CachePolicy from 'http-cache-semantics';
import type { RouteCacheConfig } from '../config/schema.js';
import type { HeaderMap } from '../http/headers.js';

export const POLICY_OPTIONS: CachePolicy.Options = { shared: true, cacheHeuristic: 0 };

export type CacheRules = Pick<RouteCacheConfig, 'ttl' | 'stale_while_revalidate' | 'stale_if_error' | 'allow_set_cookie'>;

export interface Admission {
  readonly policy: CachePolicy;
  /** What is stored and served: the backend's headers without Set-Cookie. */
  readonly headers: HeaderMap;
  readonly staleWhileRevalidateSec: number;
  readonly staleIfErrorSec: number;
  /** The response carries ETag or Last-Modified, so an expired copy can be revalidated. */
  readonly revalidatable: boolean;
  /** How long the store should keep it; undefined: until evicted (it can still be revalidated). */
  readonly retainMs: number | undefined;
}

type Directives = Record<string, string | true>;

export function admit(request: CachePolicy.Request, status: number, headers: HeaderMap, rules: CacheRules): Admission | undefined {
  if (headers['set-cookie'] !== undefined && !rules.allow_set_cookie) return undefined;
  const kept: HeaderMap = { ...headers };
  delete kept['set-cookie'];
  const view = policyHeaders(kept);
  const probe = new CachePolicy(request, { status, headers: view }, POLICY_OPTIONS);
  if (!probe.storable()) return undefined;

  const backend = probe.toObject().rescc as Directives;
  const explicit = 'max-age' in backend || 's-maxage' in backend || 'no-cache' in backend || view['expires'] !== undefined;
  const noStale = 'must-revalidate' in backend || 'proxy-revalidate' in backend || 'no-cache' in backend;
  const directives: Directives = { ...backend };
  delete directives['must-revalidate'];
  delete directives['proxy-revalidate'];
  if (!explicit && rules.ttl) directives['max-age'] = String(seconds(rules.ttl));
  const swr = noStale ? 0 : rules.stale_while_revalidate !== undefined ? seconds(rules.stale_while_revalidate) : int(backend['stale-while-revalidate']);
  const sie = noStale ? 0 : rules.stale_if_error !== undefined ? seconds(rules.stale_if_error) : int(backend['stale-if-error']);
  setOrDelete(directives, 'stale-while-revalidate', swr);
  setOrDelete(directives, 'stale-if-error', sie);

  const cacheControl = formatDirectives(directives);
  const policyView = { ...view };
  if (cacheControl) policyView['cache-control'] = cacheControl;
  else delete policyView['cache-control'];
  const policy = new CachePolicy(request, { status, headers: policyView }, POLICY_OPTIONS);
  const fresh = policy.maxAge() > 0;
  const revalidatable = view['etag'] !== undefined || view['last-modified'] !== undefined;
  if (!fresh && swr === 0 && sie === 0 && !(revalidatable && explicit)) return undefined;
  const retainMs = revalidatable ? undefined : policy.timeToLive();
  if (retainMs !== undefined && retainMs <= 0) return undefined;
  return { policy, headers: kept, staleWhileRevalidateSec: swr, staleIfErrorSec: sie, revalidatable, retainMs };
}

/** The request's own Cache-Control directives, parsed by the library. */
export function requestDirectives(request: CachePolicy.Request): Directives {
  const directives = new CachePolicy(request, { status: 200, headers: {} }, POLICY_OPTIONS).toObject().reqcc as Directives;
  const pragma = request.headers['pragma'];
  if (!('cache-control' in request.headers) && typeof pragma === 'string' && /no-cache/i.test(pragma)) directives['no-cache'] = true;
  return directives;
}

/** The library reads single string values; repeated fields are joined as HTTP allows. */
export function policyHeaders(headers: HeaderMap): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) out[name] = Array.isArray(value) ? value.join(', ') : value;
  return out;
}

function formatDirectives(directives: Directives): string {
  return Object.entries(directives).map(([k, v]) => (v === true ? k : `${k}=${v}`)).join(', ');
}

function setOrDelete(directives: Directives, name: string, value: number): void {
  if (value > 0) directives[name] = String(value);
  else delete directives[name];
}

function seconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

function int(value: string | true | undefined): number {
  const n = typeof value === 'string' ? parseInt(value, 10) : NaN;
  return Number.isFinite(n) && n > 0 ? n : 0;
}
