/**
 * Key distributions for request paths. Every sampler owns its random state (seeded),
 * so two runs with the same seed request the same sequence of keys.
 */

export type KeySpec =
  | { kind: 'zipf'; n: number; s?: number }
  | { kind: 'uniform'; n: number }
  | { kind: 'unique'; prefix?: string }
  | { kind: 'fixed'; key: string };

export type KeySampler = () => string;

/** mulberry32: tiny, fast, good enough to drive load; not for anything secret. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Cumulative distribution of Zipf(s) over ranks 1..n; cdf[n-1] === 1. */
export function zipfCdf(n: number, s: number): Float64Array {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 1; k <= n; k++) {
    sum += 1 / Math.pow(k, s);
    cdf[k - 1] = sum;
  }
  for (let i = 0; i < n; i++) cdf[i] = (cdf[i] ?? 0) / sum;
  cdf[n - 1] = 1;
  return cdf;
}

/** Returns the 1-based rank whose CDF bucket contains u (binary search). */
export function rankFromCdf(cdf: Float64Array, u: number): number {
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((cdf[mid] ?? 1) < u) lo = mid + 1;
    else hi = mid;
  }
  return lo + 1;
}

export function zipfSampler(n: number, s: number, rand: () => number): () => number {
  const cdf = zipfCdf(n, s);
  return () => rankFromCdf(cdf, rand());
}

/**
 * Builds a sampler. Unique keys carry a per-sampler tag so two runs against the same
 * long-lived backend or cache never reuse each other's keys.
 */
export function makeKeySampler(spec: KeySpec, seed = 1): KeySampler {
  const rand = seededRandom(seed);
  switch (spec.kind) {
    case 'zipf': {
      const next = zipfSampler(spec.n, spec.s ?? 1.0, rand);
      return () => String(next());
    }
    case 'uniform':
      return () => String(1 + Math.floor(rand() * spec.n));
    case 'unique': {
      const tag = spec.prefix ?? `${Date.now().toString(36)}${Math.floor(rand() * 1e6).toString(36)}`;
      let counter = 0;
      return () => `${tag}-${++counter}`;
    }
    case 'fixed':
      return () => spec.key;
  }
}
