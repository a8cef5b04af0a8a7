// One health record per backend server, fed by every backend call (proxied requests and
// job attempts alike) and read by the slot queue (ejection), /status, /readyz and the
// sluice_backend_failing gauge. Nothing here reads a request context: the callers say
// what happened, so the proxy phase, not an observer, is what changes ejection.
//
// Reachability: a call that got an answer makes a server `up`; a connect error or connect
// timeout makes it `failing`. A reset or a slow answer says nothing about reachability. While
// a server is failing it is probed (a bare TCP connect, injected), so recovery shows even
// when no traffic arrives; a reachable server is never probed. Reachability only reports: a
// gateway in front of a down backend stays ready (502s, or stale answers from the cache).
//
// Ejection (passive health): after `failures` consecutive connect failures a server is
// ejected for `cooldown`; then one request probes it (half open): success puts it back,
// failure ejects it again. Grants skip ejected servers, so with several servers traffic
// moves to the healthy ones. When every server is ejected none is skipped: a request then
// gets the backend's real error at once instead of waiting for a server that may never
// come back. Only real calls eject or readmit; a TCP probe only updates reachability.
export type BackendState = 'unknown' | 'up' | 'failing';
export type EjectionState = 'healthy' | 'ejected' | 'probing';

/** Error codes that say a server could not be connected to. */
const CONNECT_FAILURES: ReadonlySet<string> = new Set(['upstream_connect_failed', 'connect_timeout']);

interface Entry {
  state: BackendState;
  since: number | undefined;
  consecutiveFailures: number;
  lastError: string | undefined;
  lastErrorAt: number | undefined;
  lastSuccessAt: number | undefined;
  ejection: EjectionState;
  /** Ejected until (epoch ms); when probing, the probe's start. */
  ejectionAt: number;
}

export interface BackendHealthOptions {
  /** Consecutive connect failures that eject a server; 0 turns ejection off. */
  readonly failures: number;
  readonly cooldownMs: number;
  /** Resolves with undefined when the server accepts a connection, else the error code. */
  readonly probe?: (url: string) => Promise<string | undefined>;
  readonly probeIntervalMs?: number;
  /** Epoch ms; the default is monotonic (performance clock anchored at its time origin). */
  readonly now?: () => number;
}

export class BackendHealth {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;

  constructor(urls: readonly string[], private readonly options: BackendHealthOptions) {
    this.now = options.now ?? (() => performance.timeOrigin + performance.now());
    for (const url of urls) this.entry(url);
  }

  get enabled(): boolean {
    return this.options.failures > 0;
  }

  /** The outcome of one backend call: `connectFailed` for connect errors and connect timeouts only. */
  record(url: string, connectFailed: boolean, reason = 'upstream_connect_failed'): void {
    const entry = this.entry(url);
    if (!connectFailed) {
      this.reached(entry);
      entry.ejection = 'healthy';
      return;
    }
    this.unreachable(entry, reason);
    entry.consecutiveFailures++;
    if (this.enabled && (entry.ejection === 'probing' || entry.consecutiveFailures >= this.options.failures)) {
      entry.ejection = 'ejected';
      entry.ejectionAt = this.now() + this.options.cooldownMs;
    }
  }

  /** The same, from a call's status or error code (job attempts); other errors are not recorded. */
  recordOutcome(url: string, outcome: { status?: number; errorCode?: string }): void {
    if (outcome.status !== undefined) this.record(url, false);
    else if (outcome.errorCode !== undefined && CONNECT_FAILURES.has(outcome.errorCode)) this.record(url, true, outcome.errorCode);
  }

  /** Whether a new request may be sent to this server now. */
  available(url: string): boolean {
    const entry = this.entries.get(url);
    if (!entry || entry.ejection === 'healthy') return true;
    // A probe that never reported (its client left) does not block the next one for ever.
    return this.now() >= entry.ejectionAt + (entry.ejection === 'probing' ? this.options.cooldownMs : 0);
  }

  /** A request was granted on this server; a server past its cool-down is now being probed. */
  granted(url: string): void {
    const entry = this.entries.get(url);
    if (entry && entry.ejection !== 'healthy' && this.available(url)) {
      entry.ejection = 'probing';
      entry.ejectionAt = this.now();
    }
  }

  ejection(url: string): EjectionState {
    return this.entries.get(url)?.ejection ?? 'healthy';
  }

  isFailing(url: string): boolean {
    return this.entries.get(url)?.state === 'failing';
  }

  /** The /status view; times are ISO strings, so it reads the same as the job documents. */
  snapshot(): Array<Record<string, unknown>> {
    return [...this.entries].map(([url, s]) => ({
      url,
      state: s.state,
      since: iso(s.since),
      consecutive_failures: s.consecutiveFailures,
      last_error: s.lastError ?? null,
      last_error_at: iso(s.lastErrorAt),
      last_success_at: iso(s.lastSuccessAt),
    }));
  }

  start(): void {
    if (!this.options.probe) return;
    this.timer ??= setInterval(() => void this.probeFailing(), this.options.probeIntervalMs ?? 5_000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Probes every failing server once; resolves when all probes have settled. */
  async probeFailing(): Promise<void> {
    const probe = this.options.probe;
    if (!probe) return;
    const failing = [...this.entries].filter(([, s]) => s.state === 'failing');
    await Promise.all(failing.map(async ([url, entry]) => {
      const error = await probe(url);
      if (error === undefined) this.reached(entry);
      else this.unreachable(entry, error);
    }));
  }

  private entry(url: string): Entry {
    let entry = this.entries.get(url);
    if (!entry) {
      entry = { state: 'unknown', since: undefined, consecutiveFailures: 0, lastError: undefined, lastErrorAt: undefined, lastSuccessAt: undefined, ejection: 'healthy', ejectionAt: 0 };
      this.entries.set(url, entry);
    }
    return entry;
  }

  private reached(entry: Entry): void {
    const now = this.now();
    if (entry.state !== 'up') {
      entry.state = 'up';
      entry.since = now;
    }
    entry.consecutiveFailures = 0;
    entry.lastSuccessAt = now;
  }

  private unreachable(entry: Entry, reason: string): void {
    const now = this.now();
    if (entry.state !== 'failing') {
      entry.state = 'failing';
      entry.since = now;
    }
    entry.lastError = reason;
    entry.lastErrorAt = now;
  }
}

function iso(epochMs: number | undefined): string | null {
  return epochMs === undefined ? null : new Date(epochMs).toISOString();
}
