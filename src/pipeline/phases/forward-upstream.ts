// Calls the backend on the leased server (src/upstream/call-upstream.ts). In buffered mode
// the slot is released as soon as the response body is in Sluice's hands; with
// stream_response it is released only when the client has the whole body (acquireSlot's
// finalizer), which is why streaming is opt-in per route.
import { callUpstream } from '../../upstream/call-upstream.js';
import type { RequestContext } from '../context.js';
import type { PipelineDeps } from '../deps.js';
import { observe } from '../observe.js';
import type { PhaseResult } from './phase.js';
import type { HeaderMap } from '../../http/headers.js';
import { endToEndHeaders } from '../../http/headers.js';

/**
 * Interim responses reach this request's client as they arrive (RFC 9110 §15.2): 103 Early
 * Hints let a browser start fetching while the backend still computes. Never stored or
 * shared with coalesced followers. HTTP/1.0 clients get none (§15.2). A 100 from the
 * backend never arrives here: Sluice answers Expect itself and does not forward it.
 */
function passInterim(ctx: RequestContext, status: number, headers: HeaderMap): void {
  const res = ctx.res;
  if (res.headersSent || res.destroyed || ctx.req.httpVersion === '1.0') return;
  if (status === 103) res.writeEarlyHints(endToEndHeaders(headers) as Record<string, string | string[]>);
  else if (status === 102) res.writeProcessing();
}

export async function forwardUpstream(ctx: RequestContext, deps: PipelineDeps): Promise<PhaseResult> {
  const route = ctx.route!;
  const lease = ctx.lease!;
  const limits = deps.config.raw.limits;
  ctx.backendServer = lease.server.url;
  const remaining = Math.max(1, ctx.deadlineAt - performance.now());
  const started = performance.now();
  try {
    ctx.response = await callUpstream(deps.upstream, lease, {
      serviceKey: route.name,
      method: ctx.method,
      target: ctx.pathname + ctx.search,
      headers: ctx.upstreamHeaders!,
      body: ctx.body,
      signal: ctx.work.signal,
      headersTimeoutMs: Math.min(route.timeouts.responseMs, remaining),
      bodyTimeoutMs: route.timeouts.bodyMs,
      stream: route.streamResponse,
      buffer: { memoryLimit: limits.memory_buffer, maxBytes: limits.max_response, tempDir: limits.temp_dir },
      onInterim: (status, interim) => passInterim(ctx, status, interim),
    });
    const outcome = { status: ctx.response.status, durationMs: performance.now() - started };
    observe(deps.observers, (o) => o.afterUpstream?.(ctx, outcome));
  } catch (err) {
    const outcome = { errorCode: (err as { code?: string }).code ?? 'internal', durationMs: performance.now() - started };
    observe(deps.observers, (o) => o.afterUpstream?.(ctx, outcome));
    throw err;
  } finally {
    ctx.timings.upstreamMs += performance.now() - started;
  }
  return 'continue';
}
