// Per-connection and per-client limits of the gateway port. One client must not take the
// queue or the sockets from everyone else:
// - pipelining: at most `pipeline_depth` requests of one connection are in progress; later
//   ones wait here, unread, in order (their answers could not be sent before the earlier
//   ones anyway), and the socket is paused so the client's next bytes stay in TCP buffers;
// - a closed connection aborts every request it carried, including pipelined ones whose
//   responses never started (node:http emits 'close' only on the response being written);
// - `per_client.max_connections` counts sockets per peer address (a trusted proxy is many
//   clients, so it is not counted).
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { setMaxListeners } from 'node:events';
import { errorBody, SluiceError } from '../errors.js';
import { plainAddress } from './cidr.js';

export interface ConnectionLimits {
  readonly pipelineDepth: number;
  readonly perClientConnections: number;
  /** Peers exempt from per-client connection counting (trusted proxies). */
  readonly exempt: (address: string) => boolean;
}

interface ConnectionState {
  active: number;
  readonly held: Array<() => void>;
  /** Aborted when the socket closes. */
  readonly closed: AbortController;
  pausedByUs: boolean;
}

export type StartRequest = (connectionClosed: AbortSignal) => Promise<void>;

export class ConnectionGuard {
  private readonly states = new WeakMap<Socket, ConnectionState>();
  private readonly perClient = new Map<string, number>();

  constructor(private readonly limits: ConnectionLimits) {}

  /** Call on 'connection'; refuses (429, closed) a client over its connection limit. */
  accept(socket: Socket): void {
    const closed = new AbortController();
    // One listener per request in progress on this connection, at most pipeline_depth.
    setMaxListeners(this.limits.pipelineDepth + 10, closed.signal);
    const state: ConnectionState = { active: 0, held: [], closed, pausedByUs: false };
    this.states.set(socket, state);
    const address = plainAddress(socket.remoteAddress ?? 'unknown');
    const counted = this.limits.perClientConnections > 0 && !this.limits.exempt(address);
    if (counted) {
      const open = (this.perClient.get(address) ?? 0) + 1;
      this.perClient.set(address, open);
      if (open > this.limits.perClientConnections) {
        closed.abort(new SluiceError('client_limit'));
        refuse(socket, this.limits.perClientConnections);
      }
    }
    socket.once('close', () => {
      state.held.length = 0;
      closed.abort(new SluiceError('client_closed', 'connection closed'));
      if (counted) {
        const left = (this.perClient.get(address) ?? 1) - 1;
        if (left <= 0) this.perClient.delete(address);
        else this.perClient.set(address, left);
      }
    });
  }

  /** Runs `start` now, or once an earlier request of the same connection has finished. */
  run(req: IncomingMessage, start: StartRequest): void {
    const socket = req.socket;
    let state = this.states.get(socket);
    if (!state) {
      this.accept(socket);
      state = this.states.get(socket)!;
    }
    const s = state;
    const begin = () => {
      s.active++;
      start(s.closed.signal).finally(() => {
        s.active--;
        const next = s.held.shift();
        if (next) next();
        else if (s.pausedByUs) {
          s.pausedByUs = false;
          socket.resume();
        }
      });
    };
    if (s.closed.signal.aborted) return;
    if (s.active < this.limits.pipelineDepth) {
      begin();
      return;
    }
    s.held.push(begin);
    if (!s.pausedByUs) {
      s.pausedByUs = true;
      socket.pause();
    }
  }
}

function refuse(socket: Socket, limit: number): void {
  const error = new SluiceError('client_limit', `${limit} connections per client (limits.per_client.max_connections)`);
  const body = errorBody(error, '-');
  socket.end(
    `HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
    `X-Sluice-Error: client_limit\r\nRetry-After: 1\r\nConnection: close\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}

/** Checks of a parsed request head that node:http does not make. */
export function headProblem(req: IncomingMessage, maxHeaderCount: number): SluiceError | undefined {
  const lines = req.rawHeaders.length / 2;
  if (lines > maxHeaderCount) return new SluiceError('headers_too_large', `${lines} header lines, limits.max_header_count is ${maxHeaderCount}`);
  let hosts = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]!.length === 4 && req.rawHeaders[i]!.toLowerCase() === 'host') hosts++;
  }
  // RFC 9112 §3.2: a request with more than one Host is invalid; proxies disagree on which counts.
  if (hosts > 1) return new SluiceError('bad_request', 'more than one Host header');
  return undefined;
}
