// The first phase: the request's context, the one place per-request state is created.
// Its id is the client's X-Request-Id when that is well-formed, a UUID otherwise; its work
// (request-work.ts) learns when the client goes away: the response's socket closing before
// the response is complete, or — for a pipelined request not yet being answered — its
// connection closing.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { firstHeader } from '../http/headers.js';
import type { ConnectionClosed } from '../http/connection-closed.js';
import type { NormalizedTarget } from '../routing/normalize-path.js';
import type { RequestContext } from './context.js';
import type { PipelineDeps } from './deps.js';
import { RequestWork } from './request-work.js';

const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

export function receive(req: IncomingMessage, res: ServerResponse, expectsContinue: boolean, deps: PipelineDeps, target: NormalizedTarget | undefined, connectionClosed: ConnectionClosed | undefined): RequestContext {
  const work = new RequestWork();
  // The client is gone if its connection closes before the response has been fully written.
  const gone = () => {
    if (!res.writableFinished) work.clientLeft();
  };
  res.once('close', gone);
  const unsubscribe = connectionClosed?.subscribe(gone);
  const offered = firstHeader(req.headers['x-request-id']);
  const startedAt = performance.now();
  return {
    id: offered && REQUEST_ID_PATTERN.test(offered) ? offered : randomUUID(),
    req, res, startedAt, startedAtEpochMs: Date.now(),
    method: (req.method ?? 'GET').toUpperCase(),
    pathname: target?.path ?? '/',
    matchPath: target?.matchPath ?? '/',
    search: target?.search ?? '',
    peer: deps.forwarding.peer(req.socket.remoteAddress, req.headers),
    expectsContinue,
    work,
    route: undefined,
    deadlineAt: startedAt + 60_000,
    body: undefined, jobPreference: undefined, lease: undefined, upstreamHeaders: undefined, response: undefined, error: undefined, backendServer: undefined,
    cacheStatus: undefined, cacheStatusDetail: undefined, coalesceRole: undefined, jobId: undefined,
    cacheLookup: undefined, leadership: undefined,
    timings: { queueMs: 0, upstreamMs: 0, readBodyMs: 0, coalesceWaitMs: 0, jobWaitMs: 0 },
    phases: [{ name: 'receive', startMs: startedAt, endMs: startedAt }],
    // The connection outlives the request: its close no longer concerns this one once answered.
    finalizers: unsubscribe ? [unsubscribe] : [],
    bytesSent: 0,
    annotations: {},
  };
}
