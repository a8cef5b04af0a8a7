// Builds the request the backend receives, once, after the slot is granted and before the
// call (so a trace's CLIENT span starts when the call does):
// - end-to-end headers, without what an untrusted peer may not assert, plus Sluice's own
//   X-Forwarded-* and Via (src/http/headers.ts, src/http/forwarded.ts);
// - on the read path, the client's own validators and ranges removed (one full answer
//   serves and is stored for everyone; each client's conditional is answered by Sluice),
//   a cookie the route ignores removed, and the stored copy's validators added;
// - Sluice's traceparent in place of the client's, when tracing is on.
// Every change to the backend request is made here, none by an observer.
import { CLIENT_VALIDATORS } from '../../cache/conditional.js';
import { RANGE_FIELDS } from '../../cache/range.js';
import { upstreamRequestHeaders, type HeaderMap } from '../../http/headers.js';
import type { RequestContext } from '../context.js';
import type { PipelineDeps } from '../deps.js';
import type { PhaseResult } from './phase.js';

export function prepareUpstream(ctx: RequestContext, deps: PipelineDeps): PhaseResult {
  const readPath = ctx.cacheLookup !== undefined || ctx.leadership !== undefined;
  const headers = readPath ? readPathHeaders(ctx, deps, ctx.cacheLookup?.validators) : forwardedHeaders(ctx, deps);
  deps.traceContext?.inject(ctx, headers);
  ctx.upstreamHeaders = headers;
  return 'continue';
}

/** The client's headers as the backend may see them, with Sluice's forwarding headers. */
export function forwardedHeaders(ctx: RequestContext, deps: PipelineDeps): HeaderMap {
  return upstreamRequestHeaders(ctx.req.headers, {
    clientAddress: ctx.peer.peerAddress,
    protocol: 'http',
    host: ctx.req.headers.host,
    via: deps.via,
    peerTrusted: ctx.peer.peerTrusted,
    allowUnderscoreHeaders: deps.forwarding.allowUnderscoreHeaders,
    forwardedHeader: deps.forwarding.forwardedHeader,
  });
}

/** A read-path request (also a background refresh): one full answer that may be stored, revalidating with `validators`. */
export function readPathHeaders(ctx: RequestContext, deps: PipelineDeps, validators: HeaderMap | undefined): HeaderMap {
  const headers = forwardedHeaders(ctx, deps);
  for (const name of CLIENT_VALIDATORS) delete headers[name];
  for (const name of RANGE_FIELDS) delete headers[name];
  if (ctx.route!.cacheKey.cookie === 'ignored' && ctx.route!.cache.enabled) delete headers['cookie'];
  if (validators) Object.assign(headers, validators);
  return headers;
}
