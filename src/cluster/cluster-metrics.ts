// Scale-out gauges on the app's Prometheus registry, read from the cluster at scrape time.
// Cluster-wide numbers come from this instance's last exchange with Redis (at most a third
// of lease_ttl old while Redis is up); label values are the instance id and the configured
// backend server URLs, so the series count is bounded.
import { Gauge, Histogram, type Registry } from 'prom-client';
import type { Cluster } from './cluster.js';

export function registerClusterMetrics(registry: Registry, cluster: Cluster): void {
  const view = () => cluster.slots.view();
  new Gauge({
    name: 'sluice_cluster_info', help: 'This instance in a Sluice cluster (always 1), labelled with its instance id.',
    labelNames: ['instance'] as const, registers: [registry],
    collect() { this.set({ instance: cluster.instanceId }, 1); },
  });
  new Gauge({
    name: 'sluice_cluster_redis_up', help: '1 while Redis is reachable, 0 otherwise.', registers: [registry],
    collect() { this.set(cluster.link.health === 'up' ? 1 : 0); },
  });
  new Gauge({
    name: 'sluice_cluster_fallback', help: '1 while this instance runs on fallback_slots because Redis is unreachable.', registers: [registry],
    collect() { this.set(cluster.slots.mode === 'fallback' ? 1 : 0); },
  });
  new Gauge({
    name: 'sluice_cluster_instances', help: 'Instances holding a live registration in Redis, as of the last exchange.', registers: [registry],
    collect() { this.set(view().instances ?? 0); },
  });
  new Gauge({
    name: 'sluice_cluster_slots_busy', help: 'Slot leases in use across the cluster per backend server, as of the last exchange.',
    labelNames: ['server'] as const, registers: [registry],
    collect() { for (const s of view().servers) this.set({ server: s.url }, s.cluster_busy ?? 0); },
  });
  new Gauge({
    name: 'sluice_cluster_slots_held', help: 'Slot leases this instance holds per backend server (in use or about to be).',
    labelNames: ['server'] as const, registers: [registry],
    collect() { for (const s of view().servers) this.set({ server: s.url }, s.held); },
  });
  const acquire = new Histogram({
    name: 'sluice_cluster_lease_exchange_seconds', help: 'Round trip of a lease exchange with Redis that granted slots (the latency a shared slot adds).',
    buckets: [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1], registers: [registry],
  });
  cluster.slots.onExchange = (ms) => acquire.observe(ms / 1000);
}
