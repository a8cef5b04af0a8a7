// One backend call: sends a fully buffered request and (unless streaming) reads the whole
// response before returning, so the caller can release the slot the moment the backend is
// done. Never retries: a retry of a non-idempotent request could run the work twice.
import { SluiceError, type ErrorCode } from '../errors.js';
import { BufferedBody } from '../http/body-buffer.js';
import type { HeaderMap } from '../http/headers.js';
import type { ProxyResponse } from '../http/proxy-response.js';
import type { ConnectionBalancer } from './connection-balancer.js';

export interface UpstreamCall {
  /** Requests with the same key should take about as long (the route's name). */
  readonly serviceKey: string;
  readonly method: string;
  /** Path and query as sent to the backend. */
  readonly path: string;
  readonly headers: HeaderMap;
  readonly body: BufferedBody | undefined;
  /** Aborting it cancels the call; its reason (a SluiceError) says why. */
  readonly signal: AbortSignal;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  /** Stream the body to the caller instead of buffering it. */
  readonly stream: boolean;
  readonly buffer: { readonly memoryLimit: number; readonly maxBytes: number; readonly tempDir: string | undefined };
  /** Interim (1xx) responses before the final one, e.g. 103 Early Hints. */
  readonly onInterim?: (status: number, headers: HeaderMap) => void;
}

export async function callBackend(server: ConnectionBalancer, call: UpstreamCall): Promise<ProxyResponse> {
  const headers: HeaderMap = { ...call.headers };
  const hasBody = call.body !== undefined && (call.body.size > 0 || !['GET', 'HEAD', 'DELETE', 'OPTIONS'].includes(call.method));
  if (hasBody) headers['content-length'] = String(call.body!.size);
  let response;
  try {
    response = await server.request({
      method: call.method as 'GET',
      path: call.path,
      headers,
      body: hasBody ? (call.body!.buffer ?? call.body!.stream()) : null,
      signal: call.signal,
      headersTimeout: call.headersTimeoutMs,
      bodyTimeout: call.bodyTimeoutMs,
      onInfo: call.onInterim ? (info) => call.onInterim!(info.statusCode, info.headers as HeaderMap) : undefined,
    }, call.serviceKey);
  } catch (err) {
    throw upstreamError(err, call.signal);
  }
  const responseHeaders = response.headers as HeaderMap;
  // HEAD, 204 and 304 have no body whatever their Content-Length says (RFC 9110 §6.4.1);
  // reading one would fail as a length mismatch.
  const bodyless = call.method === 'HEAD' || response.statusCode === 204 || response.statusCode === 304;
  if (call.stream || bodyless) {
    if (bodyless) await response.body.dump().catch(() => {});
    return { status: response.statusCode, headers: responseHeaders, body: bodyless ? BufferedBody.empty() : response.body };
  }
  try {
    const body = await BufferedBody.collect(response.body, {
      memoryLimit: call.buffer.memoryLimit,
      maxBytes: call.buffer.maxBytes,
      tempDir: call.buffer.tempDir,
      onLimit: () => new SluiceError('upstream_response_too_large', `more than ${call.buffer.maxBytes} bytes`),
    });
    return { status: response.statusCode, headers: responseHeaders, body };
  } catch (err) {
    throw upstreamError(err, call.signal);
  }
}

const UNDICI_CODES: Record<string, ErrorCode> = {
  UND_ERR_CONNECT_TIMEOUT: 'connect_timeout',
  UND_ERR_HEADERS_TIMEOUT: 'response_timeout',
  UND_ERR_BODY_TIMEOUT: 'body_timeout',
  UND_ERR_SOCKET: 'upstream_reset',
  UND_ERR_CLOSED: 'upstream_reset',
  UND_ERR_HEADERS_OVERFLOW: 'upstream_bad_response',
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: 'upstream_bad_response',
  HPE_INVALID_CONSTANT: 'upstream_bad_response',
  ECONNREFUSED: 'upstream_connect_failed',
  ENOTFOUND: 'upstream_connect_failed',
  EHOSTUNREACH: 'upstream_connect_failed',
  ENETUNREACH: 'upstream_connect_failed',
  EAI_AGAIN: 'upstream_connect_failed',
  ECONNRESET: 'upstream_reset',
  EPIPE: 'upstream_reset',
};

/** Maps what undici threw to the catalogue; an abort keeps the reason it was aborted with. */
export function upstreamError(err: unknown, signal: AbortSignal): SluiceError {
  if (err instanceof SluiceError) return err;
  if (signal.aborted && signal.reason instanceof SluiceError) return signal.reason;
  const code = (err as { code?: string }).code ?? '';
  const mapped = UNDICI_CODES[code] ?? (code.startsWith('HPE_') ? 'upstream_bad_response' : undefined);
  // undici's message names the backend's address (`connect ECONNREFUSED 10.0.3.7:8000`);
  // clients get the catalogue message, the cause keeps the detail for logs.
  return new SluiceError(mapped ?? 'upstream_reset', undefined, { cause: err });
}
