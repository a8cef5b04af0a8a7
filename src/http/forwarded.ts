// Who the client is, and which of its headers a backend may believe. A client can write any
// header; only a trusted proxy's word on the original client (X-Forwarded-*, Forwarded,
// X-Real-IP ...) is kept, and Sluice states its own. Header names with `_` are dropped
// because WSGI servers map `_` and `-` to the same key: Gunicorn joins `X_Forwarded_For`
// with `X-Forwarded-For`, so the underscore form would smuggle a spoofed value past the
// removal of the dashed one (nginx drops them for the same reason).
import type { IncomingHttpHeaders } from 'node:http';
import { AddressSet, plainAddress } from './cidr.js';
import type { HeaderMap } from './header-map.js';

/**
 * Headers that speak for a proxy: the original client's address, host, scheme or port, the
 * original URL or method. From an untrusted peer they are lies, and some backends
 * (Flask's ProxyFix, Django's USE_X_FORWARDED_HOST, method-override middleware) act on them.
 */
const PROXY_ASSERTIONS = new Set([
  'forwarded', 'x-real-ip', 'x-client-ip', 'true-client-ip', 'cf-connecting-ip', 'fastly-client-ip',
  'x-cluster-client-ip', 'x-original-url', 'x-rewrite-url', 'x-original-uri', 'x-original-host',
  'x-original-method', 'x-http-method-override', 'x-http-method', 'x-method-override',
  'front-end-https', 'x-url-scheme', 'x-scheme',
]);

export function isProxyAssertion(name: string): boolean {
  return name.startsWith('x-forwarded-') || PROXY_ASSERTIONS.has(name);
}

export interface ForwardingOptions {
  readonly trustedProxies: readonly string[];
  readonly allowUnderscoreHeaders: boolean;
  readonly forwardedHeader: boolean;
}

/** What one request's peer is allowed to assert; computed once per request. */
export interface PeerFacts {
  /** The TCP peer. */
  readonly peerAddress: string;
  /** The peer is a trusted proxy: its forwarding headers are kept. */
  readonly peerTrusted: boolean;
  /** The original client: the peer, or behind trusted proxies the nearest untrusted X-Forwarded-For hop. */
  readonly clientAddress: string;
}

export class ForwardingPolicy {
  private readonly trusted: AddressSet;
  readonly allowUnderscoreHeaders: boolean;
  readonly forwardedHeader: boolean;

  constructor(options: ForwardingOptions) {
    this.trusted = new AddressSet(options.trustedProxies);
    this.allowUnderscoreHeaders = options.allowUnderscoreHeaders;
    this.forwardedHeader = options.forwardedHeader;
  }

  isTrusted(address: string | undefined): boolean {
    return this.trusted.has(address);
  }

  peer(remoteAddress: string | undefined, headers: IncomingHttpHeaders): PeerFacts {
    const peerAddress = plainAddress(remoteAddress ?? 'unknown');
    const peerTrusted = this.trusted.has(peerAddress);
    return { peerAddress, peerTrusted, clientAddress: peerTrusted ? this.originalClient(headers, peerAddress) : peerAddress };
  }

  /** Walks X-Forwarded-For from the right past trusted hops: the first untrusted one is the client. */
  private originalClient(headers: IncomingHttpHeaders, peerAddress: string): string {
    const hops = [headers['x-forwarded-for']].flat().filter((v): v is string => typeof v === 'string')
      .join(',').split(',').map((hop) => hop.trim()).filter((hop) => hop.length > 0);
    for (let i = hops.length - 1; i >= 0; i--) {
      if (!this.trusted.has(hops[i])) return hops[i]!;
    }
    return hops[0] ?? peerAddress;
  }
}

/**
 * Removes what a backend must not believe: proxy assertions from an untrusted peer, and
 * header names with `_` unless allowed. Returns the same map, changed in place.
 */
export function removeUntrusted(headers: HeaderMap, peerTrusted: boolean, allowUnderscore: boolean): HeaderMap {
  for (const name of Object.keys(headers)) {
    if ((!allowUnderscore && name.includes('_')) || (!peerTrusted && isProxyAssertion(name))) delete headers[name];
  }
  return headers;
}

/** RFC 7239 §6: an IPv6 node is quoted and bracketed. */
export function forwardedNode(address: string): string {
  return address.includes(':') ? `"[${address}]"` : address;
}

export function forwardedQuoted(value: string): string {
  return /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(value) ? value : `"${value.replace(/["\\]/g, '\\$&')}"`;
}
