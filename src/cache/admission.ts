// Whether a backend response may be stored, and for how long it may be used. The RFC 9111
// decisions (no-store, private, Authorization, max-age/s-maxage/Expires, request directives)
// are http-cache-semantics', on the corrected view response-view.ts builds; Sluice adds
// only its route rules:
// - no heuristic freshness unless the route sets `heuristic`: a response the backend did
//   not mark fresh is fresh for the route's `ttl`, a share of its age since Last-Modified
//   (capped), or not at all;
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
import { parseHttpDate } from './http-date.js';
import { formatDirectives, HEURISTIC_STATUSES, joined, parseCacheControl, responseView, type Directives } from './response-view.js';

export const POLICY_OPTIONS: CachePolicy.Options = { shared: true, cacheHeuristic: 0, immutableMinTimeToLive: 0 };

/** The route's part of the rules. */
export type RouteRules = Pick<RouteCacheConfig, 'ttl' | 'stale_while_revalidate' | 'stale_if_error' | 'allow_set_cookie' | 'heuristic' | 'heuristic_max'>;
/** The route's rules and the cache's own: which RFC 9213 targeted fields it obeys. */
export type CacheRules = RouteRules & { readonly targetedFields: readonly string[] };

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

export function admit(request: CachePolicy.Request, status: number, headers: HeaderMap, rules: CacheRules): Admission | undefined {
  if (headers['set-cookie'] !== undefined && !rules.allow_set_cookie) return undefined;
  const kept: HeaderMap = { ...headers };
  delete kept['set-cookie'];
  const shown = responseView(status, kept, rules.targetedFields);
  if (!shown) return undefined;
  const view = shown.headers;
  const probe = new CachePolicy(request, { status: shown.status, headers: view }, POLICY_OPTIONS);
  if (!probe.storable()) return undefined;

  const backend = shown.directives;
  const explicit = 'max-age' in backend || 's-maxage' in backend || 'no-cache' in backend || view['expires'] !== undefined;
  const noStale = 'must-revalidate' in backend || 'proxy-revalidate' in backend || 'no-cache' in backend;
  const directives: Directives = { ...backend };
  delete directives['must-revalidate'];
  delete directives['proxy-revalidate'];
  const implicit = explicit ? undefined : rules.ttl ? seconds(rules.ttl) : heuristicSeconds(status, 'public' in backend, view, rules);
  if (implicit) directives['max-age'] = String(implicit);
  const swr = noStale ? 0 : rules.stale_while_revalidate !== undefined ? seconds(rules.stale_while_revalidate) : int(backend['stale-while-revalidate']);
  const sie = noStale ? 0 : rules.stale_if_error !== undefined ? seconds(rules.stale_if_error) : int(backend['stale-if-error']);
  setOrDelete(directives, 'stale-while-revalidate', swr);
  setOrDelete(directives, 'stale-if-error', sie);

  const cacheControl = formatDirectives(directives);
  const policyView = { ...view };
  if (cacheControl) policyView['cache-control'] = cacheControl;
  else delete policyView['cache-control'];
  const policy = new CachePolicy(request, { status: shown.status, headers: policyView }, POLICY_OPTIONS);
  const fresh = policy.maxAge() > 0;
  const revalidatable = view['etag'] !== undefined || view['last-modified'] !== undefined;
  if (!fresh && swr === 0 && sie === 0 && !(revalidatable && explicit)) return undefined;
  const retainMs = revalidatable ? undefined : policy.timeToLive();
  if (retainMs !== undefined && retainMs <= 0) return undefined;
  return { policy, headers: kept, staleWhileRevalidateSec: swr, staleIfErrorSec: sie, revalidatable, retainMs };
}

/**
 * True when `admit` is certain to refuse, decided without building a policy: the response
 * says nothing about freshness (no Cache-Control, targeted field or Expires) and no route
 * rule could give it any (ttl, heuristic, stale-while-revalidate, stale-if-error). Most
 * answers of an API are like this; each would otherwise cost two CachePolicy objects.
 */
export function neverStored(headers: HeaderMap, rules: RouteRules, targetedFields: readonly string[]): boolean {
  if (rules.ttl || rules.heuristic !== undefined || rules.stale_while_revalidate !== undefined || rules.stale_if_error !== undefined) return false;
  if (headers['cache-control'] !== undefined || headers['expires'] !== undefined) return false;
  return !targetedFields.some((field) => headers[field] !== undefined);
}

/** The request's own Cache-Control directives, parsed by the library. */
export function requestDirectives(request: CachePolicy.Request): Directives {
  const directives = parseCacheControl(request.headers['cache-control'] as string | undefined);
  const pragma = request.headers['pragma'];
  if (!('cache-control' in request.headers) && typeof pragma === 'string' && /no-cache/i.test(pragma)) directives['no-cache'] = true;
  return directives;
}

/** The library reads single string values; repeated fields are joined as HTTP allows. */
export const policyHeaders = joined;

/**
 * RFC 9111 §4.2.2: a share of the time between Last-Modified and Date, capped, for statuses
 * that are heuristically cacheable or responses marked public; 0 when the route sets no heuristic.
 */
function heuristicSeconds(status: number, isPublic: boolean, view: Record<string, string>, rules: CacheRules): number {
  if (rules.heuristic === undefined || !(HEURISTIC_STATUSES.has(status) || isPublic)) return 0;
  const lastModified = parseHttpDate(view['last-modified']);
  if (lastModified === undefined) return 0;
  const date = parseHttpDate(view['date']) ?? Date.now();
  const lifetime = Math.floor(((date - lastModified) / 1000) * rules.heuristic);
  return Math.max(0, Math.min(lifetime, Math.floor(rules.heuristic_max / 1000)));
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
