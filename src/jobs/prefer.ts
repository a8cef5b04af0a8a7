// RFC 7240 `Prefer` as far as jobs need it: `respond-async` and `wait=N`. Preferences are
// hints; anything unparsable is ignored rather than refused (RFC 7240 §2).
import type { HeaderMap } from '../http/headers.js';

export interface AsyncPreference {
  readonly respondAsync: boolean;
  /** Seconds from `wait=N`, when given. */
  readonly waitSeconds: number | undefined;
}

const MAX_WAIT_SECONDS = 24 * 3600;

export function parsePrefer(header: string | string[] | undefined): AsyncPreference {
  let respondAsync = false;
  let waitSeconds: number | undefined;
  for (const token of preferenceTokens(header)) {
    const [name, value] = token;
    if (name === 'respond-async') respondAsync = true;
    // First occurrence wins (RFC 7240 §2).
    if (name === 'wait' && waitSeconds === undefined && value !== undefined && /^\d+$/.test(value)) {
      waitSeconds = Math.min(Number(value), MAX_WAIT_SECONDS);
    }
  }
  return { respondAsync, waitSeconds };
}

/** The Prefer header without the preferences Sluice honours itself, for the backend; undefined when nothing is left. */
export function withoutAsyncPreferences(header: string | string[] | undefined): string | undefined {
  const kept = [header].flat()
    .flatMap((h) => (h ?? '').split(','))
    .map((p) => p.trim())
    .filter((p) => p.length > 0 && !['respond-async', 'wait'].includes(preferenceName(p)));
  return kept.length > 0 ? kept.join(', ') : undefined;
}

/** Drops the async preferences from a copy of request headers. */
export function stripAsyncPreferences(headers: HeaderMap): HeaderMap {
  const out = { ...headers };
  const kept = withoutAsyncPreferences(out['prefer']);
  if (kept === undefined) delete out['prefer'];
  else out['prefer'] = kept;
  return out;
}

function* preferenceTokens(header: string | string[] | undefined): Generator<[string, string | undefined]> {
  for (const h of [header].flat()) {
    if (!h) continue;
    for (const part of h.split(',')) {
      const head = part.split(';')[0]!.trim();
      if (!head) continue;
      const eq = head.indexOf('=');
      const name = (eq < 0 ? head : head.slice(0, eq)).trim().toLowerCase();
      const value = eq < 0 ? undefined : head.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
      yield [name, value];
    }
  }
}

function preferenceName(part: string): string {
  return part.split(';')[0]!.split('=')[0]!.trim().toLowerCase();
}
