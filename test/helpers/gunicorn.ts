// Real Gunicorn for tests: examples/flask-gunicorn (10 workers x 5 gthread threads, as
// shipped) on a free port. run.sh installs Debian's gunicorn and python3-flask when they
// are missing; .ci/run installs them up front.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';

const RUN_SH = resolve(import.meta.dirname, '../../examples/flask-gunicorn/run.sh');

export interface RunningGunicorn {
  url: string;
  stats(): Promise<{ inflight_now: number; inflight_max: number; total: number; abandoned: number }>;
  resetStats(): Promise<void>;
  close(): Promise<void>;
}

/** Starts the Flask example under Gunicorn; `args` are extra Gunicorn flags, `env` app settings. */
export async function startGunicorn(args: string[] = [], env: Record<string, string> = {}): Promise<RunningGunicorn> {
  // Port 0: the master binds once and every worker inherits that socket.
  const child = spawn('sh', [RUN_SH, ...args], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let log = '';
  child.stdout!.on('data', (d: Buffer) => { log += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { log += d.toString(); });
  const exited = once(child, 'exit');
  const deadline = Date.now() + 180_000; // the first run may install packages with apt-get
  let url: string | undefined;
  while (!url) {
    url = /Listening at: (http:\/\/127\.0\.0\.1:\d+)/.exec(log)?.[1];
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`gunicorn did not start:\n${log}`);
    if (!url) await new Promise((r) => setTimeout(r, 50));
  }
  const base = url;
  // Every worker must be up before a test counts slots: wait for all 10 boot lines.
  while ((log.match(/Booting worker/g) ?? []).length < 10 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return {
    url: base,
    stats: async () => (await fetch(`${base}/stats`)).json(),
    resetStats: async () => { await fetch(`${base}/stats/reset`, { method: 'POST' }); },
    async close() {
      if (child.exitCode !== null) return;
      process.kill(-child.pid!, 'SIGTERM');
      await exited;
    },
  };
}
