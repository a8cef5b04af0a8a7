// A small client for the job resources, shared by the job tests: submit, poll (long-poll
// with ?wait), read results, and count backend calls per job by Idempotency-Key.
import type { TestBackend } from '../../src/testing/backend.js';
import { get } from '../helpers/harness.js';

export const FINAL = new Set(['succeeded', 'failed', 'canceled']);

export interface Submitted {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  body: Buffer;
  /** Parsed JSON body, when the answer was JSON. */
  json: any;
  location: string | undefined;
}

export async function submit(base: string, path: string, opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<Submitted> {
  const res = await get(base + path, { method: opts.method ?? 'POST', headers: opts.headers, body: opts.body });
  let json: any;
  try {
    json = JSON.parse(res.text);
  } catch {
    json = undefined;
  }
  const location = res.headers['location'];
  return { ...res, json, location: typeof location === 'string' ? location : undefined };
}

export async function status(base: string, location: string, waitSeconds = 0) {
  const res = await get(base + location + (waitSeconds > 0 ? `?wait=${waitSeconds}` : ''));
  return { ...res, json: res.text ? JSON.parse(res.text) : undefined };
}

/** Long-polls a job until it is finished; returns the final status answer (303 when succeeded). */
export async function waitFinal(base: string, location: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const res = await status(base, location, 5);
    if (res.status === 303 || (res.status === 200 && FINAL.has(res.json.state))) return res;
    if (res.status !== 200) throw new Error(`unexpected status ${res.status}: ${res.text}`);
  }
  throw new Error(`job ${location} did not finish within ${timeoutMs}ms`);
}

/** Polls a job until it is in `state` (e.g. running). */
export async function waitState(base: string, location: string, state: string, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const res = await status(base, location);
    if (res.json?.state === state) return res;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`job ${location} did not reach ${state} within ${timeoutMs}ms`);
}

/** How many times the backend started a request carrying this Idempotency-Key (jobs send their id when the client sent none). */
export function callsWithKey(be: TestBackend, key: string): number {
  return be.stats().idempotency_keys.filter((k) => k === key).length;
}
