// What a request "normally" takes in the backend, per kind of request (route). The
// connection balancer compares each response against it to tell a request that waited
// inside the backend from one that was simply slow work.

const WINDOW = 32;
const RECOMPUTE_EVERY = 8;
/** Below this many samples there is no baseline: nothing is judged. */
const MIN_SAMPLES = 8;

/** A ring of recent service times; the baseline is its 25th percentile. */
class Ring {
  private readonly samples: number[] = [];
  private next = 0;
  private sinceRecompute = 0;
  baselineMs: number | undefined;

  add(ms: number): void {
    if (this.samples.length < WINDOW) this.samples.push(ms);
    else this.samples[this.next] = ms;
    this.next = (this.next + 1) % WINDOW;
    this.sinceRecompute += 1;
    if (this.samples.length >= MIN_SAMPLES && (this.baselineMs === undefined || this.sinceRecompute >= RECOMPUTE_EVERY)) {
      this.sinceRecompute = 0;
      const sorted = [...this.samples].sort((a, b) => a - b);
      this.baselineMs = sorted[Math.floor(sorted.length / 4)];
    }
  }
}

/**
 * Low-percentile service time per key. A low percentile rather than a mean, because the
 * samples it learns from include the very requests that waited inside the backend.
 */
export class ServiceBaseline {
  private readonly rings = new Map<string, Ring>();

  /** Records a sample and returns the baseline it is judged against (before this sample). */
  observe(key: string, ms: number): number | undefined {
    let ring = this.rings.get(key);
    if (!ring) {
      ring = new Ring();
      this.rings.set(key, ring);
    }
    const before = ring.baselineMs;
    ring.add(ms);
    return before;
  }

  baselineMs(key: string): number | undefined {
    return this.rings.get(key)?.baselineMs;
  }
}
