// What a coalescing leader hands its followers, and who owns the body. A backend body may
// be a temp file; it is deleted only after the last response that reads it (the leader's
// and every follower's) has been written.
import type { BufferedBody } from '../http/body-buffer.js';
import type { CacheStatus } from '../cache/cache-status.js';
import type { ProxyResponse } from '../http/proxy-response.js';

export interface SharedAnswer {
  /** The complete answer (status, headers, buffered body), before any client's own 304. */
  readonly response: ProxyResponse & { readonly body: BufferedBody };
  readonly cacheStatus: CacheStatus | undefined;
  /** Cache-Status parameters of the leader's fetch, without `stored` (followers store nothing). */
  readonly cacheStatusDetail: string;
  readonly owner: SharedBody;
}

/** Reference-counted ownership of a buffered body: disposed when the last holder releases it. */
export class SharedBody {
  private holders = 1;

  constructor(readonly body: BufferedBody) {}

  /** Adds holders; call synchronously while still holding, so the count never reaches 0 early. */
  retain(count: number): void {
    this.holders += count;
  }

  release(): void {
    this.holders--;
    if (this.holders === 0) void this.body.dispose();
  }
}
