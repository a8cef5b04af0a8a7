// The queue under a shared budget (SlotCapacity, implemented by src/cluster): it never runs
// more than the budget allows, tells the budget about every start and finish, grants as
// soon as the budget grows, and reports as demand only waiters that more slots would help.
import { describe, expect, it } from 'vitest';
import { SlotQueue, type SlotCapacity, type SlotLease } from '../../src/slots/slot-queue.js';

const info = (id: string) => ({ requestId: id, method: 'GET', path: `/${id}` });

/** A budget a test sets by hand, recording what the queue tells it. */
class HandBudget implements SlotCapacity {
  allowed = 0;
  readonly events: string[] = [];
  private n = 0;
  limit(): number { return this.allowed; }
  started(index: number): unknown { const token = `t${++this.n}`; this.events.push(`start ${index} ${token}`); return token; }
  finished(token: unknown): void { this.events.push(`finish ${String(token)}`); }
  changed(): void {}
}

describe('SlotQueue with a shared budget', () => {
  it('runs at most what the budget allows, and grants when it grows (wake)', async () => {
    const budget = new HandBudget();
    const q = new SlotQueue([{ url: 'http://s0', slots: 10 }], { maxWaiting: 100, shed: 'timeout', capacity: budget });
    const g = q.group('r', {});
    const leases: SlotLease[] = [];
    const all = Array.from({ length: 4 }, (_, i) => q.acquire({ group: g, priorityRank: 2, queueTimeoutMs: 5000, info: info(String(i)) }).then((l) => leases.push(l)));
    await new Promise((r) => setImmediate(r));
    expect(leases).toHaveLength(0);
    expect(q.waiting).toBe(4);
    budget.allowed = 3;
    q.wake();
    await new Promise((r) => setImmediate(r));
    expect(leases).toHaveLength(3);
    expect(q.busySlots).toBe(3);
    // The budget shrinks (e.g. Redis went away and fallback_slots is 1): nothing new starts.
    budget.allowed = 1;
    leases[0]!.release();
    await new Promise((r) => setImmediate(r));
    expect(leases).toHaveLength(3);
    leases[1]!.release();
    leases[2]!.release();
    await new Promise((r) => setImmediate(r));
    expect(leases).toHaveLength(4);
    leases[3]!.release();
    await Promise.all(all);
    expect(budget.events.filter((e) => e.startsWith('start'))).toHaveLength(4);
    expect(budget.events.filter((e) => e.startsWith('finish'))).toEqual(['finish t1', 'finish t2', 'finish t3', 'finish t4']);
  });

  it('demand per class counts only waiters that more slots would start (not those held by their route\'s max_slots)', async () => {
    const budget = new HandBudget();
    budget.allowed = 1;
    const q = new SlotQueue([{ url: 'http://s0', slots: 10 }], { maxWaiting: 100, shed: 'timeout', capacity: budget });
    const capped = q.group('capped', { maxSlots: 1 });
    const open = q.group('open', {});
    const first = await q.acquire({ group: capped, priorityRank: 1, queueTimeoutMs: 5000, info: info('c0') });
    const pending = [
      ...Array.from({ length: 3 }, (_, i) => q.acquire({ group: capped, priorityRank: 1, queueTimeoutMs: 5000, info: info(`c${i + 1}`) })),
      ...Array.from({ length: 2 }, (_, i) => q.acquire({ group: open, priorityRank: 3, queueTimeoutMs: 5000, info: info(`o${i}`) })),
    ];
    // The capped route is at its max: its 3 waiters need that request to finish, not more slots.
    expect(q.demandByClass().map(({ rank, count }) => ({ rank, count }))).toEqual([{ rank: 3, count: 2 }]);
    budget.allowed = 10;
    first.release();
    const leases = await Promise.all(pending.slice(0, 1).concat(pending.slice(3)));
    for (const l of leases) l.release();
    for (const p of pending.slice(1, 3)) (await p).release();
  });
});
