// The durable half of long jobs. Every method is synchronous and each write is one
// transaction, so "the job is stored" is a fact by the time a method returns (the SQLite
// store commits with synchronous=FULL). The runner and the resources hold no job state
// that the store does not also hold, except which queued jobs are waiting for a slot.
//
// Every state change is conditional on the state it leaves (queued -> running only if
// still queued, running -> anything only if still running), so a cancel racing a finishing
// attempt has exactly one winner.
import type { AttemptEnd, JobRecord, JobState, NewJob, StoredRequest, StoredResult } from './types.js';

export interface JobStore {
  readonly kind: 'sqlite' | 'memory';
  /**
   * Stores a new job, unless a live job of the same route already holds its Idempotency-Key:
   * then that job is returned and nothing is written.
   */
  insert(job: NewJob, now: number): { job: JobRecord; created: boolean };
  /** The live job of a route that holds an Idempotency-Key. */
  findByKey(route: string, key: string, now: number): JobRecord | undefined;
  /** An expired job reads as absent even before the sweeper has deleted it. */
  get(id: string, now: number): JobRecord | undefined;
  /** queued -> running, counting an attempt; undefined when the job is no longer queued. */
  startAttempt(id: string, at: number): StoredRequest | undefined;
  /** running -> the attempt's end state; false when the job is no longer running. */
  endAttempt(id: string, end: AttemptEnd): boolean;
  /** queued or running -> canceled; returns the state it left, or undefined if it was neither. */
  cancel(id: string, at: number, expiresAt: number): JobState | undefined;
  delete(id: string): boolean;
  result(id: string, now: number): StoredResult | undefined;
  /** The oldest queued, due job of a route that is not in `exclude` (jobs already claimed). */
  nextDue(route: string, exclude: ReadonlySet<string>, now: number): JobRecord | undefined;
  /** When the next queued job of a route that is in backoff becomes due. */
  nextWakeAt(route: string, now: number): number | undefined;
  /** 1-based place among the queued jobs of its route. */
  position(job: JobRecord): number;
  queuedRoutes(): string[];
  /** Newest first; with a state, only that state. */
  list(filter: { state?: JobState | undefined; limit: number }, now: number): JobRecord[];
  countByState(now: number): Record<JobState, number>;
  oldestQueuedAt(): number | undefined;
  /** Jobs in `running`: at start-up, the ones a previous process did not finish. */
  running(): JobRecord[];
  deleteExpired(now: number): number;
  close(): void;
}
