// The vocabulary of long jobs. A job is a client request that Sluice stored durably and
// runs later on the backend; its state words are used verbatim in the status resource, the
// admin views and the docs.
import type { HeaderMap } from '../http/headers.js';

export const JOB_STATES = ['queued', 'running', 'succeeded', 'failed', 'canceled'] as const;
export type JobState = (typeof JOB_STATES)[number];
export const FINAL_STATES: ReadonlySet<JobState> = new Set(['succeeded', 'failed', 'canceled']);

export function isJobState(value: string): value is JobState {
  return (JOB_STATES as readonly string[]).includes(value);
}

export interface JobError {
  /** A SluiceError code from src/errors.ts. */
  readonly code: string;
  readonly message: string;
}

/** The request as the client sent it, replayed to the backend on every attempt. */
export interface StoredRequest {
  readonly method: string;
  /** Path and query, as received. */
  readonly target: string;
  /** End-to-end client headers (hop-by-hop ones and the async preferences removed). */
  readonly headers: HeaderMap;
  readonly clientAddress: string;
  readonly body: Buffer;
}

/** The backend's answer, kept until the job expires. */
export interface StoredResult {
  readonly status: number;
  readonly headers: HeaderMap;
  readonly body: Buffer;
}

/** A job without its request and result bytes; cheap to read on every poll. */
export interface JobRecord {
  readonly id: string;
  /** Creation order; queued jobs of a route run in this order. */
  readonly seq: number;
  readonly route: string;
  readonly state: JobState;
  readonly method: string;
  readonly target: string;
  readonly idempotencyKey: string | null;
  /** Hash of method, target and body: a reused Idempotency-Key must name the same request. */
  readonly fingerprint: string;
  /** Backend calls started so far. */
  readonly attempts: number;
  readonly createdAt: number;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
  /** A queued job in backoff does not run before this (epoch ms). */
  readonly notBefore: number;
  /** Finished jobs are deleted after this (epoch ms). */
  readonly expiresAt: number | null;
  readonly error: JobError | null;
  readonly hasResult: boolean;
  /** traceparent of the submission span, so attempt spans can link to it (also after a restart). */
  readonly submissionTrace: string | null;
}

export interface NewJob {
  readonly id: string;
  readonly route: string;
  readonly idempotencyKey: string | null;
  readonly fingerprint: string;
  readonly request: StoredRequest;
  readonly createdAt: number;
  readonly submissionTrace: string | null;
}

/** How a running attempt ended, as the store records it. */
export type AttemptEnd =
  | { readonly state: 'succeeded' | 'failed'; readonly at: number; readonly expiresAt: number; readonly error: JobError | null; readonly result: StoredResult | null }
  | { readonly state: 'queued'; readonly notBefore: number; readonly error: JobError };
