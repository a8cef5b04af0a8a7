import { describe, expect, it } from 'vitest';
import { SlotQueue, type SlotLease } from '../../src/slots/slot-queue.js';
import { SluiceError } from '../../src/errors.js';

const info = (id: string) => ({ requestId: id, method: 'GET', path: `/${id}` });

function queue(slots: number[], opts: Partial<{ maxWaiting: number; shed: 'early' | 'timeout' }> = {}) {
  return new SlotQueue(slots.map((n, i) => ({ url: `http://s${i}`, slots: n })), { maxWaiting: 100, shed: 'timeout', ...opts });
}

describe('SlotQueue', () => {
  it('rejects an aborted waiter with the abort reason: a route deadline is not a client that left', async () => {
    const q = queue([1]);
    const g = q.group('r', {});
    const held = await q.acquire({ group: g, priorityRank: 2, queueTimeoutMs: 5000, info: info('held') });
    const deadline = new AbortController();
    const waiting = q.acquire({ group: g, priorityRank: 2, queueTimeoutMs: 5000, signal: deadline.signal, info: info('waiting') });
    deadline.abort(new SluiceError('total_timeout', 'route r allows 300ms'));
    await expect(waiting).rejects.toMatchObject({ code: 'total_timeout' });
    expect(q.waiting).toBe(0);
    // Already aborted before asking: the same reason, not client_closed.
    await expect(q.acquire({ group: g, priorityRank: 2, queueTimeoutMs: 5000, signal: deadline.signal, info: info('late') })).rejects.toMatchObject({ code: 'total_timeout' });
    // A client that left (a plain abort) is still client_closed.
    const gone = new AbortController();
    const leaving = q.acquire({ group: g, priorityRank: 2, queueTimeoutMs: 5000, signal: gone.signal, info: info('leaving') });
    gone.abort();
    await expect(leaving).rejects.toMatchObject({ code: 'client_closed' });
    held.release();
  });

  it('never grants more leases than slots, and grants the rest as slots free up', async () => {
    const q = queue([2]);
    const g = q.group('r', {});
    const leases: SlotLease[] = [];
    const pending = Array.from({ length: 5 }, (_, i) => q.acquire({ group: g, priorityRank: 2, queueTimeoutMs: 5000, info: info(String(i)) }).then((l) => { leases.push(l); return l; }));
    await new Promise((r) => setImmediate(r));
    expect(leases).toHaveLength(2);
    expect(q.busySlots).toBe(2);
    expect(q.waiting).toBe(3);
    leases[0]!.release();
    leases[0]!.release(); // idempotent: a double release must not free two slots
    await new Promise((r) => setImmediate(r));
    expect(leases).toHaveLength(3);
    expect(q.busySlots).toBe(2);
    for (const l of leases.slice(1)) l.release();
    await Promise.all(pending);
    for (const l of leases.slice(3)) l.release();
    expect(q.busySlots).toBe(0);
  });

  it('serves higher priority classes first and FIFO within a class', async () => {
    const q = queue([1]);
    const g = q.group('r', {});
    const first = await q.acquire({ group: g, priorityRank: 2, queueTimeoutMs: 5000, info: info('first') });
    const order: string[] = [];
    const ask = (id: string, rank: number) => q.acquire({ group: g, priorityRank: rank, queueTimeoutMs: 5000, info: info(id) }).then((l) => { order.push(id); l.release(); });
    const all = [ask('low-1', 3), ask('low-2', 3), ask('high-1', 1), ask('normal-1', 2), ask('high-2', 1)];
    first.release();
    await Promise.all(all);
    expect(order).toEqual(['high-1', 'high-2', 'normal-1', 'low-1', 'low-2']);
  });

  it('caps a group at max_slots without blocking other groups behind it', async () => {
    const q = queue([4]);
    const capped = q.group('capped', { maxSlots: 1 });
    const other = q.group('other', {});
    const a = await q.acquire({ group: capped, priorityRank: 2, queueTimeoutMs: 5000, info: info('a') });
    let bGranted = false;
    const b = q.acquire({ group: capped, priorityRank: 2, queueTimeoutMs: 5000, info: info('b') }).then((l) => { bGranted = true; return l; });
    const c = await q.acquire({ group: other, priorityRank: 2, queueTimeoutMs: 5000, info: info('c') });
    expect(bGranted).toBe(false);
    expect(q.busySlots).toBe(2);
    a.release();
    (await b).release();
    c.release();
  });

  it('keeps reserved slots for their group', async () => {
    const q = queue([3]);
    const reserved = q.group('vip', { reservedSlots: 1 });
    const flood = q.group('flood', {});
    const held = [await q.acquire({ group: flood, priorityRank: 2, queueTimeoutMs: 5000, info: info('f1') }), await q.acquire({ group: flood, priorityRank: 2, queueTimeoutMs: 5000, info: info('f2') })];
    await expect(q.acquire({ group: flood, priorityRank: 2, queueTimeoutMs: 50, info: info('f3') })).rejects.toMatchObject({ code: 'queue_timeout' });
    const vip = await q.acquire({ group: reserved, priorityRank: 2, queueTimeoutMs: 50, info: info('v') });
    expect(vip.server.url).toBe('http://s0');
    vip.release();
    for (const l of held) l.release();
  });

  it('spreads leases to the server with the most free slots', async () => {
    const q = queue([1, 3]);
    const g = q.group('r', {});
    const servers: string[] = [];
    for (let i = 0; i < 4; i++) servers.push((await q.acquire({ group: g, priorityRank: 2, queueTimeoutMs: 100, info: info(String(i)) })).server.url);
    expect(servers.filter((s) => s === 'http://s1')).toHaveLength(3);
    expect(servers.filter((s) => s === 'http://s0')).toHaveLength(1);
    expect(q.busySlots).toBe(4);
  });

  it('refuses at once past max_waiting, with a Retry-After', async () => {
    const q = queue([1], { maxWaiting: 2 });
    const g = q.group('r', {});
    const held = await q.acquire({ group: g, priorityRank: 2, queueTimeoutMs: 1000, info: info('h') });
    const waiting = [1, 2].map((i) => q.acquire({ group: g, priorityRank: 2, queueTimeoutMs: 1000, info: info(String(i)) }));
    const err = await q.acquire({ group: g, priorityRank: 2, queueTimeoutMs: 1000, info: info('x') }).catch((e: SluiceError) => e);
    expect(err).toBeInstanceOf(SluiceError);
    expect((err as SluiceError).code).toBe('queue_full');
    expect((err as SluiceError).retryAfterSeconds).toBeGreaterThanOrEqual(1);
    held.release();
    for (const w of waiting) (await w).release();
  });

  it('removes a waiter whose client aborted; it never gets a lease', async () => {
    const q = queue([1]);
    const g = q.group('r', {});
    const held = await q.acquire({ group: g, priorityRank: 2, queueTimeoutMs: 1000, info: info('h') });
    const controller = new AbortController();
    const gone = q.acquire({ group: g, priorityRank: 2, queueTimeoutMs: 1000, signal: controller.signal, info: info('gone') });
    expect(q.waiting).toBe(1);
    controller.abort();
    await expect(gone).rejects.toMatchObject({ code: 'client_closed' });
    expect(q.waiting).toBe(0);
    held.release();
    expect(q.busySlots).toBe(0);
  });

  it('sheds early when the estimated wait exceeds the queue timeout', async () => {
    let now = 0;
    const q = new SlotQueue([{ url: 'http://s0', slots: 1 }], { maxWaiting: 100, shed: 'early' }, () => now);
    const g = q.group('r', {});
    // Teach the estimator a 100 ms service time.
    const l = await q.acquire({ group: g, priorityRank: 2, queueTimeoutMs: 1000, info: info('warm') });
    now += 100;
    l.release();
    const held = await q.acquire({ group: g, priorityRank: 2, queueTimeoutMs: 1000, info: info('h') });
    const admitted = Array.from({ length: 3 }, (_, i) => q.acquire({ group: g, priorityRank: 2, queueTimeoutMs: 250, info: info(`w${i}`) }).catch((e: SluiceError) => e));
    // Three ahead at 100 ms each on one slot: 300 ms > 250 ms.
    const shed = await q.acquire({ group: g, priorityRank: 2, queueTimeoutMs: 250, info: info('late') }).catch((e: SluiceError) => e);
    expect((shed as SluiceError).code).toBe('queue_shed');
    expect(q.waiting).toBe(3);
    q.rejectAll('shutting_down');
    for (const r of await Promise.all(admitted)) expect((r as SluiceError).code).toBe('shutting_down');
    held.release();
  });
});
