// Admin views of the read path: purging the cache, and its counters in /status.
//   DELETE /cache                       everything
//   DELETE /cache?path=/api/items/*     entries whose path matches the glob (`*` matches
//                                       anything, `/` included); a glob with `?` is matched
//                                       against path and query, otherwise against the path
import { globToRegex } from '../config/compile.js';
import type { ResponseCache } from '../cache/response-cache.js';
import type { Coalescer } from '../coalesce/coalescer.js';
import { sendJson, type AdminServer } from './admin-server.js';

/** A purge that also reaches other instances (the shared cache tier); returns how many entries it removed there. */
export type PurgeEverywhere = (glob: string | undefined, matches: ((target: string) => boolean) | undefined) => Promise<number>;

export function registerCacheAdmin(admin: AdminServer, cache: ResponseCache, coalescer: Pick<Coalescer<unknown>, 'stats'>, everywhere?: PurgeEverywhere): void {
  admin.route('DELETE', '/cache', async (_req, res, url) => {
    const glob = url.searchParams.get('path');
    if (glob !== null && !glob.startsWith('/')) {
      sendJson(res, 400, { error: { code: 'bad_request', message: 'path must be a glob starting with /' } });
      return;
    }
    const matcher = glob === null ? undefined : targetMatcher(glob);
    const purged = cache.purge(matcher);
    if (!everywhere) {
      sendJson(res, 200, { purged, path: glob ?? '*' });
      return;
    }
    const shared = await everywhere(glob ?? undefined, matcher).catch(() => null);
    sendJson(res, 200, { purged, shared_purged: shared, path: glob ?? '*' });
  });
  admin.statusSection('cache', () => cache.stats());
  admin.statusSection('coalesce', () => coalescer.stats());
}

export function targetMatcher(glob: string): (target: string) => boolean {
  const pattern = globToRegex(glob);
  const withQuery = glob.includes('?');
  return (target) => pattern.test(withQuery ? target : target.split('?', 1)[0]!);
}
