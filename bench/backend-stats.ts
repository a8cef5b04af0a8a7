/**
 * The backend's own counters (GET /stats, POST /stats/reset on the test backend). A
 * backend without them (e.g. a real Gunicorn app) yields null and the report says so.
 */

export interface BackendStats {
  /** Requests the backend executed (it counts on slot entry). */
  executions: number;
  /** Executions whose client had already gone when they ran or finished. */
  abandoned: number;
  inflightMax: number;
  backlogMax: number | null;
  /** Executions per route shape, e.g. `/api/live/*`. */
  byRoute: Record<string, number>;
}

interface RawStats {
  inflight_now?: number;
  inflight_max?: number;
  total?: number;
  abandoned?: number;
  backlog_now?: number;
  backlog_max?: number;
  by_path?: Record<string, number>;
}

async function getJson(url: string, method = 'GET'): Promise<RawStats | null> {
  try {
    const res = await fetch(url, { method, signal: AbortSignal.timeout(3_000) });
    if (!res.ok) return null;
    const text = await res.text();
    return text ? (JSON.parse(text) as RawStats) : {};
  } catch {
    return null;
  }
}

/** `/api/live/abc-17` -> `/api/live/*`: unique keys would otherwise bloat the results. */
function routeShape(path: string): string {
  const parts = path.split('/');
  return parts.length > 3 ? `${parts.slice(0, 3).join('/')}/*` : path;
}

export async function readBackendStats(baseUrl: string): Promise<BackendStats | null> {
  const raw = await getJson(new URL('/stats', baseUrl).href);
  if (!raw || typeof raw.total !== 'number') return null;
  const byRoute: Record<string, number> = {};
  for (const [path, n] of Object.entries(raw.by_path ?? {})) {
    const shape = routeShape(path);
    byRoute[shape] = (byRoute[shape] ?? 0) + n;
  }
  return {
    executions: raw.total,
    abandoned: raw.abandoned ?? 0,
    inflightMax: raw.inflight_max ?? 0,
    backlogMax: raw.backlog_max ?? null,
    byRoute,
  };
}

export async function resetBackendStats(baseUrl: string): Promise<boolean> {
  return (await getJson(new URL('/stats/reset', baseUrl).href, 'POST')) !== null;
}

/**
 * Waits until the backend runs nothing and has no backlog, so one run's leftovers
 * (work still queued after its clients gave up) are not charged to the next run.
 * Returns how long it waited, or null if the backend has no stats to tell.
 */
export async function waitBackendIdle(baseUrl: string, maxMs: number): Promise<number | null> {
  const t0 = performance.now();
  const polls = Math.ceil(maxMs / 250);
  for (let i = 0; i < polls; i++) {
    const raw = await getJson(new URL('/stats', baseUrl).href);
    if (!raw) return null;
    if ((raw.inflight_now ?? 0) === 0 && (raw.backlog_now ?? 0) === 0) return Math.round(performance.now() - t0);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return Math.round(performance.now() - t0);
}
