// Counts of what each client holds right now (keyed by the original client address, which
// behind a trusted proxy is the forwarded one), for limits.per_client.max_queued.
import { SluiceError } from '../errors.js';

export class PerClientCounter {
  private readonly counts = new Map<string, number>();

  /** `limit` 0 means no limit. */
  constructor(readonly limit: number, private readonly setting: string) {}

  /** Takes one unit for `client`, or throws 429 client_limit; call the returned function to give it back. */
  take(client: string): () => void {
    if (this.limit <= 0) return noop;
    const held = this.counts.get(client) ?? 0;
    if (held >= this.limit) {
      throw new SluiceError('client_limit', `${this.limit} per client (${this.setting})`, { retryAfterSeconds: 1 });
    }
    this.counts.set(client, held + 1);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      const left = (this.counts.get(client) ?? 1) - 1;
      if (left <= 0) this.counts.delete(client);
      else this.counts.set(client, left);
    };
  }

  held(client: string): number {
    return this.counts.get(client) ?? 0;
  }
}

function noop(): void {}
