// POST /reload on the admin server (SIGHUP does the same through `sluice start`): re-reads
// and validates the config file; a valid one applies to new requests, an invalid one is
// refused with its file:line:col problems and the running config stays.
import { ConfigError } from '../config/load.js';
import type { SluiceConfig } from '../config/schema.js';
import type { ReloadOutcome } from '../app-reload.js';
import { sendJson, type AdminServer } from './admin-server.js';

export type ReloadResult =
  | { readonly ok: true; readonly outcome: ReloadOutcome }
  | { readonly ok: false; readonly problems: readonly string[] };

/** Reads the source and applies it; never throws for a bad config. */
export function reloadFrom(source: () => SluiceConfig, apply: (next: SluiceConfig) => ReloadOutcome): ReloadResult {
  let next: SluiceConfig;
  try {
    next = source();
  } catch (err) {
    if (err instanceof ConfigError) return { ok: false, problems: err.problems };
    return { ok: false, problems: [String(err)] };
  }
  return { ok: true, outcome: apply(next) };
}

export function registerReloadAdmin(
  admin: AdminServer,
  source: (() => SluiceConfig) | undefined,
  apply: (next: SluiceConfig) => ReloadOutcome,
  warn: (message: string) => void,
): void {
  admin.route('POST', '/reload', (_req, res) => {
    if (!source) {
      sendJson(res, 409, { error: { code: 'reload_unavailable', message: 'Sluice was started without a config file to re-read' } });
      return;
    }
    const result = reloadFrom(source, apply);
    if (!result.ok) {
      warn(`reload refused, the running config stays:\n${result.problems.join('\n')}`);
      sendJson(res, 400, { error: { code: 'config_invalid', message: 'the running config stays', problems: result.problems } });
      return;
    }
    const { routes, slots, restartRequired } = result.outcome;
    if (restartRequired.length > 0) warn(`reloaded; these changes need a restart: ${restartRequired.join(', ')}`);
    sendJson(res, 200, { reloaded: true, routes, slots, restart_required: restartRequired });
  });
}
