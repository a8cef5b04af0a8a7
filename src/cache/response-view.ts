// What http-cache-semantics is shown of a response, and of a request. The library makes the
// RFC 9111 freshness decisions; this layer fixes what it gets wrong, upstream-style, by
// rewriting its input instead of re-implementing its arithmetic:
// - directive names are case-insensitive (RFC 9111 §5.2); the library compares them as sent;
//   quoted values may contain commas, which the library splits on;
// - Expires and Date must be HTTP-dates (RFC 9110 §5.6.7); an invalid or repeated Expires
//   means "already expired" (RFC 9111 §5.3), an invalid Date is ignored; the first member
//   of Age must be a non-negative integer (RFC 9111 §5.1), or Age is ignored;
// - RFC 9213 targeted fields (Sluice-Cache-Control, CDN-Cache-Control) replace Cache-Control
//   and Expires when one of them is present and valid;
// - any final status may be stored when it has explicit freshness (RFC 9111 §3), where the
//   library knows a fixed list; must-understand (RFC 9111 §5.2.2.3) is honoured;
// - Vary is Sluice's (variants are keyed on normalized values, see request-key.ts), so the
//   library never compares selecting headers itself.
import type { HeaderMap } from '../http/headers.js';
import { parseHttpDate } from './http-date.js';

export type Directives = Record<string, string | true>;

/** Statuses whose caching rules Sluice implements (RFC 9110 §15), for must-understand. 206 and 304 are not stored. */
const UNDERSTOOD = new Set([200, 203, 204, 300, 301, 302, 303, 307, 308, 400, 403, 404, 405, 410, 414, 500, 501, 502, 503, 504]);
/** The library's own list: other statuses are shown to it as 200 once Sluice has decided they may be stored. */
const LIBRARY_UNDERSTOOD = new Set([200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405, 410, 414, 501]);
/** Heuristically cacheable statuses (RFC 9110 §15.1). */
export const HEURISTIC_STATUSES = new Set([200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501]);
/** Directives whose value is delta-seconds. */
const DELTA_SECONDS = new Set(['max-age', 's-maxage', 'stale-while-revalidate', 'stale-if-error', 'min-fresh', 'max-stale']);
const ALREADY_EXPIRED = 'Thu, 01 Jan 1970 00:00:00 GMT';
/** RFC 9111 §1.2.2: delta-seconds beyond 2^31 are taken as 2^31. */
const MAX_DELTA = 2147483648;

export interface ResponseView {
  /** The status the library is shown (200 for a storable status it does not know). */
  readonly status: number;
  /** Single-valued, normalized headers for the library. */
  readonly headers: Record<string, string>;
  /** The directives that apply (from a targeted field or Cache-Control), names lower-case. */
  readonly directives: Directives;
  /** Which targeted field applied, if any. */
  readonly targeted: string | undefined;
}

/** The library's view of a response, or undefined when RFC 9111 forbids storing it whatever the rest says. */
export function responseView(status: number, headers: HeaderMap, targetedFields: readonly string[], now = Date.now()): ResponseView | undefined {
  if (status < 200 || status === 206 || status === 304) return undefined;
  const view = joined(headers);
  delete view['vary'];
  let directives: Directives | undefined;
  let targeted: string | undefined;
  for (const name of targetedFields) {
    directives = parseTargeted(view[name]);
    if (directives) {
      targeted = name;
      break;
    }
  }
  if (targeted) delete view['expires'];
  else {
    directives = parseCacheControl(view['cache-control']);
    const expires = headers['expires'];
    if (expires !== undefined) {
      const time = Array.isArray(expires) ? undefined : parseHttpDate(expires, now);
      view['expires'] = time === undefined ? ALREADY_EXPIRED : new Date(time).toUTCString();
    }
  }
  directives ??= {};
  if (directives['must-understand']) {
    if (!UNDERSTOOD.has(status)) return undefined;
    delete directives['no-store'];
  }
  const date = parseHttpDate(view['date'], now);
  if (date === undefined) delete view['date'];
  // A list-valued Age: the first member counts (RFC 9111 §5.1), the rest is discarded.
  const age = view['age']?.split(',')[0]!.trim();
  if (age !== undefined && /^\d+$/.test(age)) view['age'] = age;
  else delete view['age'];
  const cacheControl = formatDirectives(directives);
  if (cacheControl) view['cache-control'] = cacheControl;
  else delete view['cache-control'];
  const explicit = 'max-age' in directives || 's-maxage' in directives || 'public' in directives || view['expires'] !== undefined;
  if (!LIBRARY_UNDERSTOOD.has(status) && !explicit) return undefined;
  return { status: LIBRARY_UNDERSTOOD.has(status) ? status : 200, headers: view, directives, targeted };
}

/** The library's view of a request: Cache-Control with lower-case directive names. */
export function requestView(headers: Readonly<Record<string, string | string[] | undefined>>): Record<string, string> {
  const view: Record<string, string> = {};
  for (const name of ['host', 'authorization', 'pragma']) {
    const value = headers[name];
    if (value !== undefined) view[name] = [value].flat().join(', ');
  }
  const cc = headers['cache-control'];
  if (cc !== undefined) view['cache-control'] = formatDirectives(parseCacheControl([cc].flat().join(', ')));
  return view;
}

/**
 * Cache-Control (RFC 9111 §5.2): comma-separated directives, names case-insensitive,
 * values tokens or quoted strings. The first occurrence of a repeated directive wins; an
 * invalid delta-seconds makes max-age/s-maxage 0 (stale), as §4.2.1 advises.
 */
export function parseCacheControl(value: string | undefined): Directives {
  const out: Directives = {};
  if (!value) return out;
  for (const member of splitMembers(value)) {
    const eq = member.indexOf('=');
    const name = (eq < 0 ? member : member.slice(0, eq)).trim().toLowerCase();
    if (!name || name in out) continue;
    if (eq < 0) {
      out[name] = true;
      continue;
    }
    const raw = member.slice(eq + 1).trim();
    const unquoted = raw.startsWith('"') && raw.endsWith('"') && raw.length >= 2 ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw;
    if (DELTA_SECONDS.has(name)) {
      const seconds = delta(unquoted);
      if (seconds !== undefined) out[name] = String(seconds);
      else if (name === 'max-age' || name === 's-maxage') out[name] = '0';
    } else if (name === 'no-cache' || name === 'private') {
      // Field-qualified forms are taken unqualified: stricter, and never wrong.
      out[name] = true;
    } else {
      out[name] = unquoted;
    }
  }
  return out;
}

/**
 * A targeted field (RFC 9213 §2): a Structured Fields Dictionary with Cache-Control's
 * directives. An empty field or one that does not parse is ignored as if absent; a
 * directive with a value of the wrong type is ignored on its own.
 */
export function parseTargeted(value: string | undefined): Directives | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const out: Directives = {};
  for (const member of splitMembers(value)) {
    const m = /^([a-z*][a-z0-9_.*-]*)(?:=("(?:[^"\\]|\\.)*"|[^;]*))?(?:;.*)?$/.exec(member.trim());
    if (!m) return undefined;
    const [, name, raw] = m;
    if (raw === undefined || raw === '?1') out[name!] ??= true;
    else if (DELTA_SECONDS.has(name!)) {
      if (/^\d{1,15}$/.test(raw)) out[name!] ??= String(Math.min(Number(raw), MAX_DELTA));
    } else if (raw !== '?0' && !(name === 'no-cache' || name === 'private' || name === 'no-store')) {
      out[name!] ??= raw.replace(/^"|"$/g, '');
    }
  }
  return out;
}

export function formatDirectives(directives: Directives): string {
  return Object.entries(directives).map(([k, v]) => (v === true ? k : /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(v) ? `${k}=${v}` : `${k}="${v.replace(/["\\,]/g, '')}"`)).join(', ');
}

/** Headers as single strings; repeated fields joined as HTTP allows. */
export function joined(headers: HeaderMap): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) out[name] = Array.isArray(value) ? value.join(', ') : value;
  return out;
}

/** Splits on commas outside quoted strings. */
function splitMembers(value: string): string[] {
  const members: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '\\' && quoted) {
      current += c + (value[++i] ?? '');
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === ',' && !quoted) {
      if (current.trim()) members.push(current.trim());
      current = '';
    } else current += c;
  }
  if (current.trim()) members.push(current.trim());
  return members;
}

function delta(value: string): number | undefined {
  if (!/^\d+$/.test(value)) return undefined;
  return Math.min(Number(value), MAX_DELTA);
}
