import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** A server the bench started as a child process. */
export interface ChildServer {
  name: string;
  pid: number;
  /** The first URL matched by the ready pattern. */
  url: string;
  /** Every stdout line seen before ready (other URLs, e.g. the admin one, are in here). */
  startupLines: string[];
  stop(): Promise<void>;
}

export interface SpawnOptions {
  name: string;
  args: string[];
  /** Options for node itself, before the script (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** First capture group is the URL; the server counts as ready when it matches. */
  ready: RegExp;
  /** Also wait for this line (e.g. the admin URL) before calling the server ready. */
  alsoWaitFor?: RegExp;
  timeoutMs?: number;
}

const STDERR_TAIL = 40;

/**
 * Owns the children of one bench run: every child is killed when the group is
 * closed, and also (SIGKILL) if this process exits without closing it.
 */
export class ProcessGroup {
  private readonly children = new Set<ChildProcess>();
  private readonly onExit = (): void => {
    for (const c of this.children) c.kill('SIGKILL');
  };

  constructor() {
    process.on('exit', this.onExit);
  }

  async spawnServer(opts: SpawnOptions): Promise<ChildServer> {
    const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), ...opts.args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    const stderr: string[] = [];
    createInterface({ input: child.stderr! }).on('line', (l) => {
      stderr.push(l);
      if (stderr.length > STDERR_TAIL) stderr.shift();
    });
    try {
      const { url, lines } = await waitReady(child, opts, stderr);
      return { name: opts.name, pid: child.pid ?? -1, url, startupLines: lines, stop: () => stopChild(child) };
    } catch (err) {
      await stopChild(child);
      throw err;
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.children].map((c) => stopChild(c)));
    process.off('exit', this.onExit);
  }
}

function waitReady(child: ChildProcess, opts: SpawnOptions, stderr: string[]): Promise<{ url: string; lines: string[] }> {
  return new Promise((resolve, reject) => {
    const lines: string[] = [];
    let url: string | undefined;
    let extraSeen = opts.alsoWaitFor === undefined;
    const fail = (why: string): void => {
      clearTimeout(timer);
      reject(new Error(`${opts.name}: ${why}\n  ${stderr.slice(-10).join('\n  ')}`));
    };
    const timer = setTimeout(() => fail(`not ready after ${opts.timeoutMs ?? 15_000} ms`), opts.timeoutMs ?? 15_000);
    child.once('exit', (code, signal) => fail(`exited before ready (code ${code}, signal ${signal})`));
    child.once('error', (err) => fail(`failed to start: ${err.message}`));
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      if (lines.length < 100) lines.push(line);
      url ??= opts.ready.exec(line)?.[1];
      if (opts.alsoWaitFor?.test(line)) extraSeen = true;
      if (url !== undefined && extraSeen) {
        clearTimeout(timer);
        resolve({ url, lines });
      }
    });
    // Keep draining stdout after ready so a chatty child never blocks on a full pipe.
    child.stdout!.resume();
  });
}

/** SIGTERM, then SIGKILL if the child has not exited within the grace period. */
async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
