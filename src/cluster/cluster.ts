// Scale-out mode, built by app.ts when `cluster` is configured: the Redis link, the shared
// slot budget and cross-instance coalescing, plus what /readyz and /status say about them.
// Without `cluster` none of this exists and Sluice runs entirely in-process.
import { hostname } from 'node:os';
import type { ClusterConfig } from '../config/schema.js';
import { ClusterSlots } from './cluster-slots.js';
import { RemoteFlights } from './remote-flights.js';
import { RedisLink } from './redis-link.js';
import { SharedCache, type LocalCache, type TierRequest } from './shared-cache.js';
import { BullJobs, type BullJobsOptions } from './bull-jobs.js';

export type ClusterLog = (level: 'info' | 'warn', message: string) => void;

export class Cluster {
  readonly instanceId: string;
  readonly link: RedisLink;
  readonly slots: ClusterSlots;
  /** Cross-instance coalescing; undefined when `cluster.coalesce` is off. */
  readonly flights: RemoteFlights | undefined;

  constructor(private readonly config: ClusterConfig, servers: readonly { url: string; slots: number }[], log: ClusterLog) {
    this.instanceId = config.instance_id ?? `${hostname()}-${process.pid}`;
    // A command slower than a third of the lease TTL would risk the leases it renews.
    this.link = new RedisLink({ url: config.redis, commandTimeoutMs: Math.max(200, Math.min(2_000, Math.floor(config.lease_ttl / 3))), log });
    this.slots = new ClusterSlots(this.link, {
      instanceId: this.instanceId,
      servers,
      leaseTtlMs: config.lease_ttl,
      fallbackSlots: config.fallback_slots,
      keyPrefix: config.key_prefix,
    });
    this.flights = config.coalesce ? new RemoteFlights(this.link, { instanceId: this.instanceId, keyPrefix: config.key_prefix, lockTtlMs: config.lease_ttl }) : undefined;
  }

  start(): void {
    this.link.connect();
  }

  /** /readyz: Redis health and the slot mode; with `require_redis`, not ready while Redis is unreachable. */
  readiness(): { reason?: string; detail: Record<string, unknown> } {
    const redis = this.link.health;
    const detail = { redis, slots: this.slots.mode, instance: this.instanceId };
    if (this.config.require_redis && redis !== 'up') return { reason: `Redis at ${this.link.where} is unreachable (cluster.require_redis)`, detail };
    return { detail };
  }

  status(): Record<string, unknown> {
    return {
      redis: { health: this.link.health, at: this.link.where, error: this.link.error ?? null },
      lease_ttl_ms: this.config.lease_ttl,
      fallback_slots: this.config.fallback_slots,
      ...this.slots.view(),
      exchanges: this.slots.totals,
      flights: this.flights?.stats() ?? null,
      shared_cache: this.cacheTier?.stats() ?? null,
    };
  }

  /** Hands held slots back at once so the other instances need not wait for lease_ttl. */
  /** Jobs on BullMQ; undefined when `cluster.jobs` is off (each instance keeps its own store). */
  bullJobs(options: Omit<BullJobsOptions, 'redisUrl' | 'link' | 'keyPrefix' | 'instanceId' | 'lockMs'>): BullJobs | undefined {
    if (!this.config.jobs) return undefined;
    // A job's lock outlives a pause of its worker's event loop; a dead instance's job runs again after it.
    return new BullJobs({ ...options, redisUrl: this.config.redis, link: this.link, keyPrefix: this.config.key_prefix, instanceId: this.instanceId, lockMs: Math.max(2_000, this.config.lease_ttl) });
  }

  /** The shared cache tier over `local`; undefined when cache_max_bytes is 0. */
  sharedCache<R extends TierRequest, Rules>(local: LocalCache<R, Rules>): SharedCache<R, Rules> | undefined {
    if (this.config.cache_max_bytes === 0) return undefined;
    this.cacheTier = new SharedCache(this.link, local, { instanceId: this.instanceId, keyPrefix: this.config.key_prefix, maxBytes: this.config.cache_max_bytes });
    return this.cacheTier as SharedCache<R, Rules>;
  }

  /** The shared cache tier, once sharedCache() built it. */
  cacheTier: { stats(): Record<string, number>; bytes(): Promise<number> } | undefined;

  async close(): Promise<void> {
    await this.slots.releaseAll();
    this.slots.close();
    this.flights?.close();
    await this.link.close();
  }
}
