// Read path, part 2: coalescing, before the queue. A request whose key matches a read in
// flight (waiting for a slot or running) follows it and is answered with the leader's
// complete response the moment it exists; otherwise it leads, and its queue wait and
// backend call continue while anyone (its client or a follower) still wants the answer.
// The key: method, host, normalized path and query, a hash of the headers the route names
// (key_headers, by default Authorization and Cookie, and cache.vary_extra), and a hash of
// the body when the route lets bodies coalesce.
import { createHash } from 'node:crypto';
import { formatCacheStatus } from '../../cache/cache-status.js';
import { clientAnswer } from '../../cache/conditional.js';
import { headerDigest, normalizedTarget, readKey } from '../../cache/request-key.js';
import type { FlightMember, FollowResult, Leadership } from '../../coalesce/coalescer.js';
import type { SharedAnswer } from '../../coalesce/shared-answer.js';
import { SluiceError } from '../../errors.js';
import type { BufferedBody } from '../../http/body-buffer.js';
import type { RequestContext } from '../context.js';
import type { PipelineDeps } from '../deps.js';
import { sharable } from './lookup-cache.js';
import { hasBody } from './read-body.js';
import type { PhaseResult } from './phase.js';
import { joinRemote } from './join-remote.js';

export async function joinInFlight(ctx: RequestContext, deps: PipelineDeps): Promise<PhaseResult> {
  const coalescer = deps.coalescer;
  if (!coalescer || !coalesceApplies(ctx)) return 'continue';
  // readBody has read the whole body: a leader never needs its client's socket once followers depend on it.
  let key = coalesceKey(ctx, await bodyDigest(ctx.body!));
  let varied = false;
  for (;;) {
    const joined = coalescer.join(key, memberOf(ctx), ctx.route!.coalesce.on_leader_error);
    if (joined.role === 'leader') {
      if (!deps.remoteFlights || varied) return lead(ctx, joined.leadership);
      const remote = await joinRemote(ctx, deps.remoteFlights, key, joined.leadership);
      if (remote.kind === 'lead') return lead(ctx, remote.leadership);
      ctx.coalesceRole = 'follower';
      return serveShared(ctx, remote.answer);
    }
    const result = await follow(ctx, joined.result);
    if (result.kind === 'answer') return serveShared(ctx, result.answer);
    if (result.kind === 'error') {
      ctx.cacheStatusDetail = `${ctx.cacheStatusDetail ?? formatCacheStatus({ fwd: 'bypass' })}; collapsed`;
      throw result.error;
    }
    if (result.kind === 'lead') return lead(ctx, result.leadership);
    // The leader's answer varies (Vary) on headers this request sent differently: coalesce
    // once more with requests that send the same values, or go alone.
    ctx.coalesceRole = undefined;
    if (varied || result.fields.includes('*')) return 'continue';
    varied = true;
    key = `${key} ${headerDigest(ctx.req.headers, result.fields)}`;
  }
}

/** Coalescing is per route and method; bodies only where the route allows them. */
export function coalesceApplies(ctx: RequestContext): boolean {
  const { coalesce } = ctx.route!;
  return coalesce.enabled && coalesce.methods.includes(ctx.method as never) && sharable(ctx) && (coalesce.allow_body || !hasBody(ctx.req));
}

function coalesceKey(ctx: RequestContext, body: string | undefined): string {
  const route = ctx.route!;
  const named = [...route.coalesce.key_headers, ...route.cache.vary_extra];
  return readKey({
    method: ctx.method,
    host: ctx.req.headers.host,
    target: normalizedTarget(ctx.pathname, ctx.search),
    headers: headerDigest(ctx.req.headers, named),
    body,
  });
}

async function bodyDigest(body: BufferedBody): Promise<string | undefined> {
  if (body.size === 0) return undefined;
  const hash = createHash('sha256');
  if (body.buffer) hash.update(body.buffer);
  else for await (const chunk of body.stream()) hash.update(chunk as Buffer);
  return hash.digest('base64url');
}

function memberOf(ctx: RequestContext): FlightMember {
  return { work: ctx.work, headers: ctx.req.headers };
}

function lead(ctx: RequestContext, leadership: Leadership<SharedAnswer>): PhaseResult {
  ctx.leadership = leadership;
  ctx.coalesceRole = 'leader';
  if (!ctx.cacheLookup) {
    ctx.cacheStatus = 'bypass';
    ctx.cacheStatusDetail = formatCacheStatus({ fwd: 'bypass' });
  }
  // Normally settled by storeResponse or the error path; this covers anything else.
  ctx.finalizers.push(() => {
    // Checked first: building an error captures a stack trace, too costly for every request.
    if (!leadership.finished) leadership.finish({ error: ctx.error ?? new SluiceError('internal', 'the coalesced leader ended without an answer') });
  });
  return 'continue';
}

async function follow(ctx: RequestContext, result: Promise<FollowResult<SharedAnswer>>): Promise<FollowResult<SharedAnswer>> {
  ctx.coalesceRole = 'follower';
  const started = performance.now();
  try {
    return await result;
  } finally {
    ctx.timings.coalesceWaitMs += performance.now() - started;
  }
}

function serveShared(ctx: RequestContext, answer: SharedAnswer): PhaseResult {
  ctx.finalizers.push(() => answer.owner.release());
  // A cookie the backend set was meant for the leader's client alone.
  const headers = { ...answer.response.headers };
  delete headers['set-cookie'];
  ctx.response = clientAnswer(ctx.req.headers, ctx.method, { ...answer.response, headers });
  ctx.cacheStatus = answer.cacheStatus;
  ctx.cacheStatusDetail = `${answer.cacheStatusDetail}; collapsed`;
  return 'respond';
}
