// The shared slot budget: how many requests this instance may run on each backend server,
// when several instances front the same backend. The local SlotQueue stays the only queue
// (priorities, FIFO, route caps, deadlines are all decided there); this object only says
// how many of each server's slots the queue may fill right now, by holding leases in Redis.
//
// Invariants:
// - shared mode: busy(server) <= leases held for it; every request running here holds one
//   lease, so the cluster's total in flight per server is at most its `slots` (expired leases
//   aside: see lease-script.ts);
// - fallback mode (Redis unreachable): at most min(slots, fallback_slots) per server here,
//   never unlimited; leases held when Redis went away are released when it is back (or expire);
// - leases are asked for only for waiters the queue could run, and idle ones are returned
//   at once: an instance never sits on slots another instance's waiters need;
// - a lease whose request finished is reused here without a round trip only while this
//   instance has waiters, no other instance had waiters of a more urgent class (as of the
//   last exchange), and this instance holds less than its share of the slots against the
//   others waiting in the same class (in proportion to the waiters); otherwise it goes
//   back to Redis for them;
// - at most one exchange with Redis is in flight; changes meanwhile are sent in the next one.
import { randomBytes } from 'node:crypto';
import { LEASE_EXCHANGE_LUA, exchangeArgv, parseExchangeReply, type LeaseExchangeResult } from './lease-script.js';
import type { RedisLink } from './redis-link.js';

/** Least time between exchanges that only update a backlog's size (see changed()). */
const DEMAND_EVERY_MS = 25;

export type SlotMode = 'shared' | 'fallback';

/** What the budget needs from the local queue (structural: no import of the queue). */
export interface LocalQueueView {
  /** Waiters the queue could start with more slots, per priority class, most urgent first. */
  demand(): { rank: number; count: number; oldestAt: number }[];
  /** How many wait now (cheap: read on every release). */
  waiting(): number;
  /** Grants whatever the new capacity allows. */
  wake(): void;
}

interface Permit {
  readonly server: number;
  /** Undefined for a slot taken in fallback mode (no lease in Redis until adopted). */
  id: string | undefined;
}

export interface ClusterSlotsOptions {
  readonly instanceId: string;
  readonly servers: readonly { readonly url: string; readonly slots: number }[];
  readonly leaseTtlMs: number;
  readonly fallbackSlots: number;
  readonly keyPrefix: string;
  readonly now?: () => number;
}

export class ClusterSlots {
  private modeNow: SlotMode = 'fallback';
  private queue: LocalQueueView | undefined;
  /** Leases held but not in use, per server. */
  private readonly idle: string[][];
  private readonly inUse: Set<Permit>[];
  /** Released leases not yet confirmed by Redis (kept across an outage, then sent). */
  private pendingRelease: [number, string][] = [];
  private inFlight = false;
  private dirty = false;
  private renewDue = true;
  private scheduled = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly renewTimer: NodeJS.Timeout;
  private calls = 0;
  /** Lease ids are `<instance>:<process token>:<n>`: a restarted process never reuses a live id of its predecessor. */
  private readonly token = randomBytes(6).toString('base64url');
  private closed = false;
  private readonly keys: string[];
  private readonly channel: string;
  private readonly now: () => number;
  /** The cluster's view as of the last exchange, for /status and /metrics. */
  private lastView: { active: number[]; instances: number; at: number } | undefined;
  readonly totals = { exchanges: 0, granted: 0, released: 0, reused: 0, lost: 0, failures: 0 };
  /** Round-trip times of exchanges that granted something, for the acquire-latency metric. */
  onExchange: ((ms: number, granted: number) => void) | undefined;

  constructor(private readonly link: RedisLink, private readonly options: ClusterSlotsOptions) {
    this.now = options.now ?? (() => performance.now());
    this.idle = options.servers.map(() => []);
    this.inUse = options.servers.map(() => new Set());
    const p = options.keyPrefix;
    this.keys = [`${p}slots:demand`, `${p}slots:instances`, ...options.servers.map((s) => `${p}slots:leases:${s.url}`)];
    this.channel = `${p}slots:freed`;
    link.onMessage(this.channel, (from) => {
      if (from !== options.instanceId && this.unmet() > 0) this.schedule();
    });
    link.onUp(() => { this.renewDue = true; this.schedule(); });
    link.onDown(() => this.enterFallback());
    // Renewal keeps held leases alive; a third of the TTL leaves two chances before expiry.
    this.renewTimer = setInterval(() => { this.renewDue = true; this.schedule(); }, Math.max(100, Math.floor(options.leaseTtlMs / 3)));
    this.renewTimer.unref();
  }

  attach(queue: LocalQueueView): void {
    this.queue = queue;
  }

  get mode(): SlotMode {
    return this.modeNow;
  }

  /** How many requests the local queue may run on server `index` now. */
  limit(index: number): number {
    const slots = this.options.servers[index]!.slots;
    if (this.modeNow === 'fallback') return Math.min(slots, this.options.fallbackSlots);
    return this.inUse[index]!.size + this.idle[index]!.length;
  }

  /** A slot of server `index` starts being used; the token comes back to finished(). */
  started(index: number): Permit {
    const permit: Permit = { server: index, id: this.modeNow === 'shared' ? this.idle[index]!.pop() : undefined };
    this.inUse[index]!.add(permit);
    return permit;
  }

  finished(token: unknown): void {
    const permit = token as Permit;
    if (!this.inUse[permit.server]!.delete(permit)) return;
    if (permit.id === undefined) return;
    if (this.keepForLocalWaiter()) {
      // The queue dispatches right after this: the lease goes to the next local waiter.
      this.idle[permit.server]!.push(permit.id);
      this.totals.reused++;
      return;
    }
    this.pendingRelease.push([permit.server, permit.id]);
    this.schedule();
  }

  /** Other instances' waiting demand as of the last exchange (better class, same class). */
  private others: { better: number; same: number } | undefined;

  private keepForLocalWaiter(): boolean {
    const waiting = this.queue?.waiting() ?? 0;
    const others = this.others;
    if (this.modeNow !== 'shared' || waiting === 0 || !others || others.better > 0) return false;
    if (others.same === 0) return true;
    let held = 0;
    let total = 0;
    this.options.servers.forEach((s, i) => { held += this.inUse[i]!.size + this.idle[i]!.length; total += s.slots; });
    return held < Math.ceil(total * waiting / (waiting + others.same));
  }

  /** The queue's waiters or busy count changed: tell Redis (batched) what we need now. */
  changed(): void {
    if (this.modeNow !== 'shared' || this.checkScheduled || this.closed) return;
    // Looked at once per turn of the event loop: computing demand walks the waiters.
    this.checkScheduled = true;
    setImmediate(() => {
      this.checkScheduled = false;
      if (this.pendingRelease.length > 0 || this.surplus() > 0) return this.schedule();
      // Only news is sent: a demand Redis already knows about waits for pub/sub or the retry timer.
      const unmet = Math.max(0, this.unmet());
      if (unmet === this.advertised) return;
      // A backlog that merely grows or shrinks is news for fairness only: sent at most every
      // DEMAND_EVERY_MS, so a busy instance does not spend an exchange per arrival.
      const wait = this.lastExchangeAt + DEMAND_EVERY_MS - this.now();
      if (unmet > 0 && this.advertised > 0 && wait > 0) {
        this.demandTimer ??= setTimeout(() => { this.demandTimer = undefined; this.changed(); }, wait);
        return;
      }
      this.schedule();
    });
  }

  private checkScheduled = false;
  private demandTimer: NodeJS.Timeout | undefined;
  private lastExchangeAt = -Infinity;

  view(): { mode: SlotMode; instance: string; servers: { url: string; cluster_busy: number | null; held: number; in_use: number }[]; instances: number | null; view_age_ms: number | null } {
    const v = this.lastView;
    return {
      mode: this.modeNow,
      instance: this.options.instanceId,
      servers: this.options.servers.map((s, i) => ({
        url: s.url,
        cluster_busy: v ? v.active[i] ?? 0 : null,
        held: this.inUse[i]!.size + this.idle[i]!.length,
        in_use: this.inUse[i]!.size,
      })),
      instances: v?.instances ?? null,
      view_age_ms: v ? Math.round(this.now() - v.at) : null,
    };
  }

  close(): void {
    this.closed = true;
    clearInterval(this.renewTimer);
    clearTimeout(this.demandTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }

  /** Releases everything held, so other instances get the slots at once rather than after lease_ttl. */
  async releaseAll(): Promise<void> {
    // One exchange at a time: wait for one in flight, so releases are sent exactly once.
    for (let i = 0; i < 100 && this.inFlight; i++) await new Promise((r) => setTimeout(r, 10));
    this.closed = true;
    for (const [server, ids] of this.idle.entries()) for (const id of ids.splice(0)) this.pendingRelease.push([server, id]);
    if (this.pendingRelease.length === 0 || this.modeNow !== 'shared') return;
    await this.exchange([]).catch(() => {});
  }

  private advertised = 0;

  /** Waiters beyond the idle leases: what to ask Redis for (negative: idle leases to spare). */
  private unmet(): number {
    const want = (this.queue?.demand() ?? []).reduce((sum, d) => sum + d.count, 0);
    return this.modeNow === 'shared' ? want - this.idleCount() : 0;
  }

  private surplus(): number {
    return this.modeNow === 'shared' ? -this.unmet() : 0;
  }

  private idleCount(): number {
    return this.idle.reduce((sum, ids) => sum + ids.length, 0);
  }

  private schedule(): void {
    if (this.closed) return;
    if (this.inFlight) {
      this.dirty = true;
      return;
    }
    if (this.scheduled) return;
    this.scheduled = true;
    // setImmediate batches every release and arrival of this turn of the event loop.
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.closed || this.inFlight) return;
    // Not connected: nothing to try; the link's `up` event schedules the next exchange.
    if (this.link.client.status !== 'ready') return;
    this.inFlight = true;
    this.dirty = false;
    try {
      await this.exchange(this.demandToSend());
      this.link.reportUp();
      if (this.modeNow === 'fallback') this.modeNow = 'shared';
    } catch (err) {
      this.totals.failures++;
      this.link.reportDown(err);
      this.enterFallback();
    } finally {
      this.inFlight = false;
    }
    this.queue?.wake();
    if (this.dirty) this.schedule();
  }

  /** Demand per class after the idle leases, which the queue will use for its most urgent waiters. */
  private demandToSend(): { rank: number; count: number; ageMs: number }[] {
    let idle = this.modeNow === 'shared' ? this.idleCount() : 0;
    const now = this.now();
    const out: { rank: number; count: number; ageMs: number }[] = [];
    for (const d of this.queue?.demand() ?? []) {
      const covered = Math.min(idle, d.count);
      idle -= covered;
      if (d.count > covered) out.push({ rank: d.rank, count: d.count - covered, ageMs: now - d.oldestAt });
    }
    return out;
  }

  private async exchange(demand: { rank: number; count: number; ageMs: number }[]): Promise<void> {
    const started = this.now();
    const renew = this.renewDue || this.modeNow === 'fallback';
    // Adopt fallback-era slots: give them lease ids so Redis counts them from now on.
    for (const set of this.inUse) for (const p of set) p.id ??= `${this.options.instanceId}:${this.token}:a${++this.calls}`;
    const surplus = this.surplusIds(demand);
    const release = [...this.pendingRelease, ...surplus];
    const inUse = renew ? this.inUse.flatMap((set) => [...set].map((p) => [p.server, p.id!] as const)) : [];
    const idle = renew ? this.idle.flatMap((ids, s) => ids.map((id) => [s, id] as const)) : [];
    let reply: unknown;
    try {
      reply = await this.link.client.eval(LEASE_EXCHANGE_LUA, this.keys.length, ...this.keys, ...exchangeArgv({
      instance: this.options.instanceId,
      ttlMs: this.options.leaseTtlMs,
      idBase: `${this.options.instanceId}:${this.token}:${++this.calls}`,
      limits: this.options.servers.map((s) => s.slots),
      release, inUse, idle, demand,
      channel: this.channel,
    }));
    } catch (err) {
      // Surplus leases left `idle` already: release them with the next exchange instead.
      this.pendingRelease.push(...surplus);
      throw err;
    }
    const result = parseExchangeReply(reply);
    // Only now are the releases confirmed; a failed call keeps them for the next one.
    this.pendingRelease = this.pendingRelease.slice(release.length - surplus.length);
    this.totals.released += release.length;
    if (renew) this.renewDue = false;
    this.advertised = Math.max(0, demand.reduce((sum, d) => sum + d.count, 0) - result.granted.length);
    this.apply(result, started);
  }

  /** Idle leases nobody here is waiting for; taken out of `idle` now, released in this exchange. */
  private surplusIds(demand: { count: number }[]): [number, string][] {
    if (this.modeNow !== 'shared' || demand.length > 0) return [];
    let extra = this.surplus();
    const out: [number, string][] = [];
    for (let s = this.idle.length - 1; s >= 0 && extra > 0; s--) {
      while (extra > 0 && this.idle[s]!.length > 0) {
        out.push([s, this.idle[s]!.pop()!]);
        extra--;
      }
    }
    return out;
  }

  private apply(result: LeaseExchangeResult, started: number): void {
    this.totals.exchanges++;
    this.lastExchangeAt = this.now();
    for (const { server, id } of result.granted) this.idle[server]!.push(id);
    this.totals.granted += result.granted.length;
    if (result.lost.length > 0) {
      const lost = new Set(result.lost);
      this.totals.lost += lost.size;
      for (const ids of this.idle) {
        for (let i = ids.length - 1; i >= 0; i--) if (lost.has(ids[i]!)) ids.splice(i, 1);
      }
    }
    this.lastView = { active: result.active, instances: result.instances, at: this.now() };
    this.others = result.others;
    if (result.granted.length > 0) this.onExchange?.(this.now() - started, result.granted.length);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.advertised > 0) {
      // Still short: pub/sub wakes us when a slot frees; expiry of someone's lease does not
      // publish, so also retry when the earliest lease expires (and at most every ttl/4).
      const cap = Math.max(50, Math.floor(this.options.leaseTtlMs / 4));
      const wait = Math.min(cap, Math.max(20, (result.earliestExpiryMs ?? cap) + 5));
      this.retryTimer = setTimeout(() => { this.retryTimer = undefined; this.schedule(); }, wait);
      this.retryTimer.unref();
    }
  }

  private enterFallback(): void {
    if (this.modeNow === 'fallback') return;
    this.modeNow = 'fallback';
    this.others = undefined;
    // Idle leases are of no use without Redis; hand them back once it is reachable again.
    for (const [server, ids] of this.idle.entries()) for (const id of ids.splice(0)) this.pendingRelease.push([server, id]);
    this.queue?.wake();
  }
}
