// The shared cache tier: Redis behind each instance's memory cache. What one instance
// stores, the others find on a local miss (one Redis round trip) and copy into their own
// memory cache, so N instances make one backend call per answer instead of N.
//
// Contract:
// - Only what the local cache admitted is written (RFC 9111 and the route's rules were
//   applied there), and only answers without Vary (a variant's key needs the request).
// - An entry carries its age: a copy served by another instance is exactly as fresh as the
//   original (to the second; instances' clocks must agree, as NTP makes them).
// - Bounded in bytes (cluster.cache_max_bytes): a Lua script counts every entry's size and
//   evicts the oldest writes first; expired entries count until they are pushed out, so the
//   bound is never exceeded. Each entry also has a Redis TTL (its freshness plus its stale
//   windows, or an hour for entries kept for revalidation).
// - A purge (DELETE /cache on any instance's admin port) deletes matching entries in Redis
//   and is announced on a channel, so every instance purges its memory cache too.
// - Redis unreachable: lookups miss and writes are dropped; the memory cache works as before.
import { createHash } from 'node:crypto';
import type { RedisLink } from './redis-link.js';

type Headers = Record<string, string | string[]>;

/** The parts of a local cache request and entry this tier reads (structural: no import of the cache). */
export interface TierRequest { readonly key: string; readonly target: string }
export interface TierEntry {
  readonly storageKey: string;
  readonly target: string;
  readonly status: number;
  readonly headers: Headers;
  readonly body: Buffer;
  readonly retainMs: number | undefined;
  readonly staleWhileRevalidateSec: number;
  readonly staleIfErrorSec: number;
  readonly policy: { age(): number; maxAge(): number };
}
export interface LocalCache<R extends TierRequest, Rules> {
  store(request: R, response: { status: number; headers: Headers; body: { size: number; toBuffer(): Promise<Buffer> } }, rules: Rules): Promise<unknown>;
  purge(matches?: (target: string) => boolean): number;
}

const PUT_LUA = `
local old = redis.call('HGET', KEYS[3], KEYS[1])
if old then redis.call('DECRBY', KEYS[4], old) end
redis.call('HSET', KEYS[1], 'meta', ARGV[1], 'body', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local t = redis.call('TIME')
redis.call('ZADD', KEYS[2], tonumber(t[1]) * 1000000 + tonumber(t[2]), KEYS[1])
redis.call('HSET', KEYS[3], KEYS[1], ARGV[4])
local total = redis.call('INCRBY', KEYS[4], ARGV[4])
local max = tonumber(ARGV[5])
local evicted = 0
while total > max do
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  if not oldest then break end
  local size = tonumber(redis.call('HGET', KEYS[3], oldest) or '0')
  redis.call('ZREM', KEYS[2], oldest)
  redis.call('HDEL', KEYS[3], oldest)
  redis.call('DEL', oldest)
  total = redis.call('DECRBY', KEYS[4], size)
  evicted = evicted + 1
end
return evicted
`;

const REMOVE_LUA = `
local removed = 0
for i = 4, #KEYS do
  local size = redis.call('HGET', KEYS[2], KEYS[i])
  if size then
    redis.call('DECRBY', KEYS[3], size)
    redis.call('HDEL', KEYS[2], KEYS[i])
    removed = removed + 1
  end
  redis.call('ZREM', KEYS[1], KEYS[i])
  redis.call('DEL', KEYS[i])
end
return removed
`;

export interface SharedCacheOptions {
  readonly instanceId: string;
  readonly keyPrefix: string;
  readonly maxBytes: number;
}

export class SharedCache<R extends TierRequest, Rules> {
  private readonly index: string;
  private readonly sizes: string;
  private readonly total: string;
  private readonly channel: string;
  /** Keys being copied in from Redis: storing them locally must not write them back. */
  private readonly filling = new Set<string>();
  private purgeHandler: ((glob: string | undefined) => void) | undefined;
  readonly totals = { lookups: 0, found: 0, written: 0, evicted: 0, errors: 0 };

  constructor(private readonly link: RedisLink, private readonly local: LocalCache<R, Rules>, private readonly options: SharedCacheOptions) {
    const p = options.keyPrefix;
    this.index = `${p}cache:index`;
    this.sizes = `${p}cache:sizes`;
    this.total = `${p}cache:bytes`;
    this.channel = `${p}cache:purge`;
    link.onMessage(this.channel, (message) => {
      const { from, glob } = JSON.parse(message) as { from: string; glob: string | null };
      if (from !== options.instanceId) this.purgeHandler?.(glob ?? undefined);
    });
  }

  /** How a purge announced by another instance is applied to this one's memory cache. */
  onPurge(handler: (glob: string | undefined) => void): void {
    this.purgeHandler = handler;
  }

  /** On a local miss: copies the entry from Redis into the memory cache; true when it did. */
  async fill(request: R, rules: Rules): Promise<boolean> {
    if (this.link.health !== 'up') return false;
    this.totals.lookups++;
    const key = this.entryKey(request.key);
    let stored: Record<string, Buffer>;
    try {
      stored = await this.link.client.hgetallBuffer(key);
    } catch {
      this.totals.errors++;
      return false;
    }
    if (!stored.meta || !stored.body) return false;
    const meta = JSON.parse(stored.meta.toString('utf8')) as { status: number; headers: Headers; storedAt: number };
    // The copy keeps the original's age, so it expires when the original does.
    const age = Math.max(0, Math.floor((Date.now() - meta.storedAt) / 1000));
    const body = stored.body;
    this.filling.add(request.key);
    try {
      await this.local.store(request, { status: meta.status, headers: { ...meta.headers, age: String(age) }, body: { size: body.length, toBuffer: async () => body } }, rules);
    } finally {
      this.filling.delete(request.key);
    }
    this.totals.found++;
    return true;
  }

  /** The memory cache stored an entry: write it through (fire and forget). */
  stored(request: R, entry: TierEntry): void {
    if (this.filling.has(request.key) || entry.storageKey !== request.key || this.link.health !== 'up') return;
    const size = entry.body.length + 512;
    if (size > this.options.maxBytes) return;
    const ageMs = entry.policy.age() * 1000;
    const keepMs = entry.retainMs ?? 3_600_000;
    const ttlMs = Math.max(1_000, Math.ceil(Math.min(keepMs, (entry.policy.maxAge() + entry.staleWhileRevalidateSec + entry.staleIfErrorSec) * 1000 - ageMs) || keepMs));
    const headers = { ...entry.headers };
    delete headers['age'];
    const meta = JSON.stringify({ status: entry.status, headers, storedAt: Date.now() - ageMs, target: entry.target });
    const key = this.entryKey(request.key);
    this.link.client.eval(PUT_LUA, 4, key, this.index, this.sizes, this.total, meta, entry.body, String(ttlMs), String(size), String(this.options.maxBytes))
      .then((evicted) => { this.totals.written++; this.totals.evicted += Number(evicted); })
      .catch(() => { this.totals.errors++; });
  }

  /** Purges Redis entries whose target matches (all without a matcher) and tells the other instances. */
  async purge(glob: string | undefined, matches: ((target: string) => boolean) | undefined): Promise<number> {
    if (this.link.health !== 'up') return 0;
    const keys = await this.link.client.zrange(this.index, 0, -1);
    let doomed = keys;
    if (matches) {
      const metas = keys.length > 0 ? await this.link.client.pipeline(keys.map((k) => ['hget', k, 'meta'])).exec() : [];
      doomed = keys.filter((_, i) => {
        const meta = metas?.[i]?.[1];
        return typeof meta !== 'string' || matches((JSON.parse(meta) as { target: string }).target);
      });
    }
    let removed = 0;
    for (let i = 0; i < doomed.length; i += 500) {
      const batch = doomed.slice(i, i + 500);
      removed += Number(await this.link.client.eval(REMOVE_LUA, 3 + batch.length, this.index, this.sizes, this.total, ...batch));
    }
    await this.link.client.publish(this.channel, JSON.stringify({ from: this.options.instanceId, glob: glob ?? null }));
    return removed;
  }

  stats(): Record<string, number> {
    return { ...this.totals, max_bytes: this.options.maxBytes };
  }

  /** Bytes the tier counts in Redis now (for tests and /status). */
  async bytes(): Promise<number> {
    return Number(await this.link.client.get(this.total) ?? 0);
  }

  private entryKey(key: string): string {
    return `${this.options.keyPrefix}cache:e:${createHash('sha256').update(key).digest('base64url').slice(0, 32)}`;
  }
}
