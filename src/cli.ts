#!/usr/bin/env node
// The `sluice` command. Parses argv only; each subcommand lives in its own module.
import './heap-policy.js';
import { parseArgs } from 'node:util';
import { compileConfig } from './config/compile.js';
import { ConfigError, loadConfigFile } from './config/load.js';

const HELP = `sluice - a gateway for slow synchronous backends

Usage:
  sluice start [--config FILE] [--backend URL] [--slots N] [--port P] [--admin-port P] [--host H] [--compact-heap]
      Run the gateway. Quick flags need no file; with --config they override the file.
      SIGHUP (or POST /reload on the admin port) re-reads the file; an invalid one is refused.
  sluice check --config FILE
      Validate a config file; prints file:line:col: message and exits 2 when invalid.
  sluice backend [--port 8000] [--slots 50] [--model semaphore|gthread] [--latency 100ms] ...
      Run the test backend, which behaves like Gunicorn: N slots, or gthread's workers x
      threads with connections bound to a worker (see sluice backend --help).
  sluice calibrate --url URL [--max N] [--expect N] [--step 3s]
      Measure how many requests a backend really runs at once; recommends a slot count.
  sluice bench [scenario...] [--quick] [--backend test|gthread|gunicorn]
      Run the benchmark scenarios, direct vs the Node floor vs Sluice; results go to bench/results/.
  sluice --help | --version
Every command takes --help.

Defaults: gateway 0.0.0.0:8080, admin 127.0.0.1:9090, test backend 127.0.0.1:8000.
Exit codes: 0 ok, 1 runtime failure, 2 invalid configuration or arguments.
`;

const START_HELP = `Usage: sluice start [--config FILE] [--backend URL] [--slots N] [--port P] [--admin-port P] [--host H] [--compact-heap]

Runs the gateway until SIGTERM or SIGINT, then drains within shutdown.grace and exits 0
(a second signal exits at once). SIGHUP (or POST /reload on the admin port) re-reads
--config FILE: a valid file applies to new requests, an invalid one is refused and the
running config stays. Without --config, SIGHUP is logged and ignored.

Options:
  -c, --config FILE     YAML config (see config/sluice.yaml); the flags below override it
  --backend URL         the backend server, e.g. http://127.0.0.1:8000 (replaces backend.servers)
  --slots N             requests the backend runs at once, workers x threads (default 50)
  --port P              gateway port (default 8080; 0 picks a free one)
  --host H              gateway address (default 0.0.0.0)
  --admin-port P        admin port, always on 127.0.0.1 unless admin.host says otherwise (default 9090)
  --compact-heap        keep V8's heap near its live size: ~40% less memory with 10,000 idle
                        keep-alive clients, 15-25% less peak throughput
  -h, --help            show this help

Without --config, --backend is required and jobs are kept in memory (lost on restart);
use a config file with jobs.path for a durable job store.
Exit codes: 0 after a clean shutdown, 1 runtime failure (e.g. port in use), 2 invalid
configuration or arguments.
`;

const CHECK_HELP = `Usage: sluice check [--config FILE]

Validates a config file (default config/sluice.yaml) with the environment of this shell
(\${VAR} references are resolved). Prints "FILE: ok (...)" and exits 0, or prints one
line per problem as file:line:col: message and exits 2.

Options:
  -c, --config FILE     the file to check
  -h, --help            show this help
`;

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(HELP);
      return;
    case '--version':
      process.stdout.write('sluice 0.1.0\n');
      return;
    case 'start':
      // Loaded after heap-policy.js has set the heap flags, so the app's modules load under them.
      return (await import('./main.js')).startCommand(parseStartFlags(rest));
    case 'check':
      return checkCommand(rest);
    case 'backend': {
      const { runBackendCommand } = await import('./testing/backend-cli.js');
      return runBackendCommand(rest);
    }
    case 'calibrate': {
      const { runCalibrateCommand } = await import('./calibrate/calibrate-cli.js');
      return runCalibrateCommand(rest);
    }
    case 'bench': {
      const { runBenchCommand } = await import('../bench/run.js');
      return runBenchCommand(rest);
    }
    default:
      usageError(`unknown command "${command}"`);
  }
}

function parseStartFlags(args: string[]) {
  const { values } = parseOrExit(args, START_HELP, {
    config: { type: 'string', short: 'c' },
    backend: { type: 'string' },
    slots: { type: 'string' },
    port: { type: 'string' },
    'admin-port': { type: 'string' },
    host: { type: 'string' },
    // Read by heap-policy.js before anything loads; accepted here so it is not refused.
    'compact-heap': { type: 'boolean' },
  });
  return {
    config: values.config as string | undefined,
    backend: values.backend as string | undefined,
    slots: integerFlag('slots', values.slots),
    port: integerFlag('port', values.port),
    adminPort: integerFlag('admin-port', values['admin-port']),
    host: values.host as string | undefined,
  };
}

function checkCommand(args: string[]): void {
  const { values } = parseOrExit(args, CHECK_HELP, { config: { type: 'string', short: 'c' } });
  const file = (values.config as string | undefined) ?? 'config/sluice.yaml';
  try {
    const compiled = compileConfig(loadConfigFile(file, process.env));
    const slots = compiled.raw.backend.servers.reduce((sum, s) => sum + s.slots, 0);
    process.stdout.write(`${file}: ok (${compiled.routes.length} routes, ${slots} backend slots)\n`);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
}

type FlagSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;

function parseOrExit(args: string[], help: string, options: FlagSpec) {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(help);
    process.exit(0);
  }
  try {
    return parseArgs({ args, options, allowPositionals: false, strict: true });
  } catch (err) {
    return usageError((err as Error).message);
  }
}

function integerFlag(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) usageError(`--${name} must be a non-negative integer, got "${String(value)}"`);
  return n;
}

function usageError(message: string): never {
  process.stderr.write(`sluice: ${message}\nRun "sluice --help" for usage.\n`);
  process.exit(2);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`sluice: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
