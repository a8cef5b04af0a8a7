// Compiles the validated config once: route globs become regular expressions, route
// defaults are resolved against the global ones, and everything is frozen. The result is
// what every component receives through its constructor.
import {
  cacheDefaults, coalesceDefaults, jobDefaults, PRIORITY_CLASSES, type PriorityClass, type RouteCacheConfig,
  type RouteCoalesceConfig, type RouteJobConfig, type SluiceConfig,
} from './schema.js';

export interface CompiledRoute {
  readonly name: string;
  readonly pathPattern: string;
  readonly pathRegex: RegExp;
  readonly methods: ReadonlySet<string> | null;
  /** Other methods go on to later routes instead of 405. */
  readonly fallthrough: boolean;
  /** Every request this route matches is refused with 403. */
  readonly deny: boolean;
  /** `Prefer: respond-async` makes a job here (routes with `job` always make jobs). */
  readonly preferAsync: boolean;
  readonly priority: PriorityClass;
  /** 0 = most urgent; indexes PRIORITY_CLASSES. */
  readonly priorityRank: number;
  readonly totalTimeoutMs: number;
  readonly queueTimeoutMs: number;
  readonly maxSlots: number | undefined;
  readonly reservedSlots: number;
  readonly maxBodyBytes: number;
  readonly streamResponse: boolean;
  readonly timeouts: { readonly responseMs: number; readonly bodyMs: number };
  readonly cache: Readonly<RouteCacheConfig>;
  /** Who may use the shared cache and what selects a stored answer; see cacheKeyPlan. */
  readonly cacheKey: CacheKeyPlan;
  readonly coalesce: Readonly<RouteCoalesceConfig>;
  /** Set on routes whose every request becomes a job. */
  readonly job: Readonly<RouteJobConfig> | undefined;
  /** `job`, or the defaults for a request that becomes a job through Prefer: respond-async. */
  readonly jobSettings: Readonly<RouteJobConfig>;
}

/**
 * The cache key of a route: request headers hashed into it (lower-case, sorted) and what a
 * request with credentials does. `bypass`: neither reads nor writes the shared cache;
 * `keyed`: the header is in the key; `ignored` (Cookie with ignore_cookies): not forwarded,
 * so the stored answer cannot depend on it.
 */
export interface CacheKeyPlan {
  readonly headers: readonly string[];
  readonly authorization: 'bypass' | 'keyed';
  readonly cookie: 'bypass' | 'keyed' | 'ignored';
}

export function cacheKeyPlan(cache: RouteCacheConfig): CacheKeyPlan {
  const named = [...(cache.key_headers ?? []), ...cache.vary_extra].map((n) => n.toLowerCase());
  const headers = [...new Set(cache.ignore_cookies ? named.filter((n) => n !== 'cookie') : named)].sort();
  return {
    headers,
    authorization: headers.includes('authorization') ? 'keyed' : 'bypass',
    cookie: cache.ignore_cookies ? 'ignored' : headers.includes('cookie') ? 'keyed' : 'bypass',
  };
}

export interface CompiledConfig {
  readonly raw: Readonly<SluiceConfig>;
  readonly routes: readonly CompiledRoute[];
}

export const DEFAULT_ROUTE_NAME = 'default';

export function compileConfig(config: SluiceConfig): CompiledConfig {
  const routes = config.routes.map((route): CompiledRoute => ({
    name: route.name,
    pathPattern: route.match.path,
    pathRegex: globToRegex(route.match.path, route.match.case_insensitive),
    methods: route.match.methods ? new Set(route.match.methods) : null,
    fallthrough: route.match.fallthrough,
    deny: route.deny,
    preferAsync: (route.prefer_async ?? config.jobs.prefer_async) === 'allow',
    priority: route.priority,
    priorityRank: PRIORITY_CLASSES.indexOf(route.priority),
    totalTimeoutMs: route.timeout,
    queueTimeoutMs: Math.min(route.queue_timeout ?? config.queue.timeout, route.timeout),
    maxSlots: route.max_slots,
    reservedSlots: route.reserved_slots,
    maxBodyBytes: route.max_body ?? config.limits.max_body,
    streamResponse: route.stream_response,
    timeouts: {
      responseMs: route.timeouts.response ?? config.backend.timeouts.response,
      bodyMs: route.timeouts.body ?? config.backend.timeouts.body,
    },
    cache: Object.freeze(route.cache ?? cacheDefaults()),
    cacheKey: cacheKeyPlan(route.cache ?? cacheDefaults()),
    coalesce: Object.freeze(route.coalesce ?? coalesceDefaults()),
    job: route.job ? Object.freeze(route.job) : undefined,
    jobSettings: Object.freeze(route.job ?? jobDefaults()),
  }));
  const hasCatchAll = routes.some((r) => r.pathPattern === '/*' && r.methods === null);
  if (!hasCatchAll && !routes.some((r) => r.name === DEFAULT_ROUTE_NAME)) {
    routes.push(defaultRoute(config));
  }
  return deepFreeze({ raw: config, routes });
}

/** Requests no configured route matches are still proxied, with the global defaults. */
function defaultRoute(config: SluiceConfig): CompiledRoute {
  return {
    name: DEFAULT_ROUTE_NAME,
    pathPattern: '/*',
    pathRegex: globToRegex('/*'),
    methods: null,
    fallthrough: false,
    deny: false,
    preferAsync: config.jobs.prefer_async === 'allow',
    priority: 'normal',
    priorityRank: PRIORITY_CLASSES.indexOf('normal'),
    totalTimeoutMs: Math.max(60_000, config.queue.timeout),
    queueTimeoutMs: config.queue.timeout,
    maxSlots: undefined,
    reservedSlots: 0,
    maxBodyBytes: config.limits.max_body,
    streamResponse: false,
    timeouts: {
      responseMs: config.backend.timeouts.response,
      bodyMs: config.backend.timeouts.body,
    },
    cache: cacheDefaults(),
    cacheKey: cacheKeyPlan(cacheDefaults()),
    coalesce: coalesceDefaults(),
    job: undefined,
    jobSettings: jobDefaults(),
  };
}

/** `*` matches any run of characters, including `/`; everything else is literal. */
export function globToRegex(glob: string, caseInsensitive = false): RegExp {
  const escaped = glob.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*');
  // `s`: the decoded path may hold a newline (%0A), which `.` must match like any character.
  return new RegExp(`^${escaped}$`, caseInsensitive ? 'is' : 's');
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value) && !(value instanceof RegExp) && !(value instanceof Set)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
