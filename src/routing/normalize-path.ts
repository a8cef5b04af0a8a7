// One normalized path per request, used for routing, the cache key and forwarding, so a
// route rule cannot be bypassed by an encoding the backend decodes (Gunicorn percent-decodes
// PATH_INFO: `/api/%75pload` is `/api/upload` to Flask).
//
// The canonical form (`path`) is what is forwarded and keyed on: escapes of unreserved
// characters (RFC 3986 §2.3) decoded, other escapes kept with upper-case hex, dot segments
// resolved after that decoding, runs of `/` merged. `matchPath` is what the backend will
// see after it decodes every escape; routes match it, so a glob is written the way the app
// sees its paths and no spelling of a path reaches the backend under another route's rules.
//
// Escapes that change the structure of a path once decoded — `%2F`, `%5C`, `%00` — a
// literal `\`, and invalid escapes are ambiguous: servers disagree on them. By default the
// request is refused (400 bad_path); `http.ambiguous_paths: forward` passes them encoded.

export type AmbiguousPathPolicy = 'reject' | 'forward';

export interface NormalizedTarget {
  /** Canonical path: forwarded to the backend and used in the cache key. */
  readonly path: string;
  /** The path with every escape decoded (UTF-8): what routes match. */
  readonly matchPath: string;
  /** The query as received, with its leading `?`, or empty. */
  readonly search: string;
}

export type NormalizeResult = NormalizedTarget | { readonly error: string };

const HEX = /^[0-9A-Fa-f]{2}$/;
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;
/** Decoded, these bytes would change where the path's segments begin or end. */
const STRUCTURAL_BYTES = new Set([0x2f, 0x5c, 0x00]);
/** Segments of unreserved and sub-delim characters, none empty, none starting with a dot: canonical as it is. */
const PLAIN_PATH = /^(?:\/[A-Za-z0-9\-_~!$&'()*+,;=:@][A-Za-z0-9\-._~!$&'()*+,;=:@]*)*\/?$/;

export function normalizeTarget(rawTarget: string, policy: AmbiguousPathPolicy): NormalizeResult {
  let target = rawTarget;
  // absolute-form (RFC 9112 §3.2.2), sent to proxies: the path starts after the authority.
  const absolute = /^https?:\/\/[^/?#]*/i.exec(target);
  if (absolute) target = target.slice(absolute[0].length) || '/';
  if (!target.startsWith('/')) return { error: `request target must be a path, got ${JSON.stringify(rawTarget.slice(0, 64))}` };
  const hash = target.indexOf('#');
  if (hash >= 0) target = target.slice(0, hash);
  const question = target.indexOf('?');
  const rawPath = question >= 0 ? target.slice(0, question) : target;
  const search = question >= 0 && question < target.length - 1 ? target.slice(question) : '';

  // Most paths are already canonical: nothing escaped, no dot or empty segment.
  if (PLAIN_PATH.test(rawPath)) return { path: rawPath, matchPath: rawPath, search };
  let canonical = '';
  for (let i = 0; i < rawPath.length; i++) {
    const ch = rawPath[i]!;
    if (ch === '%') {
      const hex = rawPath.slice(i + 1, i + 3);
      if (!HEX.test(hex)) {
        if (policy === 'reject') return { error: `invalid percent-escape at offset ${i}` };
        canonical += '%25';
        continue;
      }
      const byte = parseInt(hex, 16);
      const decoded = String.fromCharCode(byte);
      i += 2;
      if (STRUCTURAL_BYTES.has(byte)) {
        if (policy === 'reject') return { error: `encoded ${describeByte(byte)} (%${hex}) in path` };
        canonical += `%${hex.toUpperCase()}`;
      } else if (UNRESERVED.test(decoded)) {
        canonical += decoded;
      } else {
        canonical += `%${hex.toUpperCase()}`;
      }
    } else if (ch === '\\' || ch === '\u0000') {
      if (policy === 'reject') return { error: `literal ${ch === '\\' ? 'backslash' : 'NUL'} in path` };
      canonical += ch === '\\' ? '%5C' : '%00';
    } else {
      const code = ch.charCodeAt(0);
      // node:http hands over bytes >= 0x80 as latin1 characters; keep them as escapes.
      canonical += code > 0x7e || code < 0x21 ? `%${code.toString(16).toUpperCase().padStart(2, '0')}` : ch;
    }
  }
  const path = removeDotSegments(canonical);
  return { path, matchPath: decodeAll(path), search };
}

/** RFC 3986 §5.2.4 on `/`-separated segments; empty segments (`//`) are dropped too. */
function removeDotSegments(path: string): string {
  const input = path.split('/').slice(1);
  const out: string[] = [];
  let trailingSlash = false;
  input.forEach((segment, index) => {
    const last = index === input.length - 1;
    trailingSlash = false;
    if (segment === '..') {
      out.pop();
      trailingSlash = last;
    } else if (segment === '.' || segment === '') {
      trailingSlash = last;
    } else {
      out.push(segment);
    }
  });
  const joined = '/' + out.join('/');
  return trailingSlash && out.length > 0 ? joined + '/' : joined;
}

/** Every escape decoded as the backend decodes it; bytes that are not UTF-8 become U+FFFD. */
function decodeAll(path: string): string {
  if (!path.includes('%')) return path;
  const bytes: number[] = [];
  for (let i = 0; i < path.length; i++) {
    if (path[i] === '%' && HEX.test(path.slice(i + 1, i + 3))) {
      bytes.push(parseInt(path.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(path.charCodeAt(i));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function describeByte(byte: number): string {
  return byte === 0x2f ? 'slash' : byte === 0x5c ? 'backslash' : 'NUL';
}
