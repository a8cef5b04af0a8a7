// The only queue in Sluice. It owns every backend slot: a request runs on a backend
// server only while it holds a lease from here, so the backend never sees more than its
// slot count. Waiters are served by priority class, FIFO within a class, subject to
// per-group caps (max_slots) and shares other groups cannot take (reserved_slots).
//
// Invariants:
// - busy(server) <= slots(server) at all times, except after a reload lowered slots: then
//   no lease is granted on that server until enough running requests have finished.
// - leases are released exactly once.
// - a waiter is in exactly one class set until it is granted, times out, is shed or aborts.
// - an aborted or timed-out waiter never receives a lease.
import { SluiceError } from '../errors.js';
import { PRIORITY_CLASSES } from '../config/schema.js';
import { DrainEstimator } from './drain-estimator.js';
import { BackendHealth } from './backend-health.js';

export interface SlotServer {
  readonly index: number;
  readonly url: string;
  readonly slots: number;
  busy: number;
}

/** Requests that share caps: a route, or the jobs of a route. */
export interface SlotGroup {
  readonly name: string;
  readonly maxSlots: number | undefined;
  readonly reservedSlots: number;
  inflight: number;
}

/** What the live queue view shows about a request; opaque to the queue itself. */
export interface SlotTicketInfo {
  readonly requestId: string;
  readonly method: string;
  readonly path: string;
  /** Coalesced followers waiting on this request, when it leads a flight. */
  followers?: () => number;
}

export interface AcquireRequest {
  readonly group: SlotGroup;
  readonly priorityRank: number;
  /** How long the request may wait for a slot, from now. */
  readonly queueTimeoutMs: number;
  /** Aborted when nobody wants the answer any more (the client left). */
  readonly signal?: AbortSignal;
  readonly info: SlotTicketInfo;
}

export interface SlotLease {
  readonly server: SlotServer;
  /** 1-based position at enqueue; 0 when a slot was free at once. */
  readonly position: number;
  release(): void;
}

export interface QueueOptions {
  readonly maxWaiting: number;
  readonly shed: 'early' | 'timeout';
  /** Several instances share the backend: how many of each server's slots this one may fill. */
  readonly capacity?: SlotCapacity;
}

/**
 * A budget shared with other instances (src/cluster). The queue still decides who runs
 * and in what order; the budget only lowers how many may run per server, and hears about
 * every start, finish and change in demand so it can ask for more or give slots back.
 */
export interface SlotCapacity {
  /** Requests this instance may have running on server `index` now (capped at its slots). */
  limit(index: number): number;
  /** A request starts on server `index`; the token comes back to finished(). */
  started(index: number): unknown;
  finished(token: unknown): void;
  /** Waiters or running requests changed. */
  changed(): void;
}

/** Waiters the queue could start given more slots, per class (for a shared budget). */
export interface ClassDemand { readonly rank: number; readonly count: number; readonly oldestAt: number }

interface Waiter {
  readonly request: AcquireRequest;
  readonly enqueuedAt: number;
  readonly deadlineAt: number;
  readonly position: number;
  readonly resolve: (lease: SlotLease) => void;
  readonly reject: (err: SluiceError) => void;
  timer: NodeJS.Timeout | undefined;
  onAbort: (() => void) | undefined;
}

export interface InflightEntry { readonly info: SlotTicketInfo; readonly group: string; readonly priorityRank: number; readonly startedAt: number; readonly server: string }
export interface WaitingEntry { readonly info: SlotTicketInfo; readonly group: string; readonly priorityRank: number; readonly enqueuedAt: number; readonly deadlineAt: number; readonly position: number }

export class SlotQueue {
  readonly servers: readonly SlotServer[];
  readonly estimator: DrainEstimator;
  private readonly classes: Set<Waiter>[] = PRIORITY_CLASSES.map(() => new Set<Waiter>());
  private readonly groups = new Map<string, SlotGroup>();
  private readonly inflight = new Set<InflightEntry>();
  private waitingCount = 0;

  constructor(
    servers: readonly { url: string; slots: number }[],
    private options: QueueOptions,
    private readonly now: () => number = () => performance.now(),
    /** Passive health: grants skip ejected servers (src/slots/backend-health.ts). */
    readonly health: BackendHealth = new BackendHealth(servers.map((s) => s.url), { failures: 0, cooldownMs: 0 }),
  ) {
    this.servers = servers.map((s, index) => ({ index, url: s.url, slots: s.slots, busy: 0 }));
    this.estimator = new DrainEstimator(now);
    this.capacity = options.capacity;
  }

  private readonly capacity: SlotCapacity | undefined;

  /** Slots this instance may fill on a server now: its slots, or less under a shared budget. */
  private limitOf(server: SlotServer): number {
    return this.capacity ? Math.min(server.slots, this.capacity.limit(server.index)) : server.slots;
  }

  private usableSlots(): number {
    if (!this.capacity) return this.totalSlots;
    return this.servers.reduce((sum, s) => sum + this.limitOf(s), 0);
  }

  /** Grants what a grown shared budget allows (the budget calls this). */
  wake(): void {
    this.dispatch();
  }

  /** Per class, the waiters that only lack a slot (not their group's max_slots), and the oldest one's enqueue time. */
  demandByClass(): ClassDemand[] {
    const room = new Map<SlotGroup, number>();
    const out: ClassDemand[] = [];
    this.classes.forEach((set, rank) => {
      let count = 0;
      let oldestAt = Infinity;
      for (const w of set) {
        const g = w.request.group;
        const left = room.get(g) ?? (g.maxSlots === undefined ? Infinity : g.maxSlots - g.inflight);
        if (left <= 0) continue;
        room.set(g, left - 1);
        count++;
        oldestAt = Math.min(oldestAt, w.enqueuedAt);
      }
      if (count > 0) out.push({ rank, count, oldestAt });
    });
    return out;
  }

  get totalSlots(): number {
    return this.servers.reduce((sum, s) => sum + s.slots, 0);
  }

  get busySlots(): number {
    return this.servers.reduce((sum, s) => sum + s.busy, 0);
  }

  get waiting(): number {
    return this.waitingCount;
  }

  /** Declares (once) the caps of a group; later calls return the same group. */
  group(name: string, caps: { maxSlots?: number | undefined; reservedSlots?: number }): SlotGroup {
    let group = this.groups.get(name);
    if (!group) {
      group = { name, maxSlots: caps.maxSlots, reservedSlots: caps.reservedSlots ?? 0, inflight: 0 };
      this.groups.set(name, group);
    }
    return group;
  }

  /**
   * A reload: new queue options, slot counts (a lowered count takes effect as running
   * requests finish; nothing is cut off) and group caps. Waiters stay where they are.
   */
  reconfigure(options: QueueOptions, slots: ReadonlyMap<string, number>, groups: ReadonlyArray<{ name: string; maxSlots: number | undefined; reservedSlots: number }>): void {
    this.options = options;
    for (const server of this.servers) {
      const next = slots.get(server.url);
      if (next !== undefined) (server as { slots: number }).slots = next;
    }
    for (const caps of groups) {
      const group = this.group(caps.name, caps) as { maxSlots: number | undefined; reservedSlots: number };
      group.maxSlots = caps.maxSlots;
      group.reservedSlots = caps.reservedSlots;
    }
    this.dispatch();
  }

  reconfigureGroup(name: string, caps: { maxSlots: number | undefined; reservedSlots: number }): void {
    this.reconfigure(this.options, new Map(), [{ name, ...caps }]);
  }

  /** Resolves with a lease, or rejects with queue_full / queue_shed / queue_timeout / client_closed. */
  acquire(request: AcquireRequest): Promise<SlotLease> {
    if (request.signal?.aborted) return Promise.reject(abortError(request.signal));
    if (this.waitingCount === 0 && this.canRun(request.group)) {
      return Promise.resolve(this.grant(request, 0));
    }
    if (this.waitingCount >= this.options.maxWaiting) {
      return Promise.reject(this.overloaded('queue_full', `${this.waitingCount} requests already waiting`));
    }
    const ahead = this.countAhead(request.priorityRank);
    if (this.options.shed === 'early') {
      const slotsForGroup = Math.min(this.totalSlots, request.group.maxSlots ?? Infinity);
      const estimate = this.estimator.estimateWaitMs(ahead, slotsForGroup);
      if (estimate !== undefined && estimate > request.queueTimeoutMs) {
        return Promise.reject(this.overloaded('queue_shed', `about ${Math.round(estimate)}ms estimated, ${request.queueTimeoutMs}ms allowed`));
      }
    }
    return new Promise<SlotLease>((resolve, reject) => {
      const enqueuedAt = this.now();
      const waiter: Waiter = {
        request, enqueuedAt, deadlineAt: enqueuedAt + request.queueTimeoutMs, position: ahead + 1,
        resolve, reject, timer: undefined, onAbort: undefined,
      };
      waiter.timer = setTimeout(() => {
        this.remove(waiter);
        reject(this.overloaded('queue_timeout', `waited ${request.queueTimeoutMs}ms`));
      }, request.queueTimeoutMs);
      if (request.signal) {
        waiter.onAbort = () => {
          this.remove(waiter);
          reject(abortError(request.signal!));
        };
        request.signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.classes[request.priorityRank]!.add(waiter);
      this.waitingCount++;
      // A waiter can be runnable at once when only other groups' caps held the queue up.
      this.dispatch();
    });
  }

  /** Retry-After for a client turned away now. */
  retryAfterSeconds(): number {
    return this.estimator.retryAfterSeconds(this.waitingCount, this.totalSlots);
  }

  depthByClass(): Record<string, number> {
    return Object.fromEntries(PRIORITY_CLASSES.map((name, rank) => [name, this.classes[rank]!.size]));
  }

  oldestWaitMs(): number {
    let oldest = Infinity;
    for (const set of this.classes) {
      const first = set.values().next();
      if (!first.done) oldest = Math.min(oldest, first.value.enqueuedAt);
    }
    return Number.isFinite(oldest) ? Math.round(this.now() - oldest) : 0;
  }

  waitingEntries(): WaitingEntry[] {
    const entries: WaitingEntry[] = [];
    for (const set of this.classes) {
      for (const w of set) {
        entries.push({ info: w.request.info, group: w.request.group.name, priorityRank: w.request.priorityRank, enqueuedAt: w.enqueuedAt, deadlineAt: w.deadlineAt, position: w.position });
      }
    }
    return entries;
  }

  inflightEntries(): InflightEntry[] {
    return [...this.inflight];
  }

  groupStats(): { name: string; inflight: number; maxSlots: number | undefined; reservedSlots: number }[] {
    return [...this.groups.values()].map((g) => ({ name: g.name, inflight: g.inflight, maxSlots: g.maxSlots, reservedSlots: g.reservedSlots }));
  }

  /** Rejects every waiter; used when the shutdown grace period has run out. */
  rejectAll(code: 'shutting_down'): void {
    for (const set of this.classes) {
      for (const waiter of [...set]) {
        this.remove(waiter);
        waiter.reject(this.overloaded(code));
      }
    }
  }

  private overloaded(code: 'queue_full' | 'queue_shed' | 'queue_timeout' | 'shutting_down', detail?: string): SluiceError {
    return new SluiceError(code, detail, { retryAfterSeconds: this.retryAfterSeconds() });
  }

  private countAhead(rank: number): number {
    let ahead = 0;
    for (let r = 0; r <= rank; r++) ahead += this.classes[r]!.size;
    return ahead;
  }

  /** Servers a grant may use: the available ones, or all of them when none is. */
  private usableServers(): readonly SlotServer[] {
    if (!this.health.enabled) return this.servers;
    const usable = this.servers.filter((s) => this.health.available(s.url));
    return usable.length > 0 ? usable : this.servers;
  }

  private canRun(group: SlotGroup): boolean {
    const usable = this.usableServers();
    const free = usable === this.servers && !this.capacity
      ? this.totalSlots - this.busySlots
      : usable.reduce((sum, s) => sum + Math.max(0, this.limitOf(s) - s.busy), 0);
    if (free <= 0) return false;
    if (group.maxSlots !== undefined && group.inflight >= group.maxSlots) return false;
    // Slots still owed to other groups' reservations are not free for this one.
    let owedToOthers = 0;
    for (const other of this.groups.values()) {
      if (other !== group) owedToOthers += Math.max(0, other.reservedSlots - other.inflight);
    }
    return free - owedToOthers >= 1;
  }

  private grant(request: AcquireRequest, position: number): SlotLease {
    const server = this.pickServer();
    this.health.granted(server.url);
    server.busy++;
    const token = this.capacity?.started(server.index);
    request.group.inflight++;
    const startedAt = this.now();
    const entry: InflightEntry = { info: request.info, group: request.group.name, priorityRank: request.priorityRank, startedAt, server: server.url };
    this.inflight.add(entry);
    let released = false;
    return {
      server,
      position,
      release: () => {
        if (released) return;
        released = true;
        server.busy--;
        request.group.inflight--;
        this.inflight.delete(entry);
        this.estimator.recordCompletion(this.now() - startedAt);
        this.capacity?.finished(token);
        this.dispatch();
      },
    };
  }

  /** The server with the most free slots; ties go to the first listed. */
  private pickServer(): SlotServer {
    const usable = this.usableServers();
    let best = usable[0]!;
    for (const server of usable) {
      if (this.limitOf(server) - server.busy > this.limitOf(best) - best.busy) best = server;
    }
    return best;
  }

  /** Grants free slots to the most urgent runnable waiters; a waiter blocked by its group's cap does not block others. */
  private dispatch(): void {
    while (this.waitingCount > 0 && this.busySlots < this.usableSlots()) {
      const next = this.firstRunnable();
      if (!next) break;
      this.remove(next);
      // Its timer may not have fired yet; a waiter past its deadline is late, never granted.
      if (this.now() >= next.deadlineAt) {
        next.reject(this.overloaded('queue_timeout', `waited ${next.request.queueTimeoutMs}ms`));
        continue;
      }
      next.resolve(this.grant(next.request, next.position));
    }
    this.capacity?.changed();
  }

  private firstRunnable(): Waiter | undefined {
    const checked = new Set<SlotGroup>();
    for (const set of this.classes) {
      for (const waiter of set) {
        const group = waiter.request.group;
        if (checked.has(group)) continue;
        if (this.canRun(group)) return waiter;
        checked.add(group);
      }
    }
    return undefined;
  }

  private remove(waiter: Waiter): void {
    const set = this.classes[waiter.request.priorityRank]!;
    if (!set.delete(waiter)) return;
    this.waitingCount--;
    this.capacity?.changed();
    if (waiter.timer) clearTimeout(waiter.timer);
    if (waiter.onAbort) waiter.request.signal?.removeEventListener('abort', waiter.onAbort);
  }
}

/**
 * Why a waiter's signal fired: the reason it was aborted with when that is a SluiceError
 * (a route deadline says total_timeout), otherwise the client left.
 */
function abortError(signal: AbortSignal): SluiceError {
  return signal.reason instanceof SluiceError ? signal.reason : new SluiceError('client_closed', 'left while queued');
}
