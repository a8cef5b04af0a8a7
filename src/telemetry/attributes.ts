// Names shared by spans, metrics and log lines. HTTP attributes follow the OpenTelemetry
// semantic conventions (stable set); Sluice's own live in the `sluice.` namespace. Values
// are the closed unions of the pipeline (CacheStatus, CoalesceRole, error codes) verbatim.
export {
  ATTR_CLIENT_ADDRESS, ATTR_ERROR_TYPE, ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE, ATTR_SERVER_ADDRESS, ATTR_SERVER_PORT, ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION,
  ATTR_URL_FULL, ATTR_URL_PATH, ATTR_URL_SCHEME,
} from '@opentelemetry/semantic-conventions';

export const ATTR_SLUICE_REQUEST_ID = 'sluice.request.id';
export const ATTR_SLUICE_QUEUE_WAIT_MS = 'sluice.queue.wait_ms';
/** 1-based position at enqueue; 0 when a slot was free at once. */
export const ATTR_SLUICE_QUEUE_POSITION = 'sluice.queue.position';
export const ATTR_SLUICE_PRIORITY = 'sluice.priority';
export const ATTR_SLUICE_COALESCE_ROLE = 'sluice.coalesce.role';
export const ATTR_SLUICE_COALESCE_WAIT_MS = 'sluice.coalesce.wait_ms';
export const ATTR_SLUICE_CACHE_STATUS = 'sluice.cache.status';
export const ATTR_SLUICE_BACKEND_SERVER = 'sluice.backend.server';
export const ATTR_SLUICE_JOB_ID = 'sluice.job.id';
export const ATTR_SLUICE_JOB_ATTEMPT = 'sluice.job.attempt';
export const ATTR_SLUICE_JOB_OUTCOME = 'sluice.job.outcome';
export const ATTR_SLUICE_BODY_BYTES = 'sluice.body.bytes';
/** On a job resource request (status, result, cancel): the route the job belongs to. */
export const ATTR_SLUICE_JOB_ROUTE = 'sluice.job.route';

/** Child span names: one per phase that can take time. */
export const SPAN_QUEUE = 'sluice.queue';
export const SPAN_COALESCE = 'sluice.coalesce';
export const SPAN_READ_BODY = 'sluice.read_body';
export const SPAN_JOB_SUBMIT = 'sluice.job.submit';
export const SPAN_JOB_ATTEMPT = 'sluice.job.attempt';

/** The instrumentation scope of every Sluice span. */
export const TRACER_NAME = 'sluice';
export const SLUICE_VERSION = '0.1.0';

/**
 * The `route` label of metrics and log lines: the matched route, or for a job resource the
 * job's route, so a failed job's answers are counted where its work belongs.
 */
export function routeLabel(ctx: { readonly route?: { readonly name: string } | undefined; readonly annotations: Readonly<Record<string, unknown>> }): string {
  const jobRoute = ctx.annotations[ATTR_SLUICE_JOB_ROUTE];
  return ctx.route?.name ?? (typeof jobRoute === 'string' ? jobRoute : 'unmatched');
}
