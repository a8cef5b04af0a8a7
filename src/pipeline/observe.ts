// Calls every observer; one that throws is a bug in the observer and must not cost the
// request its answer or its backend call (see deps.ts).
import type { RequestObserver } from './deps.js';

export function observe(observers: readonly RequestObserver[], call: (observer: RequestObserver) => void): void {
  for (const observer of observers) {
    try {
      call(observer);
    } catch {
      // Deliberately ignored: see above.
    }
  }
}
