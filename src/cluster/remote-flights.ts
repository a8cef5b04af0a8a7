// Cross-instance coalescing. Within one instance the Coalescer already merges identical
// reads; across instances, the instance whose leader claims a read first (a short Redis
// lock, SET NX PX) makes the one backend call, and the others' leaders wait for it: the
// answer is written to Redis with a few seconds' TTL and announced on a channel, so
// waiters are woken at once (no polling). Everything here is best effort and bounded:
// - the lock lives lockTtl and the leader renews it while its call runs; a waiter gives up
//   at its own deadline, or when the lock disappears without an answer (a dead leader's
//   lock expires within lockTtl), and fetches on its own: a dead leader costs a wait, never
//   an error;
// - only complete, shareable answers cross instances: status < 500, no Vary, no
//   Set-Cookie, in memory and at most maxBytes; anything else releases the waiters to
//   fetch for themselves;
// - Redis unreachable: `claim` answers 'alone' and the read goes on as on one instance.
import { createHash } from 'node:crypto';
import type { RedisLink } from './redis-link.js';

export interface RemoteAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[]>;
  readonly body: Buffer;
}

export type ClaimResult = 'leader' | 'follower' | 'alone';

export interface RemoteFlightsOptions {
  readonly instanceId: string;
  readonly keyPrefix: string;
  /** Larger answers are not shared across instances. */
  readonly maxBytes?: number;
  /** How long a published answer stays readable for waiters that were just about to look. */
  readonly answerTtlMs?: number;
  /** Life of a leader's lock between renewals: how long a dead leader can keep others waiting. */
  readonly lockTtlMs: number;
}

interface Waiter {
  readonly resolve: (answer: RemoteAnswer | undefined) => void;
  /** Looks again when the leader's lock would have expired unless renewed (a dead leader never publishes). */
  readonly recheckIn: (ms: number) => void;
}

export class RemoteFlights {
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly channel: string;
  private readonly totals = { claimed: 0, followed: 0, answered: 0, gave_up: 0, published: 0 };
  private closed = false;
  /** Locks this instance holds, renewed together until their answer is published. */
  private readonly held = new Set<string>();
  private readonly renewTimer: NodeJS.Timeout;

  constructor(private readonly link: RedisLink, private readonly options: RemoteFlightsOptions) {
    this.channel = `${options.keyPrefix}flights:done`;
    link.onMessage(this.channel, (id) => {
      const set = this.waiters.get(id);
      if (set) void this.fetchFor(id, set);
    });
    this.renewTimer = setInterval(() => this.renewLocks(), Math.max(50, Math.floor(options.lockTtlMs / 3)));
    this.renewTimer.unref();
  }

  get maxBytes(): number {
    return this.options.maxBytes ?? 4 * 1024 * 1024;
  }

  /** Tries to lead `key` cluster-wide; a leader must publish() once it has its outcome. */
  async claim(key: string): Promise<ClaimResult> {
    if (this.link.health !== 'up') return 'alone';
    const id = flightId(key);
    try {
      const ok = await this.link.client.set(this.lockKey(id), this.options.instanceId, 'PX', this.options.lockTtlMs, 'NX');
      if (ok !== 'OK') return 'follower';
      this.totals.claimed++;
      this.held.add(id);
      return 'leader';
    } catch {
      return 'alone';
    }
  }

  /**
   * Waits for the cluster leader of `key` to publish. Resolves with its answer, or with
   * undefined when it published none, its lock vanished, `timeoutMs` passed or `signal` aborted.
   */
  async wait(key: string, timeoutMs: number, signal: AbortSignal): Promise<RemoteAnswer | undefined> {
    this.totals.followed++;
    const id = flightId(key);
    const answer = await new Promise<RemoteAnswer | undefined>((resolve) => {
      let set = this.waiters.get(id);
      if (!set) this.waiters.set(id, (set = new Set()));
      let recheck: NodeJS.Timeout | undefined;
      const waiter: Waiter = {
        recheckIn: (ms) => {
          clearTimeout(recheck);
          recheck = setTimeout(() => void this.lookNow(id, waiter), ms);
        },
        resolve: (value) => {
          clearTimeout(timer);
          clearTimeout(recheck);
          signal.removeEventListener('abort', onAbort);
          set!.delete(waiter);
          if (set!.size === 0 && this.waiters.get(id) === set) this.waiters.delete(id);
          resolve(value);
        },
      };
      const timer = setTimeout(() => waiter.resolve(undefined), Math.max(0, timeoutMs));
      const onAbort = () => waiter.resolve(undefined);
      signal.addEventListener('abort', onAbort, { once: true });
      set.add(waiter);
      // Registered first, then looked: an answer published in between is not missed.
      void this.lookNow(id, waiter);
    });
    if (answer) this.totals.answered++;
    else this.totals.gave_up++;
    return answer;
  }

  /** The leader's outcome: an answer to share, or undefined to let the waiters fetch on their own. */
  publish(key: string, answer: RemoteAnswer | undefined): void {
    if (this.closed) return;
    const id = flightId(key);
    this.held.delete(id);
    const multi = this.link.client.multi();
    if (answer && answer.body.length <= this.maxBytes) {
      this.totals.published++;
      multi.hset(this.answerKey(id), 'meta', JSON.stringify({ status: answer.status, headers: answer.headers }), 'body', answer.body);
      multi.pexpire(this.answerKey(id), this.options.answerTtlMs ?? 5_000);
    }
    multi.del(this.lockKey(id));
    multi.publish(this.channel, id);
    multi.exec().catch(() => {});
  }

  stats(): Record<string, number> {
    let waiting = 0;
    for (const set of this.waiters.values()) waiting += set.size;
    return { waiting, ...this.totals };
  }

  close(): void {
    this.closed = true;
    clearInterval(this.renewTimer);
    for (const set of this.waiters.values()) for (const w of [...set]) w.resolve(undefined);
  }

  private async lookNow(id: string, waiter: Waiter): Promise<void> {
    try {
      const [[, stored], [, lockTtl]] = (await this.link.client.multi().hgetallBuffer(this.answerKey(id)).pttl(this.lockKey(id)).exec()) as [[unknown, Record<string, Buffer>], [unknown, number]];
      const answer = decode(stored);
      if (answer) waiter.resolve(answer);
      else if (lockTtl < 0) waiter.resolve(undefined);
      else waiter.recheckIn(lockTtl + 20);
    } catch {
      waiter.resolve(undefined);
    }
  }

  private renewLocks(): void {
    if (this.held.size === 0 || this.link.health !== 'up') return;
    const multi = this.link.client.multi();
    for (const id of this.held) multi.pexpire(this.lockKey(id), this.options.lockTtlMs);
    multi.exec().catch(() => {});
  }

  private async fetchFor(id: string, set: Set<Waiter>): Promise<void> {
    let answer: RemoteAnswer | undefined;
    try {
      answer = decode(await this.link.client.hgetallBuffer(this.answerKey(id)));
    } catch {
      answer = undefined;
    }
    for (const w of [...set]) w.resolve(answer);
  }

  private lockKey(id: string): string {
    return `${this.options.keyPrefix}flight:${id}`;
  }

  private answerKey(id: string): string {
    return `${this.options.keyPrefix}answer:${id}`;
  }
}

/** Keys carry hashed header values already; hashing again keeps Redis keys short and opaque. */
function flightId(key: string): string {
  return createHash('sha256').update(key).digest('base64url').slice(0, 32);
}

function decode(stored: Record<string, Buffer> | null | undefined): RemoteAnswer | undefined {
  if (!stored || !stored.meta || !stored.body) return undefined;
  try {
    const meta = JSON.parse(stored.meta.toString('utf8')) as { status: number; headers: Record<string, string | string[]> };
    return { status: meta.status, headers: meta.headers, body: stored.body };
  } catch {
    return undefined;
  }
}
