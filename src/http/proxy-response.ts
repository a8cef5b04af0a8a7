// The answer a request ends with, from the backend, the cache, a coalescing leader or a
// job: what respond.ts writes. A leaf module, so every layer can name it.
import type { Readable } from 'node:stream';
import type { BufferedBody } from './body-buffer.js';
import type { HeaderMap } from './header-map.js';

/** A complete answer, ready to write: from the backend, the cache, a leader or a job. */
export interface ProxyResponse {
  status: number;
  headers: HeaderMap;
  /** Buffered body, or a live stream for routes with stream_response (which holds the slot). */
  body: BufferedBody | Readable;
  /**
   * A stored answer's headers as the client receives them (end-to-end, Via added, no Age):
   * a flat [name, value, name, value...] list, built once per entry and written as it is.
   */
  readonly clientHeaderList?: readonly string[];
  /** With clientHeaderList: the Age to send. */
  readonly ageSec?: number;
}
