// How Sluice names one read, for the cache and for coalescing alike: the host, the path
// with its query parameters in a canonical order, and a digest of the request headers
// the route says the answer depends on. Header values only ever enter a key as a hash,
// so a key (in a log, in /status) never carries a credential.
import { createHash } from 'node:crypto';

type RequestHeaders = Readonly<Record<string, string | string[] | undefined>>;

/** One `name=value` of characters URLSearchParams writes back unchanged: already canonical. */
const SINGLE_PLAIN_PARAM = /^\?[A-Za-z0-9\-._*]+=[A-Za-z0-9\-._*]*$/;

/** Path plus query with parameters sorted by name (stable, so repeated names keep their order). */
export function normalizedTarget(pathname: string, search: string): string {
  if (search.length <= 1) return pathname;
  if (SINGLE_PLAIN_PARAM.test(search)) return pathname + search;
  const params = new URLSearchParams(search);
  params.sort();
  const query = params.toString();
  return query ? `${pathname}?${query}` : pathname;
}

/**
 * sha256 over `name: value` lines of the named headers (absent ones included as absent);
 * '' when none of them is present, so the common request (no credentials, no varied
 * header) hashes nothing. Names are compared lower-case; `names` of a route are fixed, so
 * '' never stands for two different sets of values.
 */
export function headerDigest(headers: RequestHeaders, names: readonly string[]): string {
  if (!names.some((n) => headers[n.toLowerCase()] !== undefined)) return '';
  const hash = createHash('sha256');
  for (const name of [...new Set(names.map((n) => n.toLowerCase()))].sort()) {
    const value = headers[name];
    hash.update(`${name}\u0000${value === undefined ? '\u0001' : [value].flat().join(', ')}\n`);
  }
  return hash.digest('base64url').slice(0, 22);
}

export interface ReadIdentity {
  readonly method: string;
  readonly host: string | undefined;
  readonly target: string;
  /** headerDigest of the headers that select the answer. */
  readonly headers: string;
  /** Digest of the request body, when a route lets requests with bodies share an answer. */
  readonly body?: string;
}

export function readKey(id: ReadIdentity): string {
  return [id.method, id.host ?? '', id.target, id.headers, id.body ?? ''].join(' ');
}

/** The request headers a response varies on (its Vary field names, lower-case); `*` included as it is. */
export function varyFields(headers: Readonly<Record<string, string | string[] | undefined>>): string[] {
  const vary = headers['vary'];
  if (vary === undefined) return [];
  return [vary].flat().join(',').split(',').map((f) => f.trim().toLowerCase()).filter((f) => f.length > 0);
}

/**
 * Headers whose list members are compared as a set, case-insensitively: a different
 * order, case or spacing of the same preferences does not make another variant.
 */
const SET_VALUED = new Set(['accept-language', 'accept-encoding', 'accept', 'accept-charset']);

/**
 * The digest that selects a Vary variant (RFC 9111 §4.1): each selecting header's value
 * normalized — repeated fields combined, whitespace around commas and at the ends removed,
 * and the Accept-* lists sorted and lower-cased — so equivalent requests share one variant.
 */
export function selectingDigest(headers: RequestHeaders, fields: readonly string[]): string {
  const normalized: Record<string, string | undefined> = {};
  for (const field of fields) normalized[field] = selectingValue(field, headers[field]);
  return headerDigest(normalized, fields);
}

export function selectingValue(field: string, value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  const members = [value].flat().join(',').split(',').map((m) => m.trim().replace(/\s*;\s*/g, ';')).filter((m) => m.length > 0);
  return SET_VALUED.has(field) ? members.map((m) => m.toLowerCase()).sort().join(',') : members.join(',');
}
