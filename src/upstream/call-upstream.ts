// The one way Sluice calls a backend, for proxied requests, background cache refreshes and
// job attempts alike: on the server the slot queue leased, under that server's path
// prefix, telling the health tracker how the call went, and handing the slot back the
// moment the backend is done with it — when a buffered answer is in, or, for a streamed
// one, when the caller says so (the caller releases it once the body has been read).
import type { ProxyResponse } from '../http/proxy-response.js';
import type { BackendPools } from './backend-pools.js';
import { callBackend, type UpstreamCall } from './forward.js';

export interface UpstreamEnv {
  readonly pools: BackendPools;
  /** How each call went, by server: a status, or the error code it failed with. */
  readonly onOutcome: (serverUrl: string, outcome: { readonly status?: number; readonly errorCode?: string }) => void;
}

/** What the slot queue leased: the server to call and the slot to give back. */
export interface LeasedSlot {
  readonly server: { readonly url: string };
  release(): void;
}

/** A call as its caller knows it: the target (path and query) on the backend, not yet prefixed. */
export type LeasedCall = Omit<UpstreamCall, 'path'> & { readonly target: string };

export async function callUpstream(env: UpstreamEnv, lease: LeasedSlot, call: LeasedCall): Promise<ProxyResponse> {
  const url = lease.server.url;
  try {
    const response = await callBackend(env.pools.forServer(url), { ...call, path: env.pools.basePath(url) + call.target });
    env.onOutcome(url, { status: response.status });
    return response;
  } catch (err) {
    env.onOutcome(url, { errorCode: (err as { code?: string }).code ?? 'internal' });
    throw err;
  } finally {
    if (!call.stream) lease.release();
  }
}
