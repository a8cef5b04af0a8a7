// Conditional requests from clients, answered by Sluice. On the read path the backend
// never sees a client's If-None-Match / If-Modified-Since (one full answer serves every
// client and can be stored); each client's validators are checked here against that answer
// (RFC 9110 §13.1.2, §13.1.3, §13.2.2: If-None-Match wins over If-Modified-Since). An
// answer without Last-Modified is compared by its Date (RFC 9111 §4.3.2).
import { BufferedBody } from '../http/body-buffer.js';
import type { HeaderMap } from '../http/headers.js';
import { weakMatch } from './etag.js';
import { parseHttpDate } from './http-date.js';
import { rangedAnswer } from './range.js';

type RequestHeaders = Readonly<Record<string, string | string[] | undefined>>;

/** Client validators; removed from the backend request on the read path. */
export const CLIENT_VALIDATORS = ['if-none-match', 'if-modified-since'] as const;

/** Fields a 304 carries (RFC 9110 §15.4.5), plus Age and Last-Modified. */
const NOT_MODIFIED_FIELDS = ['cache-control', 'content-location', 'date', 'etag', 'expires', 'vary', 'last-modified', 'age'];

export interface Answer {
  readonly status: number;
  readonly headers: HeaderMap;
}

/** True when a 200 answer matches the client's validators, so a 304 says the same. */
export function isNotModified(request: RequestHeaders, answer: Answer): boolean {
  if (answer.status !== 200) return false;
  const ifNoneMatch = single(request['if-none-match']);
  if (ifNoneMatch !== undefined) {
    const etag = single(answer.headers['etag']);
    if (etag === undefined) return false;
    if (ifNoneMatch.trim() === '*') return true;
    return ifNoneMatch.split(',').some((candidate) => weakMatch(candidate, etag));
  }
  const since = parseHttpDate(single(request['if-modified-since']));
  const modified = parseHttpDate(single(answer.headers['last-modified']) ?? single(answer.headers['date']));
  return since !== undefined && modified !== undefined && modified <= since;
}

/**
 * What this client gets from a complete answer: a 304 when its validators match, the
 * byte range it asked for (GET only), or the answer itself.
 */
export function clientAnswer<R extends Answer & { body: BufferedBody }>(request: RequestHeaders, method: string, answer: R): R | { status: number; headers: HeaderMap; body: BufferedBody } {
  if (isNotModified(request, answer)) return notModifiedAnswer(answer);
  return method === 'GET' ? rangedAnswer(request, answer) : answer;
}

export function notModifiedAnswer(answer: Answer): { status: 304; headers: HeaderMap; body: BufferedBody } {
  const headers: HeaderMap = {};
  for (const name of NOT_MODIFIED_FIELDS) {
    const value = answer.headers[name];
    if (value !== undefined) headers[name] = value;
  }
  return { status: 304, headers, body: BufferedBody.empty() };
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}
