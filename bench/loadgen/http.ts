import { Agent } from 'undici';
import type { Readable } from 'node:stream';
import { classifyStatus, type Outcome } from './outcome.js';

/**
 * One undici Agent per workload. `connections: null` lets each origin's Pool open a
 * connection per in-flight request, so the client never queues requests of its own:
 * whatever waiting the numbers show happened on the server side.
 */
export function newAgent(): Agent {
  return new Agent({
    connections: null,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 60_000,
    connect: { timeout: 10_000 },
    // The per-request deadline comes from an AbortSignal; these only must not fire first.
    headersTimeout: 0,
    bodyTimeout: 0,
  });
}

export async function closeAgent(agent: Agent): Promise<void> {
  // close() waits for in-flight requests; every one of them has a deadline, but a
  // stuck socket must not hold the bench, so fall back to destroy after a bound.
  const timer = setTimeout(() => void agent.destroy().catch(() => undefined), 5_000);
  try {
    await agent.close();
  } catch {
    /* already destroyed */
  } finally {
    clearTimeout(timer);
  }
}

export interface RequestSpec {
  origin: string;
  method: 'GET' | 'POST';
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer | Readable;
  /** Absolute deadline for this exchange, performance.now() milliseconds. */
  deadline: number;
}

export type Exchange =
  | { kind: 'response'; status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }
  | { kind: 'timeout' }
  | { kind: 'conn_error'; code: string };

/** Sends one request and reads the whole body; never throws. */
export async function exchange(agent: Agent, spec: RequestSpec): Promise<Exchange> {
  const remaining = spec.deadline - performance.now();
  if (remaining <= 0) return { kind: 'timeout' };
  const signal = AbortSignal.timeout(Math.ceil(remaining));
  try {
    const res = await agent.request({
      origin: spec.origin,
      method: spec.method,
      path: spec.path,
      headers: spec.headers,
      body: spec.body ?? null,
      signal,
    });
    const body = Buffer.from(await res.body.arrayBuffer());
    return { kind: 'response', status: res.statusCode, headers: res.headers, body };
  } catch (err) {
    if (signal.aborted) return { kind: 'timeout' };
    const code = (err as { code?: string }).code ?? (err as Error).name ?? 'error';
    return { kind: 'conn_error', code };
  }
}

export function headerValue(h: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

export function outcomeOf(ex: Exchange): Outcome {
  if (ex.kind === 'timeout') return 'timeout';
  if (ex.kind === 'conn_error') return 'conn_error';
  return classifyStatus(ex.status, headerValue(ex.headers, 'retry-after') !== undefined);
}
