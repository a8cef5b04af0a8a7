// The Coalescer on its own: roles, waking, leaving, interest, leader-error policies, Vary.
import { describe, expect, it } from 'vitest';
import { Coalescer, type FlightMember, type FollowResult } from '../../src/coalesce/coalescer.js';
import { SluiceError } from '../../src/errors.js';
import { RequestWork } from '../../src/pipeline/request-work.js';

/** A member as the pipeline makes one: its own RequestWork with a deadline; `leave()` is its client going away. */
function member(headers: Record<string, string> = {}, deadlineInMs = 10_000): FlightMember & { leave(): void } {
  const work = new RequestWork();
  work.setDeadline(performance.now() + deadlineInMs, () => new SluiceError('total_timeout', 'test deadline'));
  return { work, headers, leave: () => work.clientLeft() };
}

function follower<A>(c: Coalescer<A>, key: string, m: FlightMember): Promise<FollowResult<A>> {
  const joined = c.join(key, m, 'share');
  if (joined.role !== 'follower') throw new Error('expected to follow');
  return joined.result;
}

describe('Coalescer', () => {
  it('makes the first request the leader and wakes every follower with its answer', async () => {
    const c = new Coalescer<string>();
    const lead = c.join('k', member(), 'share');
    expect(lead.role).toBe('leader');
    const waits = Array.from({ length: 5 }, () => follower(c, 'k', member()));
    expect(c.stats()).toMatchObject({ flights: 1, followers_waiting: 5 });
    if (lead.role !== 'leader') throw new Error('unreachable');
    expect(lead.leadership.finish({ answer: 'body', failed: false, vary: [] })).toBe(5);
    for (const result of await Promise.all(waits)) expect(result).toEqual({ kind: 'answer', answer: 'body' });
    expect(c.stats()).toMatchObject({ flights: 0, followers_waiting: 0, followers_saved: 5 });
    // A settled flight is gone: the next request leads a new one, and a second finish does nothing.
    expect(c.join('k', member(), 'share').role).toBe('leader');
    expect(lead.leadership.finish({ answer: 'again', failed: false, vary: [] })).toBe(0);
  });

  it('keeps different keys apart', () => {
    const c = new Coalescer<string>();
    expect(c.join('a', member(), 'share').role).toBe('leader');
    expect(c.join('b', member(), 'share').role).toBe('leader');
    expect(c.stats().flights).toBe(2);
  });

  it('lets a follower leave without affecting the others, and aborts the call only when everyone has left', async () => {
    const c = new Coalescer<string>();
    const leaderMember = member();
    const lead = c.join('k', leaderMember, 'share');
    if (lead.role !== 'leader') throw new Error('unreachable');
    const f1 = member();
    const f2 = member();
    const w1 = follower(c, 'k', f1);
    const w2 = follower(c, 'k', f2);
    f1.leave();
    await expect(w1).rejects.toMatchObject({ code: 'client_closed' });
    leaderMember.leave();
    expect(lead.leadership.signal.aborted).toBe(false); // f2 still wants the answer
    f2.leave();
    await expect(w2).rejects.toMatchObject({ code: 'client_closed' });
    expect(lead.leadership.signal.aborted).toBe(true);
    expect((lead.leadership.signal.reason as SluiceError).code).toBe('client_closed');
  });

  it('aborts the call at the leader\'s deadline', async () => {
    const c = new Coalescer<string>();
    const lead = c.join('k', member({}, 30), 'share');
    if (lead.role !== 'leader') throw new Error('unreachable');
    await new Promise((r) => setTimeout(r, 80));
    expect((lead.leadership.signal.reason as SluiceError).code).toBe('total_timeout');
  });

  it('shares a leader error with every follower under `share`', async () => {
    const c = new Coalescer<string>();
    const lead = c.join('k', member(), 'share');
    if (lead.role !== 'leader') throw new Error('unreachable');
    const waits = [follower(c, 'k', member()), follower(c, 'k', member())];
    lead.leadership.finish({ error: new SluiceError('upstream_reset') });
    for (const r of await Promise.all(waits)) expect(r).toMatchObject({ kind: 'error', error: { code: 'upstream_reset' } });
    expect(c.stats().leader_errors_shared).toBe(1);
  });

  it('hands a failed flight to exactly one live follower under `retry_one`, once', async () => {
    const c = new Coalescer<string>();
    const lead = c.join('k', member(), 'retry_one');
    if (lead.role !== 'leader') throw new Error('unreachable');
    const gone = member();
    const goneWait = c.join('k', gone, 'retry_one');
    const results: Array<Promise<FollowResult<string>>> = [];
    for (let i = 0; i < 10; i++) {
      const joined = c.join('k', member(), 'retry_one');
      if (joined.role === 'follower') results.push(joined.result);
    }
    gone.leave();
    if (goneWait.role === 'follower') await expect(goneWait.result).rejects.toBeInstanceOf(SluiceError);
    lead.leadership.finish({ answer: '500 body', failed: true, vary: [] });
    const first = await results[0]!;
    expect(first.kind).toBe('lead');
    if (first.kind !== 'lead') throw new Error('unreachable');
    expect(c.stats()).toMatchObject({ flights: 1, followers_waiting: 9, retries: 1 });
    // The retry fails too: no third call, the failure goes to everyone left.
    expect(first.leadership.finish({ answer: '500 again', failed: true, vary: [] })).toBe(9);
    for (const r of await Promise.all(results.slice(1))) expect(r).toEqual({ kind: 'answer', answer: '500 again' });
    expect(c.stats().retries).toBe(1);
  });

  it('sends followers whose varied headers differ from the leader\'s away instead of answering them', async () => {
    const c = new Coalescer<string>();
    const lead = c.join('k', member({ 'accept-language': 'en' }), 'share');
    if (lead.role !== 'leader') throw new Error('unreachable');
    const same = follower(c, 'k', member({ 'accept-language': 'en' }));
    const other = follower(c, 'k', member({ 'accept-language': 'fr' }));
    expect(lead.leadership.finish({ answer: 'english', failed: false, vary: ['accept-language'] })).toBe(1);
    expect(await same).toEqual({ kind: 'answer', answer: 'english' });
    expect(await other).toEqual({ kind: 'vary', fields: ['accept-language'] });
  });
});
