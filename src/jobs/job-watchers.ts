// Clients waiting for a job to change (long polls on its status resource), by job id. The
// in-process job service and the Redis one (cluster/bull-jobs.ts) both keep them here and
// wake them whenever a job changes.
export class JobWatchers {
  private readonly byId = new Map<string, Set<() => void>>();

  /**
   * Resolves once `check` calls `finish`, the time is up or the signal aborts. `check` runs
   * at once (the job may have changed since the caller last looked) and on every wake.
   */
  wait(id: string, timeoutMs: number, signal: AbortSignal, check: (finish: () => void) => void): Promise<void> {
    return new Promise<void>((resolve) => {
      const listeners = this.byId.get(id) ?? new Set<() => void>();
      this.byId.set(id, listeners);
      const finish = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', finish);
        listeners.delete(listener);
        if (listeners.size === 0) this.byId.delete(id);
        resolve();
      };
      const listener = () => check(finish);
      const timer = setTimeout(finish, timeoutMs);
      signal.addEventListener('abort', finish, { once: true });
      listeners.add(listener);
      listener();
    });
  }

  /** The job changed: every waiter on it looks again. */
  wake(id: string): void {
    for (const listener of [...(this.byId.get(id) ?? [])]) listener();
  }

  /** Ids someone is waiting on (a snapshot). */
  ids(): string[] {
    return [...this.byId.keys()];
  }
}
