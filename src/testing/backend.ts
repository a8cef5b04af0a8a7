// The test backend: a node:http server that behaves like a Flask app under Gunicorn
// sync/gthread workers, so Sluice can be tested and benchmarked against the thing it
// protects. Two models of where requests wait: `semaphore` (one global FIFO of `slots`)
// and `gthread` (workers x threads, connections bound to a worker at accept time: see
// gthread-model.ts). The properties that matter, and that this file guarantees:
// - at most `slots` requests run at once; a slot is taken when the request headers
//   arrive and held until the response is fully written, so slow uploaders (the body is
//   read inside the slot) and slow downloaders occupy it exactly as they would a thread;
// - requests beyond that wait FIFO and still run after their client has gone, and each
//   such request is counted in `abandoned` (Sluice's job is to keep that at zero);
// - /stats, /health and /stats/reset bypass the slots so they answer while saturated.
import { setMaxListeners } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type RouteEnv, handleApi } from './backend-routes.js';
import { headerValue, responseDone, send, sendJson } from './backend-http.js';
import { GthreadModel, type WorkerStats } from './gthread-model.js';

export interface TestBackendOptions {
  host?: string;
  /** Defaults to 0 (any free port); the CLI defaults to 8000. */
  port?: number;
  /** Requests running at once in the semaphore model; workers x threads in gthread. */
  slots: number;
  /** `semaphore` (default): one global FIFO. `gthread`: Gunicorn's worker/connection binding. */
  model?: 'semaphore' | 'gthread';
  /** gthread only: worker processes, threads per worker, connections a worker accepts. */
  workers?: number;
  threads?: number;
  workerConnections?: number;
  /** Idle keep-alive connections are closed after this long (Gunicorn's default: 2 s). */
  keepaliveMs?: number;
  latencyMs: number;
  reportLatencyMs: number;
  errorRate?: number;
  stallRate?: number;
  stallMs?: number;
  /** In-process use: sees every request as it arrives (e.g. a test reading what a gateway sent). */
  onRequest?: (req: http.IncomingMessage) => void;
}

export interface TestBackendStats {
  inflight_now: number;
  inflight_max: number;
  total: number;
  abandoned: number;
  by_path: Record<string, number>;
  last_traceparent: string | null;
  idempotency_keys: string[];
  /** Requests whose headers arrived and that wait for a slot (Gunicorn's backlog). */
  backlog_now: number;
  backlog_max: number;
  /** gthread only: per worker connections, running and queued requests. */
  workers?: WorkerStats[];
  /** gthread only: the longest queue seen inside one worker. */
  worker_queue_max?: number;
  /** gthread only: connections no worker has accepted (all at worker_connections). */
  unaccepted?: number;
}

export interface TestBackend {
  url: string;
  port: number;
  stats(): TestBackendStats;
  resetStats(): void;
  close(): Promise<void>;
}

const IDEMPOTENCY_KEYS_KEPT = 1000;
const DEFAULT_STALL_MS = 5000;
const CONTROL_PATHS = new Set(['/stats', '/health', '/stats/reset']);

function checkOptions(o: TestBackendOptions): void {
  if (!Number.isInteger(o.slots) || o.slots < 1) throw new RangeError('slots must be an integer >= 1');
  for (const [name, v] of [['workers', o.workers ?? 1], ['threads', o.threads ?? 1], ['workerConnections', o.workerConnections ?? 1]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be an integer >= 1`);
  }
  for (const [name, v] of [['latencyMs', o.latencyMs], ['reportLatencyMs', o.reportLatencyMs], ['stallMs', o.stallMs ?? 0]] as const) {
    if (!Number.isFinite(v) || v < 0) throw new RangeError(`${name} must be a number >= 0`);
  }
  for (const [name, v] of [['errorRate', o.errorRate ?? 0], ['stallRate', o.stallRate ?? 0]] as const) {
    if (!(v >= 0 && v <= 1)) throw new RangeError(`${name} must be within 0..1`);
  }
}

/** Counters owned by one backend instance; gauges (inflight, backlog) survive resets. */
class StatsBook {
  inflightNow = 0;
  backlogNow = 0;
  private inflightMax = 0;
  private backlogMax = 0;
  private total = 0;
  private abandoned = 0;
  private byPath: Record<string, number> = {};
  private lastTraceparent: string | null = null;
  private keys: string[] = [];
  liveCounter = 0;

  enterBacklog(): void {
    this.backlogNow += 1;
    this.backlogMax = Math.max(this.backlogMax, this.backlogNow);
  }

  /** A request whose connection closed before it was ever accepted: it never runs. */
  leaveBacklog(): void {
    this.backlogNow -= 1;
  }

  /** A request got a slot: it is now counted. */
  start(req: http.IncomingMessage, pathname: string): void {
    this.backlogNow -= 1;
    this.inflightNow += 1;
    this.inflightMax = Math.max(this.inflightMax, this.inflightNow);
    this.total += 1;
    this.byPath[pathname] = (this.byPath[pathname] ?? 0) + 1;
    this.lastTraceparent = headerValue(req, 'traceparent');
    const key = headerValue(req, 'idempotency-key');
    if (key !== null) {
      this.keys.push(key);
      if (this.keys.length > IDEMPOTENCY_KEYS_KEPT) this.keys.splice(0, this.keys.length - IDEMPOTENCY_KEYS_KEPT);
    }
  }

  finish(): void {
    this.inflightNow -= 1;
  }

  countAbandoned(): void {
    this.abandoned += 1;
  }

  snapshot(): TestBackendStats {
    return {
      inflight_now: this.inflightNow,
      inflight_max: this.inflightMax,
      total: this.total,
      abandoned: this.abandoned,
      by_path: { ...this.byPath },
      last_traceparent: this.lastTraceparent,
      idempotency_keys: [...this.keys],
      backlog_now: this.backlogNow,
      backlog_max: this.backlogMax,
    };
  }

  /** Zeroes the counters; the maxima restart from what is running/waiting right now. */
  reset(): void {
    this.inflightMax = this.inflightNow;
    this.backlogMax = this.backlogNow;
    this.total = 0;
    this.abandoned = 0;
    this.byPath = {};
    this.lastTraceparent = null;
    this.keys = [];
    this.liveCounter = 0;
  }
}

/** A counting semaphore with a FIFO wait list; waiters are never removed early. */
class SlotGate {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly slots: number) {}

  acquire(): Promise<void> {
    if (this.running < this.slots) {
      this.running += 1;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Hands the slot straight to the oldest waiter, so nobody can overtake it. */
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.running -= 1;
  }

  /** On close: waiters are dropped (their connections are destroyed anyway). */
  dropWaiters(): void {
    this.waiting.length = 0;
  }
}

/** Tracks whether the client left before its response was completely written. */
function watchClient(req: http.IncomingMessage, res: http.ServerResponse): () => boolean {
  let gone = false;
  res.once('close', () => {
    if (!res.writableFinished) gone = true;
  });
  // A pipelined request queued behind another on the same socket gets no 'close' of its
  // own response, so the socket state is checked too.
  return () => gone || (req.socket.destroyed && !res.writableFinished);
}

export async function startTestBackend(opts: TestBackendOptions): Promise<TestBackend> {
  checkOptions(opts);
  const book = new StatsBook();
  const gthread = opts.model === 'gthread'
    ? new GthreadModel({ workers: opts.workers ?? 10, threads: opts.threads ?? 5, workerConnections: opts.workerConnections ?? 1000, random: Math.random })
    : undefined;
  // The semaphore model's one FIFO; in gthread requests wait for their worker instead.
  const gate = gthread ? undefined : new SlotGate(opts.slots);
  const closing = new AbortController();
  // Every sleeping request listens for shutdown on this one signal; thousands may at once.
  setMaxListeners(0, closing.signal);
  const env: RouteEnv = {
    latencyMs: opts.latencyMs,
    reportLatencyMs: opts.reportLatencyMs,
    errorRate: opts.errorRate ?? 0,
    stallRate: opts.stallRate ?? 0,
    stallMs: opts.stallMs ?? DEFAULT_STALL_MS,
    signal: closing.signal,
    random: Math.random,
    nextLiveCounter: () => ++book.liveCounter,
  };

  function control(req: http.IncomingMessage, res: http.ServerResponse, pathname: string): void {
    const m = req.method ?? '';
    if (pathname === '/health' && (m === 'GET' || m === 'HEAD')) {
      send(res, 200, { 'content-type': 'text/plain; charset=utf-8' }, 'ok');
    } else if (pathname === '/stats' && (m === 'GET' || m === 'HEAD')) {
      sendJson(res, 200, { ...book.snapshot(), ...gthread?.stats() }, { 'cache-control': 'no-store' });
    } else if (pathname === '/stats/reset' && m === 'POST') {
      book.reset();
      gthread?.resetMaxima();
      send(res, 204, {});
    } else {
      sendJson(res, 405, { error: 'method_not_allowed', path: pathname });
    }
    req.resume(); // discard any body so keep-alive connections stay usable
  }

  async function runInSlot(req: http.IncomingMessage, res: http.ServerResponse, url: URL, clientGone: () => boolean, release: () => void): Promise<void> {
    book.start(req, url.pathname);
    const goneBeforeStart = clientGone();
    if (goneBeforeStart) book.countAbandoned();
    try {
      await handleApi(req, res, url, env);
    } catch (err) {
      if (!closing.signal.aborted) sendJson(res, 500, { error: 'internal', detail: String(err) });
    } finally {
      // The slot is held until the last byte reached the socket, like a blocked send().
      await responseDone(res);
      if (!goneBeforeStart && !res.writableFinished) book.countAbandoned();
      book.finish();
      release();
    }
  }

  /** The gthread path: wait for a thread of the worker that owns this connection. */
  async function runOnWorker(model: GthreadModel, req: http.IncomingMessage, res: http.ServerResponse, url: URL, clientGone: () => boolean): Promise<void> {
    const ticket = await model.acquire(req.socket);
    if (ticket === null) {
      book.leaveBacklog();
      return;
    }
    // Gunicorn closes rather than keeps alive once its worker holds enough idle connections.
    if (!model.keepsAlive(ticket)) res.shouldKeepAlive = false;
    await runInSlot(req, res, url, clientGone, () => model.release(ticket));
  }

  function onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    // Writes to a destroyed socket must not crash the backend; the client is simply gone.
    res.on('error', () => {});
    req.on('error', () => {});
    opts.onRequest?.(req);
    const traceparent = headerValue(req, 'traceparent');
    if (traceparent !== null) res.setHeader('x-backend-traceparent', traceparent);
    const url = new URL(req.url ?? '/', 'http://backend.invalid');
    if (CONTROL_PATHS.has(url.pathname)) return control(req, res, url.pathname);

    const clientGone = watchClient(req, res);
    book.enterBacklog();
    if (gthread) void runOnWorker(gthread, req, res, url, clientGone);
    else if (gate) void gate.acquire().then(() => runInSlot(req, res, url, clientGone, () => gate.release()));
  }

  const server = http.createServer({ requestTimeout: 0 }, onRequest);
  // Requests may legitimately wait minutes in the backlog; Node must not 408 them.
  server.headersTimeout = 60_000;
  if (opts.keepaliveMs !== undefined) server.keepAliveTimeout = opts.keepaliveMs;
  else if (gthread) server.keepAliveTimeout = 2_000;
  if (gthread) server.on('connection', (socket) => gthread.accept(socket));

  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;

  let closed: Promise<void> | null = null;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    stats: () => ({ ...book.snapshot(), ...gthread?.stats() }),
    resetStats: () => { book.reset(); gthread?.resetMaxima(); },
    close(): Promise<void> {
      closed ??= new Promise<void>((resolve) => {
        closing.abort();
        gate?.dropWaiters();
        gthread?.dropWaiters();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
