// The error catalogue: every error Sluice itself answers with. Codes are stable (users
// grep logs and alert on them); each maps to exactly one HTTP status. `source` says who
// caused it, `retryable` whether a client may safely try again later.

export type ErrorSource = 'client' | 'gateway' | 'backend';

interface CatalogueEntry {
  readonly status: number;
  readonly source: ErrorSource;
  readonly retryable: boolean;
  readonly message: string;
}

export const ERROR_CATALOGUE = {
  bad_request: { status: 400, source: 'client', retryable: false, message: 'Malformed request' },
  bad_path: { status: 400, source: 'client', retryable: false, message: 'Ambiguous or invalid request path' },
  route_denied: { status: 403, source: 'client', retryable: false, message: 'Denied by route rule' },
  not_found: { status: 404, source: 'client', retryable: false, message: 'No such resource' },
  method_not_allowed: { status: 405, source: 'client', retryable: false, message: 'Method not allowed on this route' },
  body_too_large: { status: 413, source: 'client', retryable: false, message: 'Request body exceeds the route limit' },
  headers_too_large: { status: 431, source: 'client', retryable: false, message: 'Request headers too large' },
  client_closed: { status: 499, source: 'client', retryable: false, message: 'Client closed the connection' },
  header_timeout: { status: 408, source: 'client', retryable: true, message: 'Request head was not received in time' },
  client_body_timeout: { status: 408, source: 'client', retryable: true, message: 'Request body was not received in time' },
  queue_full: { status: 503, source: 'gateway', retryable: true, message: 'Queue is full' },
  queue_timeout: { status: 503, source: 'gateway', retryable: true, message: 'Waited for a slot past the queue timeout' },
  queue_shed: { status: 503, source: 'gateway', retryable: true, message: 'Estimated wait for a slot exceeds the queue timeout' },
  buffer_full: { status: 503, source: 'gateway', retryable: true, message: 'Request body buffers are full (limits.buffer_disk)' },
  shutting_down: { status: 503, source: 'gateway', retryable: true, message: 'Gateway is shutting down' },
  upstream_connect_failed: { status: 502, source: 'backend', retryable: true, message: 'Backend refused or unreachable' },
  upstream_reset: { status: 502, source: 'backend', retryable: true, message: 'Backend closed the connection' },
  upstream_bad_response: { status: 502, source: 'backend', retryable: false, message: 'Backend sent an invalid response' },
  upstream_response_too_large: { status: 502, source: 'backend', retryable: false, message: 'Backend response exceeds the buffer limit' },
  connect_timeout: { status: 504, source: 'backend', retryable: true, message: 'Backend did not accept the connection in time' },
  response_timeout: { status: 504, source: 'backend', retryable: true, message: 'Backend did not send response headers in time' },
  body_timeout: { status: 504, source: 'backend', retryable: true, message: 'Backend stalled while sending the response body' },
  total_timeout: { status: 504, source: 'backend', retryable: true, message: 'Request exceeded the route total timeout' },
  not_cached: { status: 504, source: 'client', retryable: false, message: 'only-if-cached: no stored response can answer this request' },
  job_not_found: { status: 404, source: 'client', retryable: false, message: 'No such job' },
  job_not_finished: { status: 409, source: 'client', retryable: true, message: 'Job has not finished' },
  job_result_too_large: { status: 502, source: 'backend', retryable: false, message: 'Job result exceeds job.max_result' },
  job_canceled: { status: 409, source: 'client', retryable: false, message: 'Job was canceled' },
  job_interrupted: { status: 500, source: 'gateway', retryable: true, message: 'Job was running when Sluice stopped' },
  job_store_failed: { status: 500, source: 'gateway', retryable: true, message: 'Job could not be stored' },
  upstream_unavailable: { status: 502, source: 'backend', retryable: true, message: 'Backend answered 502, 503 or 504' },
  idempotency_key_reused: { status: 422, source: 'client', retryable: false, message: 'Idempotency-Key was already used for a different request' },
  jobs_full: { status: 503, source: 'gateway', retryable: true, message: 'The route has job.max_queued jobs queued or running' },
  client_limit: { status: 429, source: 'client', retryable: true, message: 'This client is over its per-client limit' },
  internal: { status: 500, source: 'gateway', retryable: false, message: 'Internal gateway error' },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export class SluiceError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly source: ErrorSource;
  readonly retryable: boolean;
  /** Seconds a client should wait before retrying; set on every gateway 503. */
  retryAfterSeconds: number | undefined;
  /** Response headers the error's meaning needs, e.g. `allow` on a 405. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown; retryAfterSeconds?: number; headers?: Record<string, string> }) {
    const entry: CatalogueEntry = ERROR_CATALOGUE[code];
    super(detail ? `${entry.message}: ${detail}` : entry.message, { cause: options?.cause });
    this.name = 'SluiceError';
    this.code = code;
    this.status = entry.status;
    this.source = entry.source;
    this.retryable = entry.retryable;
    this.retryAfterSeconds = options?.retryAfterSeconds;
    this.headers = options?.headers ?? {};
  }
}

export function isSluiceError(err: unknown): err is SluiceError {
  return err instanceof SluiceError;
}

/** Anything thrown that is not already a SluiceError is an internal fault. */
export function toSluiceError(err: unknown): SluiceError {
  if (isSluiceError(err)) return err;
  return new SluiceError('internal', undefined, { cause: err });
}

/** The JSON body of every Sluice-generated error response. */
export function errorBody(err: SluiceError, requestId: string): string {
  return JSON.stringify({
    error: { code: err.code, message: err.message, source: err.source, retryable: err.retryable, request_id: requestId },
  }) + '\n';
}

/**
 * A reason Sluice cannot start that the operator can fix (a port in use, a job store held
 * by another process): printed as one line, exit 1, no stack trace.
 */
export class StartupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StartupError';
  }
}

const LISTEN_FAILURES: Record<string, string> = {
  EADDRINUSE: 'address already in use (another process holds the port)',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'address not available on this machine',
};

/** Turns a failed listen() into a StartupError naming the address and the setting to change. */
export function listenFailure(err: unknown, what: string, setting: string): unknown {
  const { code, address, port } = err as NodeJS.ErrnoException & { address?: string; port?: number };
  const reason = code !== undefined ? LISTEN_FAILURES[code] : undefined;
  if (!reason) return err;
  return new StartupError(`cannot listen for the ${what} on ${address ?? '?'}:${port ?? '?'}: ${reason}; choose another with ${setting}`, { cause: err });
}
