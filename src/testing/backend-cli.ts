// `sluice backend`: runs the test backend from the command line.
import type { EventEmitter } from 'node:events';
import { parseArgs } from 'node:util';
import { parseDuration } from '../config/units.js';
import { type TestBackendOptions, startTestBackend } from './backend.js';

export const BACKEND_USAGE = `Usage: sluice backend [options]

A test backend that behaves like a Flask app under Gunicorn sync/gthread workers:
at most --slots requests run at once, the rest wait FIFO and still run after their
client has gone (counted as "abandoned" in /stats).

Options:
  --host HOST              address to bind (default 127.0.0.1)
  --port PORT              port, 0 picks a free one (default 8000)
  --model KIND             semaphore (default): one global FIFO of --slots requests;
                           gthread: Gunicorn's gthread worker, each connection bound
                           to one worker at accept, --threads requests per worker
  --slots N                requests running at once, semaphore model (default 50)
  --workers N              gthread: worker processes (default 10)
  --threads N              gthread: threads per worker (default 5)
  --worker-connections N   gthread: connections one worker accepts (default 1000)
  --keepalive DURATION     idle keep-alive connections close after this (default 2s
                           for gthread, as Gunicorn; 5s for semaphore, Node's default)
  --latency DURATION       compute time of /api requests: 100ms, 2s or ms (default 100ms)
  --report-latency DUR     compute time of POST /api/reports (default 2s)
  --error-rate R           fraction 0..1 of /api requests answering 500 (default 0)
  --stall-rate R           fraction 0..1 of /api requests that stall (default 0)
  --stall-ms DURATION      extra time a stalled request takes (default 5000ms)
  -h, --help               show this help

Endpoints:
  GET|HEAD /api/items/:id   cacheable (max-age=5, strong ETag, 304 on If-None-Match)
  GET /api/live/:id         no-store, per-request counter
  POST /api/reports         slow (--report-latency), 201 with body sha256 and Idempotency-Key
  POST /api/upload          {bytes, sha256} of the body
  ANY /api/echo             method, path, query, headers and body digest
  GET /health, GET /stats, POST /stats/reset   (no slot taken, not counted)

Query overrides on any /api endpoint:
  ms=N status=N bytes=N cache_control=... vary=Header-Name set_cookie=1 etag=...
  last_modified=1
`;

export type ParsedBackendArgs =
  | { kind: 'help' }
  | { kind: 'error'; message: string }
  | { kind: 'run'; options: Required<Omit<TestBackendOptions, 'onRequest'>> };

/** Parses a duration as the config file does (`250ms`, `2s`, `1.5s`, `1m`); a bare number is milliseconds. */
export function parseDurationMs(raw: string): number | null {
  const ms = parseDuration(/^\s*\d+(?:\.\d+)?\s*$/.test(raw) ? `${raw.trim()}ms` : raw);
  return typeof ms === 'number' ? ms : null;
}

function parseIntIn(raw: string, name: string, min: number, max: number): number {
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new Error(`--${name} must be an integer within ${min}..${max}, got "${raw}"`);
  }
  return Number(raw);
}

function parseRate(raw: string, name: string): number {
  const n = Number(raw);
  if (raw.trim() === '' || !(n >= 0 && n <= 1)) throw new Error(`--${name} must be a number within 0..1, got "${raw}"`);
  return n;
}

function durationFlag(raw: string, name: string): number {
  const ms = parseDurationMs(raw);
  if (ms === null) throw new Error(`--${name} must be a duration like 100ms, 2s or a number of ms, got "${raw}"`);
  return ms;
}

export function parseBackendArgs(argv: string[]): ParsedBackendArgs {
  try {
    const { values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        host: { type: 'string' },
        port: { type: 'string' },
        slots: { type: 'string' },
        model: { type: 'string' },
        workers: { type: 'string' },
        threads: { type: 'string' },
        'worker-connections': { type: 'string' },
        keepalive: { type: 'string' },
        latency: { type: 'string' },
        'report-latency': { type: 'string' },
        'error-rate': { type: 'string' },
        'stall-rate': { type: 'string' },
        'stall-ms': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) return { kind: 'help' };
    const model = values.model ?? 'semaphore';
    if (model !== 'semaphore' && model !== 'gthread') throw new Error(`--model must be semaphore or gthread, got "${model}"`);
    const workers = parseIntIn(values.workers ?? '10', 'workers', 1, 10_000);
    const threads = parseIntIn(values.threads ?? '5', 'threads', 1, 10_000);
    return {
      kind: 'run',
      options: {
        host: values.host ?? '127.0.0.1',
        port: parseIntIn(values.port ?? '8000', 'port', 0, 65535),
        slots: model === 'gthread' ? workers * threads : parseIntIn(values.slots ?? '50', 'slots', 1, 100_000),
        model,
        workers,
        threads,
        workerConnections: parseIntIn(values['worker-connections'] ?? '1000', 'worker-connections', 1, 1_000_000),
        keepaliveMs: durationFlag(values.keepalive ?? (model === 'gthread' ? '2s' : '5s'), 'keepalive'),
        latencyMs: durationFlag(values.latency ?? '100ms', 'latency'),
        reportLatencyMs: durationFlag(values['report-latency'] ?? '2s', 'report-latency'),
        errorRate: parseRate(values['error-rate'] ?? '0', 'error-rate'),
        stallRate: parseRate(values['stall-rate'] ?? '0', 'stall-rate'),
        stallMs: durationFlag(values['stall-ms'] ?? '5000', 'stall-ms'),
      },
    };
  } catch (err) {
    return { kind: 'error', message: (err as Error).message };
  }
}

/** Injection points for tests; the defaults are the real process. */
export interface BackendCommandIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
  signals: Pick<EventEmitter, 'once' | 'off'>;
}

/**
 * Runs until SIGTERM/SIGINT, then closes the backend and resolves with exitCode 0.
 * Resolves at once for --help and for bad arguments (exitCode 2).
 */
export async function runBackendCommand(argv: string[], io?: Partial<BackendCommandIo>): Promise<void> {
  const stdout = io?.stdout ?? process.stdout;
  const stderr = io?.stderr ?? process.stderr;
  const signals = io?.signals ?? process;
  const parsed = parseBackendArgs(argv);
  if (parsed.kind === 'help') {
    stdout.write(BACKEND_USAGE);
    return;
  }
  if (parsed.kind === 'error') {
    stderr.write(`sluice backend: ${parsed.message}\n\n${BACKEND_USAGE}`);
    process.exitCode = 2;
    return;
  }
  const o = parsed.options;
  let backend;
  try {
    backend = await startTestBackend(o);
  } catch (err) {
    stderr.write(`sluice backend: cannot listen on ${o.host}:${o.port}: ${(err as Error).message}\n`);
    process.exitCode = 1;
    return;
  }
  const shownHost = o.host.includes(':') ? `[${o.host}]` : o.host;
  const shape = o.model === 'gthread' ? `gthread ${o.workers}x${o.threads}` : `slots=${o.slots}`;
  stdout.write(`sluice test backend listening on http://${shownHost}:${backend.port} (${shape}, latency=${o.latencyMs}ms)\n`);

  await new Promise<void>((resolve) => {
    const stop = (): void => {
      signals.off('SIGTERM', stop);
      signals.off('SIGINT', stop);
      resolve();
    };
    signals.once('SIGTERM', stop);
    signals.once('SIGINT', stop);
  });
  // close() destroys open connections and aborts sleeping handlers, so nothing keeps
  // the event loop alive afterwards and the process exits with this code.
  await backend.close();
  process.exitCode = 0;
}
