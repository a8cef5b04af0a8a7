// Admin views of the read path: purging the cache, and its counters in /status.
//   DELETE /cache                       everything
//   DELETE /cache?path=/api/items/*     entries whose path matches the glob (`*` matches
//                                       anything, `/` included); a glob with `?` is matched
//                                       against path and query, otherwise against the path
import { globToRegex } from '../config/compile.js';
import type { ResponseCache } from '../cache/response-cache.js';
import type { Coalescer } from '../coalesce/coalescer.js';
import { sendJson, type AdminServer } from './admin-server.js';

export function registerCacheAdmin(admin: AdminServer, cache: ResponseCache, coalescer: Pick<Coalescer<unknown>, 'stats'>): void {
  admin.route('DELETE', '/cache', (_req, res, url) => {
    const glob = url.searchParams.get('path');
    if (glob !== null && !glob.startsWith('/')) {
      sendJson(res, 400, { error: { code: 'bad_request', message: 'path must be a glob starting with /' } });
      return;
    }
    const purged = cache.purge(glob === null ? undefined : targetMatcher(glob));
    sendJson(res, 200, { purged, path: glob ?? '*' });
  });
  admin.statusSection('cache', () => cache.stats());
  admin.statusSection('coalesce', () => coalescer.stats());
}

function targetMatcher(glob: string): (target: string) => boolean {
  const pattern = globToRegex(glob);
  const withQuery = glob.includes('?');
  return (target) => pattern.test(withQuery ? target : target.split('?', 1)[0]!);
}
