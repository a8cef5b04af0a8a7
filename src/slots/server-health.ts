// Passive health per backend server: after `failures` consecutive connect failures or
// connect timeouts, a server is ejected for `cooldown`; then one request probes it (half
// open): success puts it back, failure ejects it again. Grants skip ejected servers, so
// with several servers traffic moves to the healthy ones. When every server is ejected
// none is skipped: a request then gets the backend's real error at once instead of waiting
// in the queue for a server that may never come back.
export type ServerHealthState = 'healthy' | 'ejected' | 'probing';

interface Entry {
  failures: number;
  state: ServerHealthState;
  /** Ejected until (ms, performance clock); when probing, the probe's start. */
  at: number;
}

export class ServerHealth {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly options: { readonly failures: number; readonly cooldownMs: number },
    private readonly now: () => number = () => performance.now(),
  ) {}

  get enabled(): boolean {
    return this.options.failures > 0;
  }

  /** Whether a new request may be sent to this server now. */
  available(url: string): boolean {
    const entry = this.entries.get(url);
    if (!entry || entry.state === 'healthy') return true;
    // A probe that never reported (its client left) does not block the next one for ever.
    return this.now() >= entry.at + (entry.state === 'probing' ? this.options.cooldownMs : 0);
  }

  /** A request was granted on this server; a server past its cool-down is now being probed. */
  granted(url: string): void {
    const entry = this.entries.get(url);
    if (entry && entry.state !== 'healthy' && this.available(url)) {
      entry.state = 'probing';
      entry.at = this.now();
    }
  }

  /** The outcome of a call: `connectFailed` for connect errors and connect timeouts only. */
  record(url: string, connectFailed: boolean): void {
    if (!this.enabled) return;
    let entry = this.entries.get(url);
    if (!connectFailed) {
      if (entry) this.entries.delete(url);
      return;
    }
    entry ??= { failures: 0, state: 'healthy', at: 0 };
    this.entries.set(url, entry);
    entry.failures++;
    if (entry.state === 'probing' || entry.failures >= this.options.failures) {
      entry.state = 'ejected';
      entry.at = this.now() + this.options.cooldownMs;
    }
  }

  state(url: string): ServerHealthState {
    const entry = this.entries.get(url);
    return entry?.state ?? 'healthy';
  }
}
