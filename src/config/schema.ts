// The configuration schema: the one place that says which keys exist, their types and
// their defaults. config/sluice.yaml documents the same keys for people; keep them in step.
// Durations become milliseconds and sizes become bytes here, so nothing downstream parses units.
import { z } from 'zod';
import { parseDuration, parseSize } from './units.js';
import { isCidr } from '../http/cidr.js';

const unitValue = (parse: (value: unknown) => number | string) =>
  z.union([z.string(), z.number()]).transform((value, ctx) => {
    const parsed = parse(value);
    if (typeof parsed === 'string') {
      ctx.addIssue({ code: 'custom', message: parsed });
      return z.NEVER;
    }
    return parsed;
  });

/** A duration in milliseconds; `fallback` (in YAML form) when the key is absent. */
const duration = (fallback: string) => unitValue(parseDuration).prefault(fallback);
/** A duration that stays undefined when absent (the route inherits a global value). */
const optionalDuration = () => unitValue(parseDuration).optional();
/** A size in bytes; `fallback` (in YAML form) when the key is absent. */
const size = (fallback: string) => unitValue(parseSize).prefault(fallback);
const optionalSize = () => unitValue(parseSize).optional();

const port = z.number().int().min(0).max(65535);

/** Queue priority classes, most urgent first. `background` is used for cache refreshes. */
export const PRIORITY_CLASSES = ['critical', 'high', 'normal', 'low', 'background'] as const;
export type PriorityClass = (typeof PRIORITY_CLASSES)[number];

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

const timeoutsSchema = z.strictObject({
  connect: duration('5s'),
  /** Close a kept-alive backend connection idle this long: below the backend's own
   *  keep-alive timeout (Gunicorn's default is 2s), so Sluice never reuses one it is closing. */
  idle: duration('1s'),
  response: duration('30s'),
  body: duration('30s'),
});

// No per-route connect timeout: backend connections are kept alive and shared by every
// route, so connecting is a property of the backend, not of one route's request.
const routeTimeoutsSchema = z.strictObject({
  response: optionalDuration(),
  body: optionalDuration(),
});

/** An HTTP field name (RFC 9110 token), as used in key_headers and vary_extra. */
const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be an HTTP header name');

const routeCacheSchema = z.strictObject({
  enabled: z.boolean().default(true),
  ttl: optionalDuration(),
  stale_while_revalidate: optionalDuration(),
  stale_if_error: optionalDuration(),
  error_ttl: optionalDuration(),
  max_object: size('8MiB'),
  vary_extra: z.array(headerName).default([]),
  allow_set_cookie: z.boolean().default(false),
  /**
   * Request headers hashed into the cache key. A request carrying Cookie or Authorization
   * uses the shared cache only when that header is listed here (or, for Cookie, with
   * ignore_cookies); otherwise it bypasses the cache both ways.
   */
  key_headers: z.array(headerName).optional(),
  /** Public assets: cookies are neither keyed on nor forwarded on the read path. */
  ignore_cookies: z.boolean().default(false),
  /** A client's `no-cache` may replace the stored answer; by default it is answered from a revalidation. */
  allow_client_refresh: z.boolean().default(false),
  /** Heuristic freshness (RFC 9111 §4.2.2) as a share of the time since Last-Modified, e.g. `10%`; off when absent. */
  heuristic: z.string().regex(/^\d+(\.\d+)?%$/, 'heuristic is a percentage, like 10%')
    .transform((v) => Number(v.slice(0, -1)) / 100).optional(),
  /** Cap on a heuristic freshness lifetime. */
  heuristic_max: duration('24h'),
});

const routeCoalesceSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Request headers that select the answer (hashed into the key); per-user reads are never merged by default. */
  key_headers: z.array(headerName).default(['Authorization', 'Cookie']),
  on_leader_error: z.enum(['share', 'retry_one']).default('share'),
  methods: z.array(z.enum(METHODS)).default(['GET', 'HEAD']),
  /** Requests with a body may coalesce (the body's hash joins the key). */
  allow_body: z.boolean().default(false),
});

const routeJobSchema = z.strictObject({
  max_slots: z.number().int().min(1).default(2),
  attempts: z.number().int().min(1).max(100).default(3),
  backoff: duration('1s'),
  timeout: duration('120s'),
  wait: duration('0'),
  result_ttl: duration('1h'),
  max_result: size('64MiB'),
  on_restart: z.enum(['rerun', 'fail']).default('rerun'),
  /** Jobs of this route queued or running at once; more are refused with 503 jobs_full. */
  max_queued: z.number().int().min(1).default(1000),
  /** Idempotency-Keys are scoped per route and per the hash of these request headers (the caller's credentials). */
  idempotency_scope: z.array(headerName).default(['Authorization', 'Cookie']),
});

const routeSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'route names use letters, digits, _ . -'),
  match: z.strictObject({
    path: z.string().startsWith('/', 'match.path must start with /').default('/*'),
    methods: z.array(z.enum(METHODS)).min(1).optional(),
    /** Match the path ignoring ASCII case (for backends that do). */
    case_insensitive: z.boolean().default(false),
    /** Other methods go on to later routes instead of 405 + Allow. */
    fallthrough: z.boolean().default(false),
  }).prefault({}),
  /** Refuse every matching request with 403 route_denied; nothing reaches the backend. */
  deny: z.boolean().default(false),
  /** Whether `Prefer: respond-async` turns a request into a job; default: jobs.prefer_async. */
  prefer_async: z.enum(['ignore', 'allow']).optional(),
  priority: z.enum(PRIORITY_CLASSES).default('normal'),
  /** Total time budget, counting queue time, body reads and the backend call. */
  timeout: duration('60s'),
  /** How long the request may wait for a slot; defaults to queue.timeout. */
  queue_timeout: optionalDuration(),
  max_slots: z.number().int().min(1).optional(),
  reserved_slots: z.number().int().min(0).default(0),
  max_body: optionalSize(),
  /** Stream the backend's response to the client instead of buffering it; holds the slot until the client has read it. */
  stream_response: z.boolean().default(false),
  timeouts: routeTimeoutsSchema.prefault({}),
  cache: routeCacheSchema.optional(),
  coalesce: routeCoalesceSchema.optional(),
  job: routeJobSchema.optional(),
});

export const configSchema = z.strictObject({
  listen: z.strictObject({
    host: z.string().default('0.0.0.0'),
    port: port.default(8080),
    /** Peers (CIDRs) whose X-Forwarded-*, Forwarded and X-Real-IP are believed; from others they are removed. */
    trusted_proxies: z.array(z.string().refine(isCidr, 'must be an IP address or CIDR, e.g. 10.0.0.0/8')).default([]),
  }).prefault({}),
  admin: z.strictObject({
    enabled: z.boolean().default(true),
    host: z.string().default('127.0.0.1'),
    port: port.default(9090),
    /** When set, every admin resource but /healthz and /readyz needs `Authorization: Bearer <token>`. */
    // An empty value (`${SLUICE_ADMIN_TOKEN:-}`) means no token.
    token: z.string().optional().transform((v) => (v === '' ? undefined : v))
      .pipe(z.string().min(16, 'admin.token must be at least 16 characters').optional()),
  }).prefault({}),
  http: z.strictObject({
    /** Encoded `/`, `\\`, NUL and invalid escapes in a path: refuse with 400 bad_path, or forward them encoded. */
    ambiguous_paths: z.enum(['reject', 'forward']).default('reject'),
    /** Header names with `_` are dropped (Gunicorn reads `X_Forwarded_For` as `X-Forwarded-For`). */
    allow_underscore_headers: z.boolean().default(false),
    /** Also send an RFC 7239 Forwarded header to the backend. */
    forwarded_header: z.boolean().default(false),
  }).prefault({}),
  backend: z.strictObject({
    servers: z.array(z.strictObject({
      url: z.url({ protocol: /^https?$/, error: 'backend server url must be http:// or https://' }),
      slots: z.number().int().min(1).max(10_000),
      /** Close connections whose requests waited inside the backend (Gunicorn gthread binds
       *  connections to workers); false keeps every connection until it goes idle. */
      recycle_queued: z.boolean().default(true),
    })).min(1, 'backend.servers needs at least one server'),
    timeouts: timeoutsSchema.prefault({}),
    /** After `failures` consecutive connect failures/timeouts a server is skipped for `cooldown`, then probed; 0 = off. */
    passive_health: z.strictObject({
      failures: z.number().int().min(0).default(3),
      cooldown: duration('10s'),
    }).prefault({}),
  }),
  queue: z.strictObject({
    max_waiting: z.number().int().min(0).default(10_000),
    timeout: duration('10s'),
    shed: z.enum(['early', 'timeout']).default('early'),
  }).prefault({}),
  limits: z.strictObject({
    max_body: size('10MiB'),
    max_header_bytes: size('16KiB'),
    /** Request and response bodies above this spill from memory to a temp file. */
    memory_buffer: size('1MiB'),
    max_response: size('256MiB'),
    client_body_timeout: duration('60s'),
    keep_alive_timeout: duration('75s'),
    temp_dir: z.string().optional(),
    /** Time for a client to send the whole request head (slowloris); else 408 and close. */
    header_timeout: duration('10s'),
    /** Header lines in one request head; more: 431. */
    max_header_count: z.number().int().min(1).default(100),
    /** Client connections open at once; over it, new connections are closed at once. */
    max_connections: z.number().int().min(1).default(10_000),
    /** Requests of one connection in progress at once (pipelining); later ones wait their turn unread. */
    pipeline_depth: z.number().int().min(1).default(16),
    /** Total bytes of bodies held in memory; beyond it bodies spill to disk. */
    buffer_memory: size('256MiB'),
    /** Total bytes of spilled bodies; beyond it requests are refused with 503 buffer_full. */
    buffer_disk: size('10GiB'),
    /** Per client address (the forwarded one behind a trusted proxy); 0 = no limit. */
    per_client: z.strictObject({
      max_connections: z.number().int().min(0).default(0),
      max_queued: z.number().int().min(0).default(0),
      max_jobs: z.number().int().min(0).default(0),
    }).prefault({}),
  }).prefault({}),
  routes: z.array(routeSchema).default([]),
  cache: z.strictObject({
    max_bytes: size('256MiB'),
    /** RFC 9213 targeted fields Sluice obeys, most specific first; each overrides Cache-Control and is never sent to clients. */
    targeted_fields: z.array(headerName).default(['Sluice-Cache-Control', 'CDN-Cache-Control']),
  }).prefault({}),
  jobs: z.strictObject({
    store: z.enum(['sqlite', 'memory']).default('sqlite'),
    path: z.string().default('./data/sluice-jobs.db'),
    prefix: z.string().regex(/^\/.*\/$/, 'jobs.prefix must start and end with /').default('/_sluice/jobs/'),
    /** Whether `Prefer: respond-async` makes a job on routes that do not say (routes with `job:` always do). */
    prefer_async: z.enum(['ignore', 'allow']).default('ignore'),
  }).prefault({}),
  tracing: z.strictObject({
    exporter: z.enum(['none', 'otlp', 'console']).default('none'),
    endpoint: z.string().default('http://127.0.0.1:4318/v1/traces'),
    protocol: z.enum(['http/protobuf', 'http/json']).default('http/protobuf'),
    sample_ratio: z.number().min(0).max(1).default(1),
    service_name: z.string().default('sluice'),
  }).prefault({}),
  logging: z.strictObject({
    level: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
    /** `stdout`, `stderr`, or a file path. */
    destination: z.string().default('stdout'),
    access_log: z.boolean().default(true),
  }).prefault({}),
  shutdown: z.strictObject({ grace: duration('30s') }).prefault({}),
  /** Scale-out: instances share slots, in-flight reads and status through Redis. Absent: everything is in-process. */
  cluster: z.strictObject({
    redis: z.string().regex(/^rediss?:\/\/[^\s]+$/, 'cluster.redis must be a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379/0'),
    /** Names this instance in /status, metrics and its demand in Redis; unique per instance; defaults to hostname-pid. */
    instance_id: z.string().regex(/^[A-Za-z0-9_.:-]{1,100}$/, 'instance_id uses letters, digits, _ . : -').optional(),
    /** A dead instance's slots return to the others within this time. */
    lease_ttl: duration('10s').pipe(z.number().min(500, 'lease_ttl must be at least 500ms')),
    /** Slots per backend server this instance may use while Redis is unreachable (never unlimited). */
    fallback_slots: z.number().int().min(0).default(1),
    /** Prefix of every Redis key and channel, so several Sluice clusters can share one Redis. */
    key_prefix: z.string().regex(/^[A-Za-z0-9_.:{}-]*$/).default('sluice:'),
    /** true: /readyz answers 503 while Redis is unreachable (by default the instance stays ready in fallback). */
    require_redis: z.boolean().default(false),
    /** Identical reads in flight on another instance are joined (up to the request's deadline). */
    coalesce: z.boolean().default(true),
    /** The shared cache tier in Redis behind each memory cache, bounded in bytes; 0 turns it off. */
    cache_max_bytes: size('256MiB'),
    /** Long jobs on BullMQ, shared by every instance; false keeps each instance's own job store. */
    jobs: z.boolean().default(true),
  }).optional(),
}).superRefine((config, ctx) => {
  const names = new Set<string>();
  config.routes.forEach((route, index) => {
    if (names.has(route.name)) ctx.addIssue({ code: 'custom', path: ['routes', index, 'name'], message: `duplicate route name "${route.name}"` });
    names.add(route.name);
  });
  const totalSlots = config.backend.servers.reduce((sum, s) => sum + s.slots, 0);
  const reserved = config.routes.reduce((sum, r) => sum + r.reserved_slots, 0);
  // Zod runs this even when a count was already refused; a sum over an invalid count
  // would only add a second, misleading error to the real one.
  const countsValid = config.backend.servers.every((s) => Number.isInteger(s.slots) && s.slots >= 1)
    && config.routes.every((r) => Number.isInteger(r.reserved_slots) && r.reserved_slots >= 0);
  if (countsValid && reserved > totalSlots) {
    ctx.addIssue({ code: 'custom', path: ['routes'], message: `reserved_slots add up to ${reserved}, more than the ${totalSlots} backend slots` });
  }
  config.routes.forEach((route, index) => {
    const valid = Number.isInteger(route.max_slots) && route.max_slots! >= 1 && Number.isInteger(route.reserved_slots) && route.reserved_slots >= 0;
    if (valid && route.reserved_slots > route.max_slots!) {
      ctx.addIssue({ code: 'custom', path: ['routes', index, 'reserved_slots'], message: 'reserved_slots cannot exceed max_slots' });
    }
  });
});

export type SluiceConfig = z.output<typeof configSchema>;
export type RouteConfig = SluiceConfig['routes'][number];
export type RouteCacheConfig = z.output<typeof routeCacheSchema>;
export type RouteCoalesceConfig = z.output<typeof routeCoalesceSchema>;
export type RouteJobConfig = z.output<typeof routeJobSchema>;
export type ClusterConfig = NonNullable<SluiceConfig['cluster']>;
export const jobDefaults = (): RouteJobConfig => routeJobSchema.parse({});
export const coalesceDefaults = (): RouteCoalesceConfig => routeCoalesceSchema.parse({});
export const cacheDefaults = (): RouteCacheConfig => routeCacheSchema.parse({});
