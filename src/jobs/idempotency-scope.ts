// An Idempotency-Key names a request of one caller, not a global slot: two callers who pick
// the same key (or one who guesses another's) must not get each other's job. The stored key
// is therefore prefixed with a hash of the caller's credentials (job.idempotency_scope,
// Authorization and Cookie by default); keys are already per route in the store.
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export function scopedIdempotencyKey(key: string | undefined, headers: IncomingHttpHeaders, scope: readonly string[]): string | undefined {
  if (key === undefined) return undefined;
  const hash = createHash('sha256');
  for (const name of scope) {
    const value = headers[name.toLowerCase()];
    hash.update(`${name.toLowerCase()}\n${[value].flat().filter((v) => v !== undefined).join('\n')}\n\n`);
  }
  return `${hash.digest('base64url').slice(0, 22)}:${key}`;
}
