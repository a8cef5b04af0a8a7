// `sluice start`: load the config once, build the app, listen, and shut down gracefully on
// SIGTERM/SIGINT (a second signal exits at once). SIGHUP (or POST /reload on the admin
// server) re-reads the file: a valid config applies to new requests, an invalid one is
// reported as file:line:col and the running one stays. SIGHUP never kills the gateway.
import { compileConfig } from './config/compile.js';
import { ConfigError, loadConfigFile, parseConfigObject } from './config/load.js';
import type { SluiceConfig } from './config/schema.js';
import { createApp } from './app.js';
import { reloadFrom } from './admin/reload-admin.js';
import { StartupError } from './errors.js';

export interface StartFlags {
  config?: string | undefined;
  backend?: string | undefined;
  slots?: number | undefined;
  port?: number | undefined;
  adminPort?: number | undefined;
  host?: string | undefined;
}

/** Reads the file (if any) and applies the quick flags on top; throws ConfigError. */
export function resolveConfig(flags: StartFlags, env: NodeJS.ProcessEnv): SluiceConfig {
  const applyFlags = (raw: Record<string, unknown>) => {
    const obj = raw as Record<string, Record<string, unknown>>;
    if (flags.backend !== undefined || flags.slots !== undefined) {
      const backend = (obj.backend ??= {});
      const servers = Array.isArray(backend.servers) ? backend.servers as Record<string, unknown>[] : [];
      const first = { ...(servers[0] ?? {}) };
      if (flags.backend !== undefined) first.url = flags.backend;
      if (flags.slots !== undefined) first.slots = flags.slots;
      first.slots ??= 50;
      backend.servers = flags.backend !== undefined ? [first] : [first, ...servers.slice(1)];
    }
    if (flags.port !== undefined) (obj.listen ??= {}).port = flags.port;
    if (flags.host !== undefined) (obj.listen ??= {}).host = flags.host;
    if (flags.adminPort !== undefined) (obj.admin ??= {}).port = flags.adminPort;
  };
  if (flags.config) return loadConfigFile(flags.config, env, applyFlags);
  if (!flags.backend) throw new ConfigError(['<flags>: give --config FILE, or --backend URL (with --slots N) to run without a file']);
  // Without a file there is no place the operator chose for a job store; a file in the
  // current directory would be shared by every quick-flag instance started there.
  const raw: Record<string, unknown> = { jobs: { store: 'memory' } };
  applyFlags(raw);
  return parseConfigObject(raw);
}

export async function startCommand(flags: StartFlags): Promise<void> {
  let config: SluiceConfig;
  try {
    config = resolveConfig(flags, process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  // The same file and flags as at start; without a file there is nothing to re-read.
  const reloadSource = flags.config ? () => resolveConfig(flags, process.env) : undefined;
  const app = createApp(compileConfig(config), [], { reloadSource });
  const { port, adminPort } = await app.listen().catch((err: unknown) => {
    if (!(err instanceof StartupError)) throw err;
    process.stderr.write(`sluice: ${err.message}\n`);
    process.exit(1);
  });
  const host = config.listen.host === '0.0.0.0' ? '127.0.0.1' : config.listen.host;
  process.stdout.write(`sluice listening on http://${host}:${port} -> ${config.backend.servers.map((s) => `${s.url} (${s.slots} slots)`).join(', ')}\n`);
  if (adminPort !== undefined) process.stdout.write(`sluice admin on http://${config.admin.host}:${adminPort}/status\n`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      process.stderr.write(`sluice: ${signal} again, exiting now\n`);
      process.exit(1);
    }
    stopping = true;
    process.stderr.write(`sluice: ${signal} received, draining (grace ${config.shutdown.grace}ms)\n`);
    app.shutdown().then(({ drained }) => {
      process.stderr.write(drained ? 'sluice: drained, bye\n' : 'sluice: grace period over, remaining requests were refused\n');
      process.exit(0);
    }, (err: unknown) => {
      process.stderr.write(`sluice: shutdown failed: ${String(err)}\n`);
      process.exit(1);
    });
  };
  process.on('SIGHUP', () => {
    if (!reloadSource) {
      process.stderr.write('sluice: SIGHUP ignored, started without --config\n');
      return;
    }
    const result = reloadFrom(reloadSource, (next) => app.reload(next));
    if (!result.ok) {
      process.stderr.write(`sluice: reload refused, the running config stays:\n${result.problems.join('\n')}\n`);
    } else {
      const { routes, slots, restartRequired } = result.outcome;
      process.stderr.write(`sluice: reloaded (${routes} routes, ${slots} slots)${restartRequired.length ? `; needs a restart: ${restartRequired.join(', ')}` : ''}\n`);
    }
  });
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
