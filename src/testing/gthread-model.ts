// A model of Gunicorn's gthread worker (20.1, as Debian ships it), for the test backend.
// What it reproduces, because these are what decide how many slots a proxy really gets:
// - a connection is bound to one worker when it is accepted and stays there for its life;
// - a worker runs at most `threads` requests; the rest wait FIFO inside that worker (and
//   still run after their client has gone), even while other workers sit idle;
// - a worker accepts whether or not its threads are free, up to `workerConnections`;
//   beyond that a connection waits unaccepted until some worker drops below its limit;
// - accepts are uneven: a few workers take most new connections (a fixed wake order),
//   except that a worker busy serving many requests is slow to accept (see ACCEPT_* below);
// - after a response, a connection is kept alive only while the worker has fewer than
//   `workerConnections - threads` idle kept-alive connections (Gunicorn's max_keepalived),
//   and idle ones are closed after the keep-alive timeout (set on the HTTP server).
// Not modelled: a worker at its connection limit that stops polling its kept-alive sockets.
import type { Socket } from 'node:net';

export interface GthreadOptions {
  workers: number;
  threads: number;
  workerConnections: number;
  random: () => number;
}

/**
 * Share of new connections per worker: worker i (in a random order fixed at start) gets a
 * share proportional to ACCEPT_DECAY^i. Measured with `ss -tnp` on Gunicorn 20.1, 10 x 5
 * gthread, idle, bursts of 50 connections: 15/8/7/6/5/4/4/1, 22/11/9/6/1/1,
 * 18/16/7/6/2/1, 20/17/6/4/2/1 (4 to 8 of the 10 workers get any).
 */
const ACCEPT_DECAY = 0.6;
/**
 * A worker's share is divided by 1 + (its requests per second / ACCEPT_BUSY_RATE): its
 * main thread is busy with them and loses the race for new accepts. Measured the same
 * way: 60 connections opened while 50 busy ones sat 33/16/1 on three workers went
 * 12/11/10/5/4/3/1 to the seven idle workers and 11/3/0 to the three busy ones.
 */
const ACCEPT_BUSY_RATE = 15;
/**
 * The wake order matters only while CPUs are free: under load the scheduler runs the
 * least busy woken worker first. So the popularity exponent is 1 / (1 + backend requests
 * per second / ACCEPT_ORDER_RATE): the fixed order at idle, nearly flat under load (with
 * Sluice in front, real Gunicorn's connections spread to 7/7/6/6/5/5/5/5/4/1 within a
 * second of 200 req/s once crowded ones were recycled).
 */
const ACCEPT_ORDER_RATE = 50;
/** Time constant of a worker's request rate (ms). */
const RATE_TAU_MS = 1_000;

export interface WorkerStats {
  connections: number;
  running: number;
  queued: number;
}

/** Which worker runs a request; opaque to callers. */
export type WorkerTicket = object | undefined;

class Worker {
  connections = 0;
  /** Connections with a request waiting or running. */
  active = 0;
  running = 0;
  queuedMax = 0;
  /** Requests started, decayed with RATE_TAU_MS: about the request rate per second. */
  private recent = 0;
  private recentAt = 0;
  readonly queue: Array<() => void> = [];

  constructor(readonly popularity: number) {}

  started(now: number): void {
    this.recent = this.ratePerSecond(now) + 1;
    this.recentAt = now;
  }

  ratePerSecond(now: number): number {
    return this.recent * Math.exp(-(now - this.recentAt) / RATE_TAU_MS);
  }
}

export class GthreadModel {
  private readonly workers: Worker[];
  private readonly bound = new WeakMap<Socket, Worker>();
  private readonly unaccepted: Socket[] = [];
  /** Requests that arrived on a connection no worker has accepted yet. */
  private readonly waitingForAccept = new Map<Socket, Array<() => void>>();

  constructor(private readonly opts: GthreadOptions) {
    const ranks = Array.from({ length: opts.workers }, (_, i) => i);
    for (let i = ranks.length - 1; i > 0; i--) {
      const j = Math.floor(opts.random() * (i + 1));
      [ranks[i], ranks[j]] = [ranks[j]!, ranks[i]!];
    }
    this.workers = ranks.map((rank) => new Worker(ACCEPT_DECAY ** rank));
  }

  /** A new TCP connection: bound to a worker now, or left unaccepted until one has room. */
  accept(socket: Socket): void {
    socket.once('close', () => this.disconnect(socket));
    if (!this.bind(socket)) this.unaccepted.push(socket);
  }

  /**
   * Waits for a thread of the connection's worker (FIFO within that worker). The ticket
   * goes back to release(), even if the connection has closed in the meantime. Null: the
   * connection closed before any worker accepted it, so its request never runs.
   */
  async acquire(socket: Socket): Promise<WorkerTicket | null> {
    if (this.unaccepted.includes(socket)) {
      // Like a connection in the listen backlog: its request is not read until accepted.
      await new Promise<void>((resolve) => {
        const waiters = this.waitingForAccept.get(socket) ?? [];
        waiters.push(resolve);
        this.waitingForAccept.set(socket, waiters);
      });
    }
    const worker = this.bound.get(socket);
    if (!worker) return socket.destroyed ? null : undefined;
    worker.active += 1;
    worker.started(performance.now());
    if (worker.running < this.opts.threads) {
      worker.running += 1;
      return worker;
    }
    await new Promise<void>((resolve) => {
      worker.queue.push(resolve);
      worker.queuedMax = Math.max(worker.queuedMax, worker.queue.length);
    });
    return worker;
  }

  /**
   * Decided when a thread takes the request, as gthread does: false once the worker holds
   * `workerConnections - threads` idle kept-alive connections (the answer then closes).
   */
  keepsAlive(ticket: WorkerTicket): boolean {
    const worker = ticket as Worker | undefined;
    if (!worker) return true;
    return worker.connections - worker.active < this.opts.workerConnections - this.opts.threads;
  }

  /** The request's response is written: the thread takes the worker's next queued request. */
  release(ticket: WorkerTicket): void {
    const worker = ticket as Worker | undefined;
    if (!worker) return;
    worker.active -= 1;
    const next = worker.queue.shift();
    if (next) next();
    else worker.running -= 1;
  }

  stats(): { workers: WorkerStats[]; worker_queue_max: number; unaccepted: number } {
    return {
      workers: this.workers.map((w) => ({ connections: w.connections, running: w.running, queued: w.queue.length })),
      worker_queue_max: Math.max(0, ...this.workers.map((w) => w.queuedMax)),
      unaccepted: this.unaccepted.length,
    };
  }

  resetMaxima(): void {
    for (const w of this.workers) w.queuedMax = w.queue.length;
  }

  /** On close: queued requests are dropped (their connections are destroyed anyway). */
  dropWaiters(): void {
    for (const w of this.workers) w.queue.length = 0;
    this.waitingForAccept.clear();
  }

  private bind(socket: Socket): boolean {
    const worker = this.chooseWorker();
    if (!worker) return false;
    worker.connections += 1;
    this.bound.set(socket, worker);
    return true;
  }

  private chooseWorker(): Worker | undefined {
    const open = this.workers.filter((w) => w.connections < this.opts.workerConnections);
    if (open.length === 0) return undefined;
    const now = performance.now();
    const total = this.workers.reduce((sum, w) => sum + w.ratePerSecond(now), 0);
    const order = 1 / (1 + total / ACCEPT_ORDER_RATE);
    const weights = open.map((w) => w.popularity ** order / (1 + w.ratePerSecond(now) / ACCEPT_BUSY_RATE));
    let pick = this.opts.random() * weights.reduce((a, b) => a + b, 0);
    for (let i = 0; i < open.length; i++) {
      pick -= weights[i]!;
      if (pick <= 0) return open[i];
    }
    return open[open.length - 1];
  }

  private disconnect(socket: Socket): void {
    const waiting = this.unaccepted.indexOf(socket);
    if (waiting >= 0) {
      // Gone before it was accepted: its request never reaches a worker.
      this.unaccepted.splice(waiting, 1);
      for (const wake of this.waitingForAccept.get(socket) ?? []) wake();
      this.waitingForAccept.delete(socket);
      return;
    }
    const worker = this.bound.get(socket);
    if (!worker) return;
    worker.connections -= 1;
    this.bound.delete(socket);
    const next = this.unaccepted[0];
    if (next && this.bind(next)) {
      this.unaccepted.shift();
      for (const wake of this.waitingForAccept.get(next) ?? []) wake();
      this.waitingForAccept.delete(next);
    }
  }
}
