// The connections to every backend server: one ConnectionBalancer each. The slot queue
// admits at most `slots` requests per server and the balancer has a connection for each
// of them, so nothing queues here: the admission queue stays the only queue in Sluice.
import type { SluiceConfig } from '../config/schema.js';
import { type BalancerStats, ConnectionBalancer } from './connection-balancer.js';
import { LoopSaturation } from './loop-saturation.js';

export type BackendWarn = (message: string, details: Record<string, unknown>) => void;

export class BackendPools {
  private readonly balancers = new Map<string, ConnectionBalancer>();
  /** Path prefix per server URL, parsed once here rather than on every request. */
  private readonly prefixes = new Map<string, string>();

  constructor(backend: SluiceConfig['backend'], warn?: BackendWarn) {
    // One sampler for every server: it measures this process, not a backend.
    const loop = new LoopSaturation();
    const loopSaturated = () => loop.now;
    for (const server of backend.servers) {
      this.prefixes.set(server.url, pathPrefixOf(server.url));
      this.balancers.set(server.url, new ConnectionBalancer({
        url: server.url,
        slots: server.slots,
        connectTimeoutMs: backend.timeouts.connect,
        idleTimeoutMs: backend.timeouts.idle,
        recycleQueued: server.recycle_queued,
        warn,
        loopSaturated,
      }));
    }
  }

  forServer(url: string): ConnectionBalancer {
    const balancer = this.balancers.get(url);
    if (!balancer) throw new Error(`no connections for backend server ${url}`);
    return balancer;
  }

  /** Connections, recycling and the effective concurrency of one server, for /status. */
  connectionStats(url: string): BalancerStats {
    return this.forServer(url).stats();
  }

  /** Path prefix of a server URL such as http://app:8000/base, prepended to every request path. */
  basePath(url: string): string {
    return this.prefixes.get(url) ?? pathPrefixOf(url);
  }

  async close(): Promise<void> {
    await Promise.all([...this.balancers.values()].map((balancer) => balancer.close()));
  }
}

function pathPrefixOf(url: string): string {
  const path = new URL(url).pathname;
  return path === '/' ? '' : path.replace(/\/$/, '');
}
