// One undici Pool per backend server, with exactly as many connections as the server has
// slots. The slot queue admits at most that many requests per server, so the pool never
// has to queue: the admission queue stays the only queue in the system.
import { Pool } from 'undici';
import type { SluiceConfig } from '../config/schema.js';

export class BackendPools {
  private readonly pools = new Map<string, Pool>();
  /** Path prefix per server URL, parsed once here rather than on every request. */
  private readonly prefixes = new Map<string, string>();

  constructor(backend: SluiceConfig['backend'], keepAliveTimeoutMs = 4_000) {
    for (const server of backend.servers) {
      const origin = new URL(server.url).origin;
      this.prefixes.set(server.url, pathPrefixOf(server.url));
      this.pools.set(server.url, new Pool(origin, {
        connections: server.slots,
        pipelining: 1,
        connect: { timeout: backend.timeouts.connect },
        keepAliveTimeout: keepAliveTimeoutMs,
        // Timeouts are set per request from the route; these are only ceilings.
        headersTimeout: 0,
        bodyTimeout: 0,
      }));
    }
  }

  forServer(url: string): Pool {
    const pool = this.pools.get(url);
    if (!pool) throw new Error(`no pool for backend server ${url}`);
    return pool;
  }

  /** undici's own view of a server's pool; `queued` staying 0 shows Sluice's queue is the only one. */
  poolStats(url: string): { connected: number; running: number; queued: number } {
    const stats = this.forServer(url).stats;
    return { connected: stats.connected, running: stats.running, queued: stats.queued };
  }

  /** Path prefix of a server URL such as http://app:8000/base, prepended to every request path. */
  basePath(url: string): string {
    return this.prefixes.get(url) ?? pathPrefixOf(url);
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((pool) => pool.close().catch(() => pool.destroy())));
  }
}

function pathPrefixOf(url: string): string {
  const path = new URL(url).pathname;
  return path === '/' ? '' : path.replace(/\/$/, '');
}
