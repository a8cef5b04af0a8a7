// The connections to one backend server, owned one by one (an undici Client each).
//
// Why not a plain pool of `slots` connections: a Gunicorn gthread worker keeps every
// connection it accepted for the connection's life and runs at most `threads` requests at
// once, and its accepts are skewed (at idle a few workers take most new connections). So
// 50 connections may sit 15/8/7/6/5/4/4/1 on 8 of 10 workers: Sluice sees 50 slots busy
// while ~30 threads work and the rest of its requests queue inside Gunicorn, invisible and
// uncancellable.
//
// What this does instead, measured against real Gunicorn and the gthread test model:
// - a request that waited inside the backend is recognised by its service time (well
//   above the route's recent low percentile); its connection is closed once the answer is
//   in, and a new one is opened when next needed. Under load, Gunicorn's idle workers win
//   those new accepts, so the connections drift off the crowded workers until every
//   worker holds about as many as it has threads;
// - idle connections are reused least recently used first, so every connection stays warm
//   (its place on a worker is kept), and a connection is closed before the backend's own
//   keep-alive timeout would (never reused while the backend closes it).
// Invariant kept by the caller (the slot queue): at most `slots` requests in flight here,
// so there are never more than `slots` connections busy. Nothing is ever retried.
import { Client, type Dispatcher } from 'undici';
import { ServiceBaseline } from './service-baseline.js';

export interface BalancerOptions {
  readonly url: string;
  readonly slots: number;
  readonly connectTimeoutMs: number;
  /** Close a connection idle this long (below the backend's keep-alive timeout). */
  readonly idleTimeoutMs: number;
  /** Recycle connections whose requests waited inside the backend. */
  readonly recycleQueued: boolean;
  /** Called (rate-limited) when the backend keeps queueing while Sluice's slots are full. */
  readonly warn?: (message: string, details: Record<string, unknown>) => void;
  /** The window the warning judges (default 10 s), and the least time between warnings (60 s). */
  readonly warnWindowMs?: number;
  readonly warnEveryMs?: number;
  /** True while Sluice's own event loop is saturated (loop-saturation.ts): answers are not judged then. */
  readonly loopSaturated?: () => boolean;
}

/** A request counts as having waited inside the backend past this multiple of the baseline... */
const QUEUED_FACTOR = 1.6;
/** ...plus this margin, so fast routes are not judged on scheduler noise. */
const QUEUED_MARGIN_MS = 10;
const DEFAULT_WARN_WINDOW_MS = 10_000;
const DEFAULT_WARN_EVERY_MS = 60_000;
const EWMA_ALPHA = 0.05;

interface Lane {
  readonly client: Client;
  /** Set when the answer showed queueing: closed instead of reused. */
  retire: boolean;
}

export interface BalancerStats {
  readonly connections: number;
  readonly busy: number;
  /** TCP connections opened (a connection closed by the backend reconnects on next use). */
  readonly opened_total: number;
  readonly recycled_total: number;
  readonly queued_detected_total: number;
  /** Requests that reached the backend's threads at once, estimated from service times. */
  readonly effective_concurrency: number | null;
  readonly recycle_queued: boolean;
}

export class ConnectionBalancer {
  private readonly origin: string;
  /** Idle connections, least recently used first (from `idleHead` on). */
  private idle: Lane[] = [];
  private idleHead = 0;
  private readonly baseline = new ServiceBaseline();
  private readonly all = new Set<Lane>();
  private closing = false;
  private busy = 0;
  private opened = 0;
  private queuedDetected = 0;
  private effective: number | undefined;
  private window = { startedAt: 0, responses: 0, queued: 0 };
  private lastWarnAt = -Infinity;

  constructor(private readonly opts: BalancerOptions) {
    this.origin = new URL(opts.url).origin;
  }

  /**
   * One request on a connection of its own. `serviceKey` groups requests that should take
   * about as long as each other (the route); the connection is returned when the body ends.
   */
  async request(options: Dispatcher.RequestOptions, serviceKey: string): Promise<Dispatcher.ResponseData> {
    const lane = this.take();
    /** Requests in flight on this server, this one included. */
    const busyAtDispatch = this.busy;
    const started = performance.now();
    let response: Dispatcher.ResponseData;
    try {
      response = await lane.client.request(options);
    } catch (err) {
      this.giveBack(lane);
      throw err;
    }
    this.judge(lane, serviceKey, performance.now() - started, busyAtDispatch);
    let returned = false;
    const giveBack = (): void => {
      if (returned) return;
      returned = true;
      this.giveBack(lane);
    };
    response.body.once('end', giveBack);
    response.body.once('close', giveBack);
    response.body.once('error', giveBack);
    return response;
  }

  stats(): BalancerStats {
    return {
      connections: this.connectedCount(),
      busy: this.busy,
      opened_total: this.opened,
      // Every detected wait retires its connection when recycling is on.
      recycled_total: this.opts.recycleQueued ? this.queuedDetected : 0,
      queued_detected_total: this.queuedDetected,
      effective_concurrency: this.effective === undefined ? null : Math.round(this.effective * 10) / 10,
      recycle_queued: this.opts.recycleQueued,
    };
  }

  /** Open TCP connections (an idle one the backend or the idle timeout closed is not counted). */
  private connectedCount(): number {
    let connected = 0;
    for (const lane of this.all) if (lane.client.stats.connected) connected += 1;
    return connected;
  }

  /** Lets requests in progress finish; nothing new is accepted afterwards. */
  async close(): Promise<void> {
    this.closing = true;
    this.idle = [];
    this.idleHead = 0;
    const lanes = [...this.all];
    this.all.clear();
    await Promise.all(lanes.map((lane) => lane.client.close().catch(() => lane.client.destroy())));
  }

  private take(): Lane {
    this.busy += 1;
    const reused = this.takeIdle();
    if (reused) return reused;
    const lane: Lane = {
      client: new Client(this.origin, {
        pipelining: 1,
        connect: { timeout: this.opts.connectTimeoutMs },
        keepAliveTimeout: this.opts.idleTimeoutMs,
        keepAliveMaxTimeout: this.opts.idleTimeoutMs,
        // Timeouts are set per request from the route; these are only ceilings.
        headersTimeout: 0,
        bodyTimeout: 0,
      }),
      retire: false,
    };
    lane.client.on('connect', () => { this.opened += 1; });
    if (!this.closing) this.all.add(lane);
    return lane;
  }

  private takeIdle(): Lane | undefined {
    if (this.idleHead >= this.idle.length) return undefined;
    const lane = this.idle[this.idleHead++];
    // Compact now and then rather than shifting the array on every request.
    if (this.idleHead >= 64 && this.idleHead * 2 >= this.idle.length) {
      this.idle = this.idle.slice(this.idleHead);
      this.idleHead = 0;
    }
    return lane;
  }

  private giveBack(lane: Lane): void {
    this.busy -= 1;
    if (this.closing) return;
    if (lane.retire || lane.client.destroyed || lane.client.closed) {
      this.all.delete(lane);
      if (!lane.client.destroyed && !lane.client.closed) void lane.client.close().catch(() => lane.client.destroy());
      return;
    }
    this.idle.push(lane);
  }

  /** Time to response headers is the backend's service time plus any wait inside it. */
  private judge(lane: Lane, key: string, ms: number, busyAtDispatch: number): void {
    if (this.opts.loopSaturated?.()) return;
    const baseline = this.baseline.observe(key, ms);
    if (baseline === undefined) return;
    const sample = Math.min(this.opts.slots, busyAtDispatch) * Math.min(1, baseline / Math.max(ms, 0.001));
    this.effective = this.effective === undefined ? sample : this.effective + EWMA_ALPHA * (sample - this.effective);
    const queued = ms > baseline * QUEUED_FACTOR + QUEUED_MARGIN_MS;
    this.countForWarning(queued, busyAtDispatch);
    if (!queued) return;
    this.queuedDetected += 1;
    if (this.opts.recycleQueued) lane.retire = true;
  }

  private countForWarning(queued: boolean, busyAtDispatch: number): void {
    const now = performance.now();
    const w = this.window;
    if (now - w.startedAt > (this.opts.warnWindowMs ?? DEFAULT_WARN_WINDOW_MS)) {
      const share = w.responses > 0 ? w.queued / w.responses : 0;
      if (w.queued >= 10 && share >= 0.1 && now - this.lastWarnAt > (this.opts.warnEveryMs ?? DEFAULT_WARN_EVERY_MS) && this.opts.warn) {
        this.lastWarnAt = now;
        this.opts.warn('the backend is queueing requests internally while Sluice\'s slots are full', {
          server: this.opts.url,
          waited_inside_backend: w.queued,
          responses: w.responses,
          effective_concurrency: this.stats().effective_concurrency,
          slots: this.opts.slots,
          recycle_queued: this.opts.recycleQueued,
        });
      }
      this.window = { startedAt: now, responses: 0, queued: 0 };
    }
    // Only a full (or nearly full) set of slots says the backend, not the load, is the limit.
    if (busyAtDispatch < Math.floor(this.opts.slots * 0.9)) return;
    this.window.responses += 1;
    if (queued) this.window.queued += 1;
  }
}
