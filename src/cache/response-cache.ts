// The response cache: a byte-bounded LRU (lru-cache with maxSize) of complete responses
// (status, headers, body), with RFC 9111 shared-cache semantics from http-cache-semantics.
//
// Layout of the store, one LRU for everything so one byte bound covers everything:
// - `key`            -> the entry, or, when the backend's answer has Vary, an index naming
//                       the varied request headers;
// - `key \0 digest`  -> one variant (digest of this request's values of those headers);
// - `!key`           -> a remembered backend failure (the route's error_ttl).
// Bodies are held in memory only (never temp files), at most the route's max_object each,
// so an evicted entry needs no clean-up and a stored body can be shared by any number of
// responses at once.
import type CachePolicy from 'http-cache-semantics';
import { LRUCache } from 'lru-cache';
import type { ErrorCode } from '../errors.js';
import type { CacheStatus } from './cache-status.js';
import type { BufferedBody } from '../http/body-buffer.js';
import type { HeaderMap } from '../http/headers.js';
import { admit, neverStored, type CacheRules, type RouteRules } from './admission.js';
import { selectingDigest, varyFields } from './request-key.js';
import { weakMatch } from './etag.js';

type RequestHeaders = Readonly<Record<string, string | string[] | undefined>>;

export interface CacheRequest {
  /** Host, normalized target and the route's key headers (hashed); see request-key.ts. */
  readonly key: string;
  /** Path and normalized query, for purging by glob. */
  readonly target: string;
  /** Host and target: what an unsafe request to the same URI invalidates, whatever the key headers. */
  readonly resource: string;
  /** The headers Sluice forwards for this request: Vary selects variants on these. */
  readonly headers: RequestHeaders;
  /** The request as the library sees it; HEAD reads GET entries, so the method is always GET. */
  readonly view: CachePolicy.Request;
}

/** The invalidation handle of a URI (RFC 9111 §4.4): host and normalized target. */
export function resourceOf(host: string | undefined, target: string): string {
  return `${host ?? ''} ${target}`;
}

export interface CacheEntry {
  readonly kind: 'entry';
  readonly storageKey: string;
  readonly target: string;
  readonly resource: string;
  readonly status: number;
  readonly headers: HeaderMap;
  readonly body: Buffer;
  readonly policy: CachePolicy;
  readonly staleWhileRevalidateSec: number;
  readonly staleIfErrorSec: number;
  readonly revalidatable: boolean;
  /** How long the store keeps it; undefined: until evicted, since it can be revalidated. */
  readonly retainMs: number | undefined;
  readonly size: number;
  /** The freshness numbers a plain fresh hit needs (see freshHit); undefined when it must ask the policy. */
  readonly plainFreshness: PlainFreshness | undefined;
  /** The headers as a client receives them (end-to-end, Via added, no Age) as a flat name/value list, built on the first hit. */
  clientHeaderList?: readonly string[];
}

/**
 * The library's freshness (RFC 9111 §4.2) reduced to numbers when the response does not
 * vary and has no must-revalidate: for a request without Cache-Control or Pragma of its
 * own, http-cache-semantics' answer is then exactly `maxAgeSec > age`.
 */
export interface PlainFreshness {
  readonly maxAgeSec: number;
  /** The policy's response time (epoch ms) and the Age the response arrived with. */
  readonly responseTime: number;
  readonly initialAgeSec: number;
}

export interface FailureEntry {
  readonly kind: 'failure';
  readonly target: string;
  readonly resource: string;
  readonly storedAt: number;
  readonly ttlMs: number;
  /** A backend 5xx response, or the Sluice error a failed backend call ended with. */
  readonly response: { readonly status: number; readonly headers: HeaderMap; readonly body: Buffer } | undefined;
  readonly errorCode: ErrorCode | undefined;
  readonly size: number;
}

interface VaryIndex {
  readonly kind: 'vary';
  readonly target: string;
  readonly resource: string;
  readonly fields: readonly string[];
  readonly size: number;
}

type Stored = CacheEntry | FailureEntry | VaryIndex;

export type Lookup =
  | { readonly kind: 'fresh'; readonly entry: CacheEntry }
  | { readonly kind: 'stale-while-revalidate'; readonly entry: CacheEntry }
  | { readonly kind: 'failure'; readonly failure: FailureEntry; readonly stale: CacheEntry | undefined }
  /** Must go to the backend; revalidate when the entry has validators, serve it on error within stale-if-error. */
  | { readonly kind: 'expired'; readonly entry: CacheEntry }
  | { readonly kind: 'miss' };

/** /status counter names of the cache outcomes (snake_case, plural where they always were). */
const COUNTER_OF: Readonly<Record<CacheStatus, CacheCounter>> = {
  hit: 'hits', miss: 'misses', stale: 'stale', revalidated: 'revalidated', 'error-stale': 'error_stale', bypass: 'bypass', 'error-cached': 'error_cached',
};
type CacheCounter = 'hits' | 'misses' | 'stale' | 'revalidated' | 'error_stale' | 'bypass' | 'error_cached';

/** RFC 9213 targeted fields obeyed by default, most specific first. */
export const DEFAULT_TARGETED_FIELDS: readonly string[] = ['sluice-cache-control', 'cdn-cache-control'];

/** Per-entry bookkeeping the byte bound also has to cover (policy object, key strings). */
const ENTRY_OVERHEAD = 512;

export class ResponseCache {
  private readonly lru: LRUCache<string, Stored>;
  private readonly refreshing = new Set<string>();
  /** Storage keys per resource, so an unsafe request invalidates every variant of its URI at once. */
  private readonly byResource = new Map<string, Set<string>>();
  private readonly counters: Record<CacheCounter | 'stored' | 'evictions' | 'purged' | 'invalidated', number> = {
    error_cached: 0, hits: 0, misses: 0, stale: 0, revalidated: 0, error_stale: 0, bypass: 0, stored: 0, evictions: 0, purged: 0, invalidated: 0,
  };
  private entryCount = 0;
  /** Lower-case targeted field names (RFC 9213) that decide caching here, most specific first. */
  readonly targetedFields: readonly string[];
  /**
   * The targeted fields addressed to Sluice alone, removed before the client. CDN-Cache-Control
   * is addressed to every CDN on the path, so one in front of Sluice still gets it.
   */
  readonly ownFields: readonly string[];
  private storedListener: ((request: CacheRequest, entry: CacheEntry) => void) | undefined;

  constructor(readonly maxBytes: number, targetedFields: readonly string[] = DEFAULT_TARGETED_FIELDS, private readonly now: () => number = Date.now) {
    this.targetedFields = targetedFields.map((f) => f.toLowerCase());
    this.ownFields = this.targetedFields.filter((f) => f !== 'cdn-cache-control');
    this.lru = new LRUCache<string, Stored>({
      maxSize: maxBytes,
      sizeCalculation: (value) => value.size,
      dispose: (value, key, reason) => {
        if (value.kind === 'entry') this.entryCount--;
        if (reason === 'evict') this.counters.evictions++;
        if (reason === 'set') return;
        const keys = this.byResource.get(value.resource);
        keys?.delete(key);
        if (keys?.size === 0) this.byResource.delete(value.resource);
      },
    });
  }

  /** Hears of every entry stored (a shared second tier writes them through). */
  onStore(listener: (request: CacheRequest, entry: CacheEntry) => void): void {
    this.storedListener = listener;
  }

  /**
   * The fast path of a fresh hit: a map lookup and two comparisons, no policy object. Only
   * for a request without Cache-Control or Pragma (the caller checks) on an entry with
   * plain freshness stored under the key itself; anything else is for `lookup`.
   */
  freshHit(key: string): { entry: CacheEntry; ageSec: number; ttlSec: number } | undefined {
    const stored = this.lru.get(key);
    if (stored?.kind !== 'entry' || !stored.plainFreshness) return undefined;
    const f = stored.plainFreshness;
    const ageSec = f.initialAgeSec + (Date.now() - f.responseTime) / 1000;
    const ttlSec = f.maxAgeSec - ageSec;
    return ttlSec > 0 ? { entry: stored, ageSec, ttlSec } : undefined;
  }

  lookup(request: CacheRequest, options: { useFailures: boolean }): Lookup {
    const entry = this.find(request);
    if (entry) {
      const evaluation = entry.policy.evaluateRequest(request.view);
      if (!evaluation.revalidation) return { kind: 'fresh', entry };
      if (evaluation.response && !evaluation.revalidation.synchronous) return { kind: 'stale-while-revalidate', entry };
    }
    const failure = options.useFailures ? this.lru.get(`!${request.key}`) : undefined;
    if (failure?.kind === 'failure') return { kind: 'failure', failure, stale: entry };
    return entry ? { kind: 'expired', entry } : { kind: 'miss' };
  }

  /** Seconds of freshness left (negative once stale; Cache-Status shows it floored) and the Age to send. */
  freshness(entry: CacheEntry): { ttl: number; age: number } {
    const age = entry.policy.age();
    return { ttl: entry.policy.maxAge() - age, age };
  }

  canServeOnError(entry: CacheEntry): boolean {
    return entry.staleIfErrorSec > 0 && -this.freshness(entry).ttl <= entry.staleIfErrorSec;
  }

  /** Stores a backend response when RFC 9111 and the route allow it; returns the entry, or undefined. */
  async store(request: CacheRequest, response: { status: number; headers: HeaderMap; body: BufferedBody }, rules: RouteRules & { max_object: number }): Promise<CacheEntry | undefined> {
    if (response.body.size > rules.max_object || response.body.size > this.maxBytes) return undefined;
    const entry = this.admitEntry(request, response.status, response.headers, rules, undefined);
    if (!entry) return undefined;
    const body = await response.body.toBuffer();
    return this.put(request, { ...entry, body, size: entry.size + body.length });
  }

  /**
   * A 304 answered our revalidation: the stored body stays, its headers are updated from
   * the 304 (RFC 9111 §4.3.4). Returns what to serve and whether it was stored again.
   */
  revalidated(request: CacheRequest, stale: CacheEntry, notModified: HeaderMap, rules: RouteRules): { entry: CacheEntry; stored: boolean } {
    const headers: HeaderMap = { ...stale.headers };
    for (const [name, value] of Object.entries(notModified)) {
      if (!KEEP_ON_REVALIDATION.has(name)) headers[name] = value;
    }
    const sameValidator = !notModified['etag'] || !stale.headers['etag'] || weakMatch(notModified['etag'], stale.headers['etag']);
    this.counters.revalidated++;
    const admitted = sameValidator ? this.admitEntry(request, stale.status, headers, rules, stale.body) : undefined;
    if (!admitted) {
      this.lru.delete(stale.storageKey);
      return { entry: { ...stale, headers, clientHeaderList: undefined }, stored: false };
    }
    return { entry: this.put(request, admitted), stored: true };
  }

  /** Remembers a backend failure for the route's error_ttl, so a failing backend is not hammered. */
  storeFailure(request: CacheRequest, failure: Pick<FailureEntry, 'response' | 'errorCode'>, ttlMs: number): void {
    const size = ENTRY_OVERHEAD + (failure.response ? failure.response.body.length + JSON.stringify(failure.response.headers).length : 0);
    if (size > this.maxBytes) return;
    const entry: FailureEntry = { kind: 'failure', target: request.target, resource: request.resource, storedAt: this.now(), ttlMs, size, ...failure };
    this.set(`!${request.key}`, entry, Math.max(1, Math.ceil(ttlMs)));
  }

  /**
   * After a successful unsafe request (RFC 9111 §4.4): every stored response for the URI
   * (all key headers, all variants, remembered failures) goes. Returns how many were stored.
   */
  invalidateResource(resource: string): number {
    const keys = this.byResource.get(resource);
    if (!keys) return 0;
    let removed = 0;
    for (const key of [...keys]) {
      if (this.lru.peek(key, { allowStale: true })?.kind !== 'vary') removed++;
      this.lru.delete(key);
    }
    this.byResource.delete(resource);
    this.counters.invalidated += removed;
    return removed;
  }

  /** Drops what is stored for a request (e.g. the backend now says no-store). */
  invalidate(entry: CacheEntry): void {
    this.lru.delete(entry.storageKey);
  }

  /** At most one background refresh per stored entry: false when one is already running. */
  beginRefresh(entry: CacheEntry): boolean {
    if (this.refreshing.has(entry.storageKey)) return false;
    this.refreshing.add(entry.storageKey);
    return true;
  }

  endRefresh(entry: CacheEntry): void {
    this.refreshing.delete(entry.storageKey);
  }

  /** Removes every entry whose target matches (all when no matcher); returns how many responses went. */
  purge(matches?: (target: string) => boolean): number {
    let purged = 0;
    for (const key of [...this.lru.keys()]) {
      const value = this.lru.peek(key, { allowStale: true });
      if (!value || (matches && !matches(value.target))) continue;
      if (value.kind !== 'vary') purged++;
      this.lru.delete(key);
    }
    this.counters.purged += purged;
    return purged;
  }

  /** Counts one request's outcome, named as everywhere else (cache-status.ts). */
  count(outcome: CacheStatus): void {
    this.counters[COUNTER_OF[outcome]]++;
  }

  stats(): Record<string, number> {
    return { entries: this.entryCount, bytes: this.lru.calculatedSize, max_bytes: this.maxBytes, refreshing: this.refreshing.size, ...this.counters };
  }

  private find(request: CacheRequest): CacheEntry | undefined {
    const stored = this.lru.get(request.key);
    if (stored?.kind === 'entry') return stored;
    if (stored?.kind !== 'vary') return undefined;
    const variant = this.lru.get(variantKey(request, stored.fields));
    return variant?.kind === 'entry' ? variant : undefined;
  }

  private admitEntry(request: CacheRequest, status: number, headers: HeaderMap, route: RouteRules, body: Buffer | undefined): CacheEntry | undefined {
    if (neverStored(headers, route, this.targetedFields)) return undefined;
    const rules: CacheRules = { ...route, targetedFields: this.targetedFields };
    const admission = admit(request.view, status, headers, rules);
    if (!admission) return undefined;
    const fields = varyFields(admission.headers);
    if (fields.includes('*')) return undefined;
    const storageKey = fields.length > 0 ? variantKey(request, fields) : request.key;
    const varyCost = fields.length > 0 ? 64 * fields.length : 0;
    const plainFreshness = fields.length === 0 ? plainFreshnessOf(admission.policy) : undefined;
    const size = ENTRY_OVERHEAD + storageKey.length + JSON.stringify(admission.headers).length + varyCost + (body?.length ?? 0);
    return {
      kind: 'entry', storageKey, target: request.target, resource: request.resource, status, headers: admission.headers, body: body ?? Buffer.alloc(0),
      policy: admission.policy, staleWhileRevalidateSec: admission.staleWhileRevalidateSec, staleIfErrorSec: admission.staleIfErrorSec,
      revalidatable: admission.revalidatable, retainMs: admission.retainMs, size, plainFreshness,
    };
  }

  private put(request: CacheRequest, entry: CacheEntry): CacheEntry {
    if (entry.size > this.maxBytes) return entry;
    const fields = varyFields(entry.headers);
    if (fields.length > 0) {
      this.set(request.key, { kind: 'vary', target: request.target, resource: request.resource, fields, size: ENTRY_OVERHEAD + request.key.length }, 0);
    }
    this.set(entry.storageKey, entry, entry.retainMs === undefined ? 0 : Math.max(1, Math.ceil(entry.retainMs)));
    if (this.lru.peek(entry.storageKey) === entry) {
      this.entryCount++;
      this.counters.stored++;
      this.storedListener?.(request, entry);
    }
    return entry;
  }

  private set(key: string, value: Stored, ttl: number): void {
    this.lru.set(key, value, { ttl });
    if (this.lru.peek(key, { allowStale: true }) !== value) return;
    let keys = this.byResource.get(value.resource);
    if (!keys) this.byResource.set(value.resource, (keys = new Set()));
    keys.add(key);
  }
}

/** Headers whose stored values describe the stored body, so a 304 never replaces them. */
const KEEP_ON_REVALIDATION = new Set(['content-length', 'content-encoding', 'transfer-encoding', 'content-range', 'set-cookie']);

function plainFreshnessOf(policy: CachePolicy): PlainFreshness | undefined {
  const stored = policy.toObject() as { t: number; rescc: Record<string, unknown> };
  if (stored.rescc['must-revalidate'] !== undefined) return undefined;
  return { maxAgeSec: policy.maxAge(), responseTime: stored.t, initialAgeSec: policy.age() - (Date.now() - stored.t) / 1000 };
}

function variantKey(request: CacheRequest, fields: readonly string[]): string {
  return `${request.key}\u0000${selectingDigest(request.headers, fields)}`;
}
