// GET /queue on the admin server: every request waiting for a slot (in the order they
// will be served) and every request holding one, as the slot queue sees them right now.
import { PRIORITY_CLASSES } from '../config/schema.js';
import type { SlotQueue, SlotTicketInfo } from '../slots/slot-queue.js';
import { sendJson, type AdminServer } from './admin-server.js';

export interface QueueView {
  readonly slots: { busy: number; total: number };
  readonly waiting: ReadonlyArray<{
    request_id: string; method: string; path: string; route: string; priority: string;
    /** 1-based place in line now; `position_at_enqueue` is where it started. */
    position: number; position_at_enqueue: number;
    age_ms: number; deadline_in_ms: number; followers: number;
  }>;
  readonly inflight: ReadonlyArray<{
    request_id: string; method: string; path: string; route: string; priority: string;
    server: string; age_ms: number; followers: number;
  }>;
}

export function queueView(queue: SlotQueue, now = performance.now()): QueueView {
  // waitingEntries() lists classes most urgent first and FIFO within a class: serving order.
  const waiting = queue.waitingEntries().map((w, index) => ({
    ...identity(w.info, w.group, w.priorityRank),
    position: index + 1,
    position_at_enqueue: w.position,
    age_ms: Math.round(now - w.enqueuedAt),
    deadline_in_ms: Math.max(0, Math.round(w.deadlineAt - now)),
    followers: followersOf(w.info),
  }));
  const inflight = queue.inflightEntries()
    .sort((a, b) => a.startedAt - b.startedAt)
    .map((e) => ({
      ...identity(e.info, e.group, e.priorityRank),
      server: e.server,
      age_ms: Math.round(now - e.startedAt),
      followers: followersOf(e.info),
    }));
  return { slots: { busy: queue.busySlots, total: queue.totalSlots }, waiting, inflight };
}

export function registerQueueView(admin: AdminServer, queue: SlotQueue): void {
  admin.route('GET', '/queue', (_req, res) => sendJson(res, 200, queueView(queue)));
}

function identity(info: SlotTicketInfo, group: string, rank: number) {
  return { request_id: info.requestId, method: info.method, path: info.path, route: group, priority: PRIORITY_CLASSES[rank] ?? String(rank) };
}

function followersOf(info: SlotTicketInfo): number {
  return info.followers?.() ?? 0;
}
