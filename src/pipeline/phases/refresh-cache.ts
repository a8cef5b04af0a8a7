// Stale-while-revalidate: one background refresh per stored entry, queued at the lowest
// priority inside the route's caps, with no client attached. A failed refresh keeps the
// stale copy until it expires; the next request tries again.
import type { CacheEntry, CacheRequest, ResponseCache } from '../../cache/response-cache.js';
import { PRIORITY_CLASSES } from '../../config/schema.js';
import type { BufferedBody } from '../../http/body-buffer.js';
import type { HeaderMap } from '../../http/headers.js';
import { callUpstream } from '../../upstream/call-upstream.js';
import type { RequestContext } from '../context.js';
import type { PipelineDeps } from '../deps.js';
import { readPathHeaders } from './prepare-upstream.js';

const BACKGROUND_RANK = PRIORITY_CLASSES.indexOf('background');

/** Revalidates `entry` with `validators`; the request is built as the read path builds any (prepare-upstream.ts). */
export function refreshInBackground(
  ctx: RequestContext, deps: PipelineDeps, cache: ResponseCache, request: CacheRequest, entry: CacheEntry,
  validators: HeaderMap | undefined,
): void {
  if (!cache.beginRefresh(entry)) return;
  const headers = readPathHeaders(ctx, deps, validators);
  void refresh(ctx, deps, cache, request, entry, headers)
    .catch(() => { /* the stale copy stays until it expires */ })
    .finally(() => cache.endRefresh(entry));
}

async function refresh(ctx: RequestContext, deps: PipelineDeps, cache: ResponseCache, request: CacheRequest, entry: CacheEntry, headers: HeaderMap): Promise<void> {
  const route = ctx.route!;
  const path = ctx.pathname + ctx.search;
  const limits = deps.config.raw.limits;
  const lease = await deps.queue.acquire({
    group: deps.queue.group(route.name, { maxSlots: route.maxSlots, reservedSlots: route.reservedSlots }),
    priorityRank: BACKGROUND_RANK,
    queueTimeoutMs: route.queueTimeoutMs,
    info: { requestId: `${ctx.id}:refresh`, method: 'GET', path },
  });
  const response = await callUpstream(deps.upstream, lease, {
    serviceKey: route.name,
    method: 'GET', target: path, headers, body: undefined,
    signal: AbortSignal.timeout(route.totalTimeoutMs),
    headersTimeoutMs: route.timeouts.responseMs, bodyTimeoutMs: route.timeouts.bodyMs, stream: false,
    buffer: { memoryLimit: limits.memory_buffer, maxBytes: limits.max_response, tempDir: limits.temp_dir },
  });
  const body = response.body as BufferedBody;
  try {
    if (response.status === 304) cache.revalidated(request, entry, response.headers, route.cache);
    else if (response.status < 500 && !(await cache.store(request, { ...response, body }, route.cache))) cache.invalidate(entry);
  } finally {
    await body.dispose();
  }
}
