// Jobs on the admin server: a `jobs` section in /status (counts by state, the oldest queued
// job's age) and GET /jobs?state=queued&limit=100, which lists jobs newest first. The admin
// port is loopback-only by default, so full job ids (the capabilities) may appear here.
import type { AdminServer } from './admin-server.js';
import { sendJson } from './admin-server.js';
import type { JobApi } from '../jobs/api.js';
import { isJobState, JOB_STATES, type JobRecord } from '../jobs/types.js';

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

export function registerJobsAdmin(admin: AdminServer, jobs: JobApi): void {
  admin.statusSection('jobs', () => jobs.stats());
  admin.route('GET', '/jobs', async (_req, res, url) => {
    const state = url.searchParams.get('state') ?? undefined;
    if (state !== undefined && !isJobState(state)) {
      sendJson(res, 400, { error: { code: 'bad_request', message: `state must be one of ${JOB_STATES.join(', ')}` } });
      return;
    }
    const limitParam = url.searchParams.get('limit');
    const limit = limitParam === null ? DEFAULT_LIMIT : Number(limitParam);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
      sendJson(res, 400, { error: { code: 'bad_request', message: `limit must be a whole number from 1 to ${MAX_LIMIT}` } });
      return;
    }
    const list = await jobs.list(state, limit);
    sendJson(res, 200, { state: state ?? null, count: list.length, jobs: list.map(listEntry) });
  });
}

function listEntry(job: JobRecord): Record<string, unknown> {
  return {
    id: job.id,
    route: job.route,
    state: job.state,
    method: job.method,
    path: job.target,
    attempts: job.attempts,
    idempotency_key: job.idempotencyKey,
    created_at: new Date(job.createdAt).toISOString(),
    started_at: job.startedAt === null ? null : new Date(job.startedAt).toISOString(),
    finished_at: job.finishedAt === null ? null : new Date(job.finishedAt).toISOString(),
    error: job.error,
  };
}
