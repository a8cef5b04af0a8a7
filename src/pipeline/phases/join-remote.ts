// Read path, part 2b (scale-out only): after this request became the local leader of a
// coalesced read, it tries to lead the read cluster-wide. If another instance already
// leads it, this request waits for that answer (until its deadline) and hands it to its own
// local followers; otherwise it goes on to the queue and, once it has the answer, shares it
// with the waiting instances. See src/cluster/remote-flights.ts for the bounds.
import { formatCacheStatus } from '../../cache/cache-status.js';
import type { FlightOutcome, Leadership } from '../../coalesce/coalescer.js';
import { SharedBody, type SharedAnswer } from '../../coalesce/shared-answer.js';
import type { RemoteAnswer, RemoteFlights } from '../../cluster/remote-flights.js';
import { BufferedBody } from '../../http/body-buffer.js';
import type { RequestContext } from '../context.js';

export type RemoteJoin =
  | { readonly kind: 'answer'; readonly answer: SharedAnswer }
  | { readonly kind: 'lead'; readonly leadership: Leadership<SharedAnswer> };

export async function joinRemote(ctx: RequestContext, flights: RemoteFlights, key: string, local: Leadership<SharedAnswer>): Promise<RemoteJoin> {
  const claim = await flights.claim(key);
  if (claim === 'alone') return { kind: 'lead', leadership: local };
  if (claim === 'leader') return { kind: 'lead', leadership: publishing(local, flights, key) };
  const started = performance.now();
  const remote = await flights.wait(key, Math.max(0, ctx.deadlineAt - started), local.signal);
  ctx.timings.coalesceWaitMs += performance.now() - started;
  if (!remote) return { kind: 'lead', leadership: local };
  const body = BufferedBody.fromBuffer(remote.body);
  const answer: SharedAnswer = {
    response: { status: remote.status, headers: remote.headers, body },
    cacheStatus: 'miss',
    cacheStatusDetail: formatCacheStatus({ fwd: 'miss', fwdStatus: remote.status }),
    owner: new SharedBody(body),
  };
  // This request's local followers get the same answer; the body is in memory, nothing to dispose.
  answer.owner.retain(local.finish({ answer, failed: false, vary: [] }));
  return { kind: 'answer', answer };
}

/** The local leadership, also publishing the outcome to the instances waiting on this read. */
function publishing(inner: Leadership<SharedAnswer>, flights: RemoteFlights, key: string): Leadership<SharedAnswer> {
  let published = false;
  return {
    get signal() { return inner.signal; },
    get followers() { return inner.followers; },
    get finished() { return inner.finished; },
    finish(outcome: FlightOutcome<SharedAnswer>): number {
      const delivered = inner.finish(outcome);
      if (!published) {
        published = true;
        flights.publish(key, shareable(outcome, flights.maxBytes));
      }
      return delivered;
    },
  };
}

/** Only complete answers everyone may see cross instances (see remote-flights.ts). */
function shareable(outcome: FlightOutcome<SharedAnswer>, maxBytes: number): RemoteAnswer | undefined {
  if ('error' in outcome || outcome.failed || outcome.vary.length > 0) return undefined;
  const { status, headers, body } = outcome.answer.response;
  if (status >= 500 || headers['vary'] !== undefined || headers['set-cookie'] !== undefined) return undefined;
  const bytes = body.buffer;
  if (!bytes || bytes.length > maxBytes) return undefined;
  const plain: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined) plain[name] = value as string | string[];
  return { status, headers: plain, body: bytes };
}
