// Coalescing: identical reads in flight at the same time share one trip through the slot
// queue and one backend call. The first request with a key leads a flight; later ones
// follow it until the leader publishes its answer, and are woken the moment it does (no
// polling). Joining happens before queueing, so followers join while the leader waits for
// a slot or while it runs, and never take a queue place of their own.
//
// Invariants:
// - at most one unsettled flight per key; a settled flight is gone from the map, so later
//   requests start a new flight (or, having been stored, hit the cache);
// - the call a flight makes is abandoned only when nobody wants the answer: the leader's
//   client and every follower are gone, or the leader's deadline has passed;
// - a follower that leaves never affects the others; a settled follower is woken once;
// - with `retry_one`, a failed leader hands the flight to one live follower, once: a flight
//   makes at most two backend calls, however many followers it has.
import { SluiceError } from '../errors.js';

export type LeaderErrorPolicy = 'share' | 'retry_one';

type RequestHeaders = Readonly<Record<string, string | string[] | undefined>>;

/**
 * A request's own work (src/pipeline/request-work.ts): its signal ends the member's wait
 * and, for the leader, the call; it is aborted at the member's deadline or when its client
 * leaves — for the leader, only once `keepWhile` says nobody else wants the answer.
 */
export interface MemberWork {
  readonly signal: AbortSignal;
  readonly clientGone: boolean;
  keepWhile(wanted: (() => boolean) | undefined): void;
  abort(reason: SluiceError): void;
}

/** What a flight needs to know about a request taking part in it. */
export interface FlightMember {
  readonly work: MemberWork;
  /** Compared with the leader's when the answer varies on request headers (Vary). */
  readonly headers: RequestHeaders;
}

/** What the leader publishes: an answer (a backend 5xx answer counts as failed) or an error. */
export type FlightOutcome<A> =
  | { readonly answer: A; readonly failed: boolean; readonly vary: readonly string[] }
  | { readonly error: SluiceError };

/** How a follower's wait ends. */
export type FollowResult<A> =
  | { readonly kind: 'answer'; readonly answer: A }
  | { readonly kind: 'error'; readonly error: SluiceError }
  /** retry_one: the leader failed and this follower makes the one retry. */
  | { readonly kind: 'lead'; readonly leadership: Leadership<A> }
  /** The answer varies on request headers this follower sent differently from the leader. */
  | { readonly kind: 'vary'; readonly fields: readonly string[] };

export interface Leadership<A> {
  /** The leader's own work signal, kept alive while followers want the answer. */
  readonly signal: AbortSignal;
  readonly followers: number;
  /** True once the outcome has been published. */
  readonly finished: boolean;
  /** Publishes the outcome; returns how many followers received the answer. Later calls do nothing. */
  finish(outcome: FlightOutcome<A>): number;
}

export type JoinResult<A> =
  | { readonly role: 'leader'; readonly leadership: Leadership<A> }
  | { readonly role: 'follower'; readonly result: Promise<FollowResult<A>> };

export interface CoalescerStats {
  flights: number;
  followers_waiting: number;
  /** Followers answered by a leader's call: backend calls (and queue places) saved. */
  followers_saved: number;
  leader_errors_shared: number;
  retries: number;
}

export class Coalescer<A> {
  private readonly flights = new Map<string, Flight<A>>();
  private readonly totals = { followers_saved: 0, leader_errors_shared: 0, retries: 0 };

  /** Leads a new flight for `key`, or follows the one in flight; the member's work signal ends a follower's wait. */
  join(key: string, member: FlightMember, policy: LeaderErrorPolicy): JoinResult<A> {
    const existing = this.flights.get(key);
    if (existing) return { role: 'follower', result: existing.follow(member) };
    const flight = new Flight<A>(key, policy, this);
    this.flights.set(key, flight);
    return { role: 'leader', leadership: flight.lead(member) };
  }

  stats(): CoalescerStats {
    let waiting = 0;
    for (const flight of this.flights.values()) waiting += flight.followerCount;
    return { flights: this.flights.size, followers_waiting: waiting, ...this.totals };
  }

  /** @internal Flight bookkeeping. */
  settled(flight: Flight<A>, delivered: number, errorShared: boolean): void {
    if (this.flights.get(flight.key) === flight) this.flights.delete(flight.key);
    this.totals.followers_saved += delivered;
    if (errorShared) this.totals.leader_errors_shared++;
  }

  /** @internal */
  retried(): void {
    this.totals.retries++;
  }
}

interface Waiting<A> {
  readonly member: FlightMember;
  readonly wake: (result: FollowResult<A>) => void;
  readonly detach: () => void;
}

class Flight<A> {
  private readonly waiting = new Map<FlightMember, Waiting<A>>();
  private term: Term<A> | undefined;
  private attempts = 0;

  constructor(readonly key: string, private readonly policy: LeaderErrorPolicy, private readonly owner: Coalescer<A>) {}

  get followerCount(): number {
    return this.waiting.size;
  }

  lead(member: FlightMember): Leadership<A> {
    this.attempts++;
    this.term = new Term(this, member);
    return this.term;
  }

  follow(member: FlightMember): Promise<FollowResult<A>> {
    const signal = member.work.signal;
    return new Promise((resolve, reject) => {
      if (signal.aborted) {
        reject(leaveReason(signal));
        return;
      }
      const onAbort = () => {
        this.waiting.delete(member);
        this.checkInterest();
        reject(leaveReason(signal));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.set(member, { member, wake: resolve, detach: () => signal.removeEventListener('abort', onAbort) });
    });
  }

  /** Aborts the current call once its leader's client and every follower have gone. */
  checkInterest(): void {
    const term = this.term;
    if (term && !term.done && term.leader.work.clientGone && this.waiting.size === 0) {
      term.leader.work.abort(new SluiceError('client_closed', 'every client of this coalesced read left'));
    }
  }

  /** Called once per term by Term.finish. */
  finished(term: Term<A>, outcome: FlightOutcome<A>): number {
    const failed = 'error' in outcome || outcome.failed;
    if (failed && this.policy === 'retry_one' && this.attempts < 2) {
      const next = [...this.waiting.values()].find((w) => !w.member.work.clientGone);
      if (next) {
        this.release(next);
        this.owner.retried();
        next.wake({ kind: 'lead', leadership: this.lead(next.member) });
        return 0;
      }
    }
    return this.settle(term.leader, outcome);
  }

  private settle(leader: FlightMember, outcome: FlightOutcome<A>): number {
    let delivered = 0;
    const waiting = [...this.waiting.values()];
    for (const w of waiting) this.release(w);
    for (const w of waiting) {
      if ('error' in outcome) {
        w.wake({ kind: 'error', error: outcome.error });
      } else if (variesFor(outcome.vary, leader.headers, w.member.headers)) {
        w.wake({ kind: 'vary', fields: outcome.vary });
      } else {
        w.wake({ kind: 'answer', answer: outcome.answer });
        delivered++;
      }
    }
    this.owner.settled(this, delivered, 'error' in outcome && waiting.length > 0);
    return delivered;
  }

  private release(w: Waiting<A>): void {
    w.detach();
    this.waiting.delete(w.member);
  }
}

/**
 * One leader's attempt: the right to publish once. Its signal is the leader's own work
 * signal (no controller or timer of its own): the leader's deadline bounds the call, and
 * its client leaving ends the call only when no follower is left.
 */
class Term<A> implements Leadership<A> {
  done = false;

  constructor(private readonly flight: Flight<A>, readonly leader: FlightMember) {
    leader.work.keepWhile(() => !this.done && flight.followerCount > 0);
  }

  get signal(): AbortSignal {
    return this.leader.work.signal;
  }

  get followers(): number {
    return this.flight.followerCount;
  }

  get finished(): boolean {
    return this.done;
  }

  finish(outcome: FlightOutcome<A>): number {
    if (this.done) return 0;
    this.done = true;
    this.leader.work.keepWhile(undefined);
    return this.flight.finished(this, outcome);
  }
}

function variesFor(fields: readonly string[], leader: RequestHeaders, follower: RequestHeaders): boolean {
  return fields.some((field) => field === '*' || flat(leader[field]) !== flat(follower[field]));
}

function flat(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

function leaveReason(signal: AbortSignal): SluiceError {
  return signal.reason instanceof SluiceError ? signal.reason : new SluiceError('client_closed', 'left while waiting for a coalesced read');
}
