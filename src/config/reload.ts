// What a reload may change while Sluice runs. Routes (with their priorities, caps, cache,
// coalescing and job settings), queue settings, per-request limits, the path and header
// policy, trusted proxies and lowered slot counts apply to new requests at once. Settings
// that objects were built with at start (listeners, backend connections, stores, telemetry,
// connection-level limits) keep their running values and are reported as needing a restart.
import type { SluiceConfig } from './schema.js';

/** Keys whose running value is kept on reload; a change to them is reported. */
const RESTART_ONLY: ReadonlyArray<readonly string[]> = [
  ['listen', 'host'], ['listen', 'port'], ['admin'], ['backend', 'timeouts'], ['backend', 'passive_health'],
  ['jobs', 'store'], ['jobs', 'path'], ['jobs', 'prefix'], ['tracing'], ['logging'], ['cache'], ['shutdown'],
  ['limits', 'max_header_bytes'], ['limits', 'keep_alive_timeout'], ['limits', 'header_timeout'],
  ['limits', 'max_connections'], ['limits', 'pipeline_depth'], ['limits', 'buffer_memory'], ['limits', 'buffer_disk'],
  ['limits', 'per_client', 'max_connections'],
];

export interface ReloadPlan {
  /** The config to run: `next`, with the running value of every restart-only key. */
  readonly config: SluiceConfig;
  /** Changed settings that take effect only after a restart. */
  readonly restartRequired: readonly string[];
}

/**
 * `startSlots`: each server's slot count at start — its connection pool's size, so a reload
 * may lower a count and raise it back, never beyond.
 */
export function planReload(running: SluiceConfig, next: SluiceConfig, startSlots: ReadonlyMap<string, number>): ReloadPlan {
  const merged = structuredClone(next) as unknown as Record<string, unknown>;
  const restartRequired: string[] = [];
  for (const path of RESTART_ONLY) {
    const before = get(running, path);
    if (JSON.stringify(before) !== JSON.stringify(get(next, path))) restartRequired.push(path.join('.'));
    set(merged, path, structuredClone(before));
  }
  const urls = (c: SluiceConfig) => c.backend.servers.map((s) => s.url).join(' ');
  const servers = structuredClone(running.backend.servers);
  if (urls(running) !== urls(next)) {
    restartRequired.push('backend.servers (adding, removing or reordering servers)');
  } else {
    next.backend.servers.forEach((server, index) => {
      const max = startSlots.get(server.url) ?? server.slots;
      if (server.slots > max) restartRequired.push(`backend.servers[${index}].slots above ${max} (its connection pool)`);
      servers[index]!.slots = Math.min(server.slots, max);
    });
  }
  (merged.backend as { servers: unknown }).servers = servers;
  return { config: merged as unknown as SluiceConfig, restartRequired };
}

function get(root: unknown, path: readonly string[]): unknown {
  return path.reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], root);
}

function set(root: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = root;
  for (const key of path.slice(0, -1)) node = (node[key] ??= {}) as Record<string, unknown>;
  node[path.at(-1)!] = value;
}
