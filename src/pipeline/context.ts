// Per-request state: everything one request carries through the phases lives here, and
// nothing else holds per-request state. Status words are closed unions, reused verbatim in
// headers, spans, metrics and logs.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CacheStatus } from '../cache/cache-status.js';
import type { ProxyResponse } from '../http/proxy-response.js';

export type { CacheStatus } from '../cache/cache-status.js';
export type { ProxyResponse } from '../http/proxy-response.js';
import type { CompiledRoute } from '../config/compile.js';
import type { SluiceError } from '../errors.js';
import type { BufferedBody } from '../http/body-buffer.js';
import type { HeaderMap } from '../http/headers.js';
import type { PeerFacts } from '../http/forwarded.js';
import type { SlotLease } from '../slots/slot-queue.js';
import type { CacheLookupState } from '../cache/lookup-state.js';
import type { Leadership } from '../coalesce/coalescer.js';
import type { SharedAnswer } from '../coalesce/shared-answer.js';
import type { RequestWork } from './request-work.js';
import type { AsyncPreference } from '../jobs/prefer.js';

export type CoalesceRole = 'leader' | 'follower';
export type PhaseName =
  | 'receive' | 'matchRoute' | 'admit' | 'readBody' | 'submitJob' | 'lookupCache' | 'joinInFlight'
  | 'acquireSlot' | 'prepareUpstream' | 'forwardUpstream' | 'storeResponse' | 'onError' | 'respond' | 'log' | 'jobResource';

export interface PhaseTiming { readonly name: PhaseName; readonly startMs: number; endMs: number }

export interface RequestContext {
  readonly id: string;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** performance.now() when the request headers arrived. */
  readonly startedAt: number;
  /** Wall-clock start, for logs. */
  readonly startedAtEpochMs: number;
  readonly method: string;
  /** The normalized path (src/routing/normalize-path.ts): forwarded and used in keys. */
  readonly pathname: string;
  /** `pathname` with every escape decoded, as the backend will see it: what routes match. */
  readonly matchPath: string;
  /** The TCP peer, whether it is a trusted proxy, and the original client's address. */
  readonly peer: PeerFacts;
  /** Including the leading `?`, or empty. */
  readonly search: string;
  /** The client sent `Expect: 100-continue`; 100 is written only once the request is admitted. */
  readonly expectsContinue: boolean;
  /**
   * The request's one abort: its deadline, its client leaving (a coalescing leader's call
   * lives on while followers want it). Its signal is created only when first needed.
   */
  readonly work: RequestWork;
  route: CompiledRoute | undefined;
  /** performance.now() by which the whole request must be answered (route total timeout). */
  deadlineAt: number;
  body: BufferedBody | undefined;
  /** Set by admit when this request becomes a job (route `job:` or Prefer: respond-async); submitJob stores it. */
  jobPreference: AsyncPreference | undefined;
  lease: SlotLease | undefined;
  /** The headers the backend receives, built once by prepareUpstream. */
  upstreamHeaders: HeaderMap | undefined;
  response: ProxyResponse | undefined;
  error: SluiceError | undefined;
  /** Which backend server answered, for spans and logs. */
  backendServer: string | undefined;
  cacheStatus: CacheStatus | undefined;
  /** RFC 9211 parameters for the Cache-Status header, e.g. `fwd=miss; stored`. */
  cacheStatusDetail: string | undefined;
  coalesceRole: CoalesceRole | undefined;
  /** Read path: what the cache lookup found, for a request that still goes to the backend. */
  cacheLookup: CacheLookupState | undefined;
  /** Read path: set while this request leads a coalesced flight; publishes to its followers. */
  leadership: Leadership<SharedAnswer> | undefined;
  /** Job id when the request was turned into (or is) a job. */
  jobId: string | undefined;
  /** `jobWaitMs`: a request that became a job, held for its result (`Prefer: wait=N`, `job.wait`), or a status long-poll. */
  readonly timings: { queueMs: number; upstreamMs: number; readBodyMs: number; coalesceWaitMs: number; jobWaitMs: number };
  readonly phases: PhaseTiming[];
  /** Run once after the response is written (or the request failed): release, publish, clean up. */
  readonly finalizers: Array<(ctx: RequestContext) => void | Promise<void>>;
  /** Bytes of body written to the client. */
  bytesSent: number;
  /** Attributes other components attach for observers (span attributes, log fields). */
  readonly annotations: Record<string, string | number | boolean>;
}
