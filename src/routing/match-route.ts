import type { CompiledRoute } from '../config/compile.js';

/** The route that takes a request, or the methods its path allows when none does. */
export type RouteLookup =
  | { readonly route: CompiledRoute; readonly allow?: undefined }
  | { readonly route?: undefined; readonly allow: readonly string[] };

/**
 * First match wins, in config order, on the decoded path (ctx.matchPath). A route with
 * `methods` owns its path: a method it does not list is refused (405 + Allow) unless a later
 * route with the same `match.path` takes it, or the route says `fallthrough: true`. Deny
 * routes narrow what they deny, so other methods always go on. The compiled list ends
 * with a catch-all, so without such a refusal there is always a route.
 */
export function resolveRoute(routes: readonly CompiledRoute[], method: string, path: string): RouteLookup | undefined {
  let owner: { pattern: string; allow: Set<string> } | undefined;
  for (const route of routes) {
    if (owner && route.pathPattern !== owner.pattern) continue;
    if (!route.pathRegex.test(path)) continue;
    if (route.methods && !route.methods.has(method)) {
      if (!route.fallthrough && !route.deny) {
        owner ??= { pattern: route.pathPattern, allow: new Set() };
        for (const allowed of route.methods) owner.allow.add(allowed);
      }
      continue;
    }
    return { route };
  }
  return owner ? { allow: [...owner.allow] } : undefined;
}

export function findRoute(routes: readonly CompiledRoute[], method: string, path: string): CompiledRoute | undefined {
  return resolveRoute(routes, method, path)?.route;
}
