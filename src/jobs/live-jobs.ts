// Jobs not yet finished, counted per route and per client, so `job.max_queued` and
// `limits.per_client.max_jobs` can refuse a submission before it is stored. Counts are
// kept in process: jobs resumed from the store after a restart are not counted.
export class LiveJobs {
  private readonly jobs = new Map<string, { route: string; client: string }>();
  private readonly byRoute = new Map<string, number>();
  private readonly byClient = new Map<string, number>();

  add(id: string, route: string, client: string): void {
    if (this.jobs.has(id)) return;
    this.jobs.set(id, { route, client });
    bump(this.byRoute, route, 1);
    bump(this.byClient, client, 1);
  }

  /** The job finished, was canceled or is gone. */
  remove(id: string): void {
    const job = this.jobs.get(id);
    if (!job) return;
    this.jobs.delete(id);
    bump(this.byRoute, job.route, -1);
    bump(this.byClient, job.client, -1);
  }

  has(id: string): boolean {
    return this.jobs.has(id);
  }

  ofRoute(route: string): number {
    return this.byRoute.get(route) ?? 0;
  }

  ofClient(client: string): number {
    return this.byClient.get(client) ?? 0;
  }
}

function bump(counts: Map<string, number>, key: string, by: number): void {
  const next = (counts.get(key) ?? 0) + by;
  if (next <= 0) counts.delete(key);
  else counts.set(key, next);
}
