// Header rules of a proxy (RFC 9110 §7.6): hop-by-hop headers, including every header the
// Connection header names, apply to one connection only and are never forwarded.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { forwardedNode, forwardedQuoted, removeUntrusted } from './forwarded.js';

const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade',
  'proxy-authorization', 'proxy-authenticate',
]);

export type { HeaderMap } from './header-map.js';
import type { HeaderMap } from './header-map.js';

/** Copies headers without the hop-by-hop ones; names come out lower-case. */
export function endToEndHeaders(headers: IncomingHttpHeaders | HeaderMap): HeaderMap {
  const named = connectionNamed(headers['connection']);
  const out: HeaderMap = {};
  for (const rawName in headers) {
    const value = headers[rawName];
    if (value === undefined) continue;
    // node:http and undici give lower-case names already; only others need converting.
    const name = LOWER_CASE_NAME.test(rawName) ? rawName : rawName.toLowerCase();
    if (HOP_BY_HOP.has(name) || named?.has(name)) continue;
    out[name] = value;
  }
  return out;
}

const LOWER_CASE_NAME = /^[a-z0-9-]*$/;

/** The header names a Connection header lists (hop-by-hop for this connection); undefined when it lists none. */
function connectionNamed(connection: string | string[] | undefined): Set<string> | undefined {
  if (connection === undefined) return undefined;
  const named = new Set<string>();
  for (const value of [connection].flat()) {
    if (typeof value === 'string') for (const token of value.split(',')) named.add(token.trim().toLowerCase());
  }
  return named;
}

export interface ForwardingFacts {
  /** The TCP peer, appended to X-Forwarded-For. */
  readonly clientAddress: string;
  readonly protocol: 'http' | 'https';
  readonly host: string | undefined;
  readonly via: string;
  /** The peer is a trusted proxy (listen.trusted_proxies): its X-Forwarded-* and Forwarded are kept. Default: not. */
  readonly peerTrusted?: boolean;
  /** http.allow_underscore_headers. Default: names with `_` are dropped. */
  readonly allowUnderscoreHeaders?: boolean;
  /** http.forwarded_header: also send RFC 7239 Forwarded. */
  readonly forwardedHeader?: boolean;
}

/**
 * Request headers for the backend: end-to-end headers without what the peer may not assert
 * (src/http/forwarded.ts), plus Sluice's own X-Forwarded-* and Via.
 */
export function upstreamRequestHeaders(headers: IncomingHttpHeaders, facts: ForwardingFacts): HeaderMap {
  const trusted = facts.peerTrusted === true;
  const out = removeUntrusted(endToEndHeaders(headers), trusted, facts.allowUnderscoreHeaders === true);
  const prior = (name: string) => (trusted ? firstHeader(headers[name]) : undefined);
  const priorFor = trusted ? [headers['x-forwarded-for']].flat().filter(Boolean).join(', ') : '';
  out['x-forwarded-for'] = priorFor ? `${priorFor}, ${facts.clientAddress}` : facts.clientAddress;
  const proto = prior('x-forwarded-proto') ?? facts.protocol;
  out['x-forwarded-proto'] = proto;
  const host = prior('x-forwarded-host') ?? facts.host;
  if (host) out['x-forwarded-host'] = host;
  if (facts.forwardedHeader) {
    const ours = `for=${forwardedNode(facts.clientAddress)};proto=${proto}${facts.host ? `;host=${forwardedQuoted(facts.host)}` : ''}`;
    const priorForwarded = trusted ? [headers['forwarded']].flat().filter(Boolean).join(', ') : '';
    out['forwarded'] = priorForwarded ? `${priorForwarded}, ${ours}` : ours;
  }
  out['via'] = appendVia(headers['via'], facts.via);
  // The body is sent whole with a Content-Length; the client's framing does not apply.
  delete out['content-length'];
  delete out['expect'];
  return out;
}

export function appendVia(prior: string | string[] | undefined, ours: string): string {
  const existing = [prior].flat().filter((v): v is string => typeof v === 'string' && v.length > 0);
  return [...existing, ours].join(', ');
}

/** Response headers for the client; content-length is set by whoever writes the body. */
export function clientResponseHeaders(headers: HeaderMap, via: string): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = endToEndHeaders(headers);
  out['via'] = appendVia(headers['via'], via);
  return out;
}

export function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
