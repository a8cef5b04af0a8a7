// Recent service time and drain rate of the backend, used for early shedding and for the
// Retry-After of every gateway 503. Both are estimates from the last few seconds; they
// start empty, and until the first completions arrive Sluice does not shed early.

const WINDOW_MS = 10_000;
const BUCKET_MS = 500;
const SERVICE_EWMA_WEIGHT = 0.1;

export class DrainEstimator {
  private serviceMsEwma: number | undefined;
  /** Completion counts per BUCKET_MS bucket, keyed by bucket start. */
  private readonly buckets = new Map<number, number>();

  constructor(private readonly now: () => number) {}

  recordCompletion(serviceMs: number): void {
    this.serviceMsEwma = this.serviceMsEwma === undefined
      ? serviceMs
      : this.serviceMsEwma + SERVICE_EWMA_WEIGHT * (serviceMs - this.serviceMsEwma);
    const bucket = Math.floor(this.now() / BUCKET_MS) * BUCKET_MS;
    this.buckets.set(bucket, (this.buckets.get(bucket) ?? 0) + 1);
    if (this.buckets.size > (WINDOW_MS / BUCKET_MS) * 2) this.prune();
  }

  /** Mean time a slot is held, or undefined before any completion. */
  get serviceMs(): number | undefined {
    return this.serviceMsEwma;
  }

  /** Completions per second over the recent window. */
  drainPerSecond(): number {
    this.prune();
    const oldest = Math.min(...this.buckets.keys());
    if (!Number.isFinite(oldest)) return 0;
    const spanMs = Math.max(BUCKET_MS, Math.min(WINDOW_MS, this.now() - oldest));
    let total = 0;
    for (const count of this.buckets.values()) total += count;
    return (total * 1000) / spanMs;
  }

  /**
   * Expected wait for a request with `ahead` requests in front of it, when `slots` slots
   * serve its class: it starts once `ahead` earlier requests have finished.
   */
  estimateWaitMs(ahead: number, slots: number): number | undefined {
    if (this.serviceMsEwma === undefined || slots <= 0) return undefined;
    return Math.floor(ahead / slots) * this.serviceMsEwma;
  }

  /** Seconds until a queue of `waiting` requests has drained: the Retry-After a client is given. */
  retryAfterSeconds(waiting: number, slots: number): number {
    const rate = this.drainPerSecond();
    const perSecond = rate > 0 ? rate : this.serviceMsEwma ? (slots * 1000) / this.serviceMsEwma : 0;
    if (perSecond <= 0) return 1;
    return Math.min(120, Math.max(1, Math.ceil(waiting / perSecond)));
  }

  private prune(): void {
    const horizon = this.now() - WINDOW_MS;
    for (const bucket of this.buckets.keys()) if (bucket < horizon) this.buckets.delete(bucket);
  }
}
