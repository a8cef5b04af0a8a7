import type { CompiledRoute } from '../config/compile.js';

/** First match wins, in config order; the compiled list always ends with a catch-all. */
export function findRoute(routes: readonly CompiledRoute[], method: string, pathname: string): CompiledRoute | undefined {
  for (const route of routes) {
    if (route.methods && !route.methods.has(method)) continue;
    if (route.pathRegex.test(pathname)) return route;
  }
  return undefined;
}
