// Whether each backend server can be reached, learnt from the calls Sluice makes anyway.
// It only reports (/status, the sluice_backend_failing gauge); it never changes routing or
// readiness: a gateway in front of a down backend is still ready to answer (502, or stale
// from the cache), and taking it out of a load balancer would not bring the backend back.
// While a server is failing it is probed with a bare TCP connect, so recovery shows even
// when no traffic arrives; a reachable server is never probed.
import { connect } from 'node:net';
import type { RequestContext } from '../pipeline/context.js';
import type { RequestObserver } from '../pipeline/deps.js';

export type BackendState = 'unknown' | 'up' | 'failing';

/** Error codes that say the server could not be reached (not that it was slow or answered badly). */
const UNREACHABLE = new Set(['upstream_connect_failed', 'connect_timeout', 'upstream_reset']);

interface ServerHealth {
  state: BackendState;
  since: number | undefined;
  consecutiveFailures: number;
  lastError: string | undefined;
  lastErrorAt: number | undefined;
  lastSuccessAt: number | undefined;
}

export interface BackendHealthOptions {
  readonly connectTimeoutMs: number;
  readonly probeIntervalMs?: number;
  readonly now?: () => number;
}

export class BackendHealth implements RequestObserver {
  private readonly servers = new Map<string, ServerHealth>();
  private readonly now: () => number;
  private readonly probeIntervalMs: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(urls: readonly string[], private readonly options: BackendHealthOptions) {
    this.now = options.now ?? Date.now;
    this.probeIntervalMs = options.probeIntervalMs ?? 5_000;
    for (const url of urls) {
      this.servers.set(url, { state: 'unknown', since: undefined, consecutiveFailures: 0, lastError: undefined, lastErrorAt: undefined, lastSuccessAt: undefined });
    }
  }

  start(): void {
    this.timer ??= setInterval(() => this.probeFailing(), this.probeIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  afterUpstream(ctx: RequestContext, outcome: { status?: number; errorCode?: string }): void {
    if (ctx.backendServer) this.record(ctx.backendServer, outcome);
  }

  /** One backend call's outcome (proxied requests and job attempts alike). */
  record(url: string, outcome: { status?: number; errorCode?: string }): void {
    if (outcome.status !== undefined) this.reached(url);
    else if (outcome.errorCode && UNREACHABLE.has(outcome.errorCode)) this.unreachable(url, outcome.errorCode);
  }

  reached(url: string): void {
    const server = this.servers.get(url);
    if (!server) return;
    const now = this.now();
    if (server.state !== 'up') {
      server.state = 'up';
      server.since = now;
    }
    server.consecutiveFailures = 0;
    server.lastSuccessAt = now;
  }

  unreachable(url: string, reason: string): void {
    const server = this.servers.get(url);
    if (!server) return;
    const now = this.now();
    if (server.state !== 'failing') {
      server.state = 'failing';
      server.since = now;
    }
    server.consecutiveFailures++;
    server.lastError = reason;
    server.lastErrorAt = now;
  }

  isFailing(url: string): boolean {
    return this.servers.get(url)?.state === 'failing';
  }

  /** The /status view; times are ISO strings, so it reads the same as the job documents. */
  snapshot(): Array<Record<string, unknown>> {
    return [...this.servers].map(([url, s]) => ({
      url,
      state: s.state,
      since: iso(s.since),
      consecutive_failures: s.consecutiveFailures,
      last_error: s.lastError ?? null,
      last_error_at: iso(s.lastErrorAt),
      last_success_at: iso(s.lastSuccessAt),
    }));
  }

  /** Probes every failing server once; resolves when all probes have settled. */
  async probeFailing(): Promise<void> {
    const failing = [...this.servers].filter(([, s]) => s.state === 'failing').map(([url]) => url);
    await Promise.all(failing.map(async (url) => {
      const error = await tcpProbe(url, this.options.connectTimeoutMs);
      if (error === undefined) this.reached(url);
      else this.unreachable(url, error);
    }));
  }
}

/** Opens and closes a TCP connection; resolves with undefined, or the reason it failed. */
function tcpProbe(url: string, timeoutMs: number): Promise<string | undefined> {
  const target = new URL(url);
  const port = Number(target.port || (target.protocol === 'https:' ? 443 : 80));
  const host = target.hostname.replace(/^\[|\]$/g, '');
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: timeoutMs });
    const done = (error: string | undefined) => {
      socket.destroy();
      resolve(error);
    };
    socket.once('connect', () => done(undefined));
    socket.once('timeout', () => done('connect_timeout'));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ETIMEDOUT' ? 'connect_timeout' : 'upstream_connect_failed'));
  });
}

function iso(epochMs: number | undefined): string | null {
  return epochMs === undefined ? null : new Date(epochMs).toISOString();
}
