// Byte ranges (RFC 9110 §14) served by Sluice from a complete answer. On the read path the
// backend is asked for the whole representation (Range and If-Range are not forwarded), so
// one full answer is stored and serves every client's range. Only single ranges are
// answered with 206; a multi-range request gets the whole 200, which §14.2 allows.
import { BufferedBody } from '../http/body-buffer.js';
import type { HeaderMap } from '../http/headers.js';
import { strongMatch } from './etag.js';
import { parseHttpDate } from './http-date.js';

type RequestHeaders = Readonly<Record<string, string | string[] | undefined>>;

/** Request fields about ranges; removed from the backend request on the read path. */
export const RANGE_FIELDS = ['range', 'if-range'] as const;

export type RangeDecision =
  | { readonly kind: 'full' }
  | { readonly kind: 'partial'; readonly start: number; readonly end: number }
  | { readonly kind: 'unsatisfiable' };

/** What a GET with these headers gets from a complete 200 answer of `size` bytes. */
export function rangeDecision(request: RequestHeaders, answer: { status: number; headers: HeaderMap }, size: number): RangeDecision {
  const range = single(request['range']);
  if (range === undefined || answer.status !== 200) return { kind: 'full' };
  if (!ifRangeHolds(single(request['if-range']), answer.headers)) return { kind: 'full' };
  const m = /^bytes=([^,]*)$/i.exec(range.trim());
  if (!m) return { kind: 'full' }; // other units, or several ranges: the whole representation
  const spec = /^\s*(\d*)\s*-\s*(\d*)\s*$/.exec(m[1]!);
  if (!spec || (spec[1] === '' && spec[2] === '')) return { kind: 'full' };
  if (spec[1] === '') {
    // Suffix: the last N bytes.
    const length = Number(spec[2]);
    if (length === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - length), end: size - 1 };
  }
  const start = Number(spec[1]);
  if (spec[2] !== '' && Number(spec[2]) < start) return { kind: 'full' }; // invalid range-spec: ignore the field
  if (start >= size) return { kind: 'unsatisfiable' };
  const last = spec[2] === '' ? size - 1 : Number(spec[2]);
  return { kind: 'partial', start, end: Math.min(last, size - 1) };
}

/** The answer for the client: 206 with the slice, 416, or the answer itself. */
export function rangedAnswer<R extends { status: number; headers: HeaderMap; body: BufferedBody }>(
  request: RequestHeaders, answer: R,
): R | { status: number; headers: HeaderMap; body: BufferedBody } {
  const size = answer.body.size;
  const decision = rangeDecision(request, answer, size);
  if (decision.kind === 'full') return answer;
  const headers: HeaderMap = { ...answer.headers };
  delete headers['content-length'];
  if (decision.kind === 'unsatisfiable') {
    headers['content-range'] = `bytes */${size}`;
    delete headers['content-type'];
    return { status: 416, headers, body: BufferedBody.empty() };
  }
  headers['content-range'] = `bytes ${decision.start}-${decision.end}/${size}`;
  return { status: 206, headers, body: answer.body.slice(decision.start, decision.end) };
}

/**
 * If-Range (RFC 9110 §13.1.5): the range applies only if the validator still matches —
 * a strong ETag compared strongly, or a date equal to a Last-Modified.
 */
function ifRangeHolds(ifRange: string | undefined, headers: HeaderMap): boolean {
  if (ifRange === undefined) return true;
  const value = ifRange.trim();
  if (value.startsWith('"') || value.startsWith('W/')) {
    const etag = headers['etag'];
    return etag !== undefined && strongMatch(value, etag);
  }
  const date = parseHttpDate(value);
  const modified = parseHttpDate(single(headers['last-modified']));
  return date !== undefined && modified !== undefined && date === modified;
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/**
 * A 206 whose one range is the whole representation, as the complete 200 it is (RFC 9111
 * §3.4), so it can be stored and serve every range. Sluice does not forward Range on the
 * read path, so a backend that answers 206 anyway is taken at its word only when nothing is
 * missing; any other 206 is passed on as it is and not stored.
 */
export function wholeRepresentation<R extends { status: number; headers: HeaderMap; body: BufferedBody }>(response: R): R | undefined {
  if (response.status !== 206) return undefined;
  const m = /^bytes 0-(\d+)\/(\d+)$/.exec(single(response.headers['content-range'])?.trim() ?? '');
  const size = response.body.size;
  if (!m || Number(m[1]) !== size - 1 || Number(m[2]) !== size) return undefined;
  const headers: HeaderMap = { ...response.headers };
  delete headers['content-range'];
  return { ...response, status: 200, headers };
}
