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
import { errorBody, SluiceError } from '../errors.js';
import { plainAddress } from './cidr.js';
import { ConnectionClosed } from './connection-closed.js';

export interface ConnectionLimits {
  readonly pipelineDepth: number;
  readonly perClientConnections: number;
  /** Peers exempt from per-client connection counting (trusted proxies). */
  readonly exempt: (address: string) => boolean;
}

/** What a connection holds while requests of it are in progress; an idle connection holds none. */
interface BusyState {
  active: number;
  readonly held: Array<() => void>;
  /** Closed when the socket closes. */
  readonly closed: ConnectionClosed;
  pausedByUs: boolean;
}

export type StartRequest = (connectionClosed: ConnectionClosed) => Promise<void>;

/**
 * Memory contract (thousands of idle keep-alive clients must stay cheap): an idle connection
 * costs Sluice nothing beyond node's own socket. Busy state (a ConnectionClosed, the held
 * queue, one shared 'close' listener) exists only from a request's start until the last
 * request of the connection has finished; per-client counting adds one shared 'close'
 * listener and one Map entry per counted peer address, removed with its last socket.
 */
export class ConnectionGuard {
  private readonly busy = new WeakMap<Socket, BusyState>();
  private readonly perClient = new Map<string, number>();
  /** Shared by every socket (called with the socket as `this`): no closure per connection. */
  private readonly onBusyClose: (this: Socket) => void;
  private readonly onCountedClose: (this: Socket) => void;

  constructor(private readonly limits: ConnectionLimits) {
    const guard = this;
    this.onBusyClose = function onBusyClose(this: Socket) { guard.closeBusy(this); };
    this.onCountedClose = function onCountedClose(this: Socket) { guard.uncount(peerOf(this)); };
  }

  /** Call on 'connection'; refuses (429, closed) a client over its connection limit. */
  accept(socket: Socket): void {
    if (this.limits.perClientConnections <= 0) return;
    const address = peerOf(socket);
    if (this.limits.exempt(address)) return;
    const open = (this.perClient.get(address) ?? 0) + 1;
    this.perClient.set(address, open);
    socket.on('close', this.onCountedClose);
    if (open > this.limits.perClientConnections) {
      // Requests already parsed from a refused connection are never started.
      const state = this.startBusy(socket);
      state.closed.close();
      refuse(socket, this.limits.perClientConnections);
    }
  }

  /** Connections counted against `address` now (per_client.max_connections). */
  connectionsOf(address: string): number {
    return this.perClient.get(address) ?? 0;
  }

  /** Peer addresses with at least one counted connection. */
  get countedClients(): number {
    return this.perClient.size;
  }

  /** Runs `start` now, or once an earlier request of the same connection has finished. */
  run(req: IncomingMessage, start: StartRequest): void {
    const socket = req.socket;
    const s = this.busy.get(socket) ?? (socket.destroyed ? undefined : this.startBusy(socket));
    if (!s || s.closed.closed) return;
    const begin = () => {
      s.active++;
      start(s.closed).finally(() => {
        s.active--;
        const next = s.held.shift();
        if (next) next();
        else if (s.pausedByUs) {
          s.pausedByUs = false;
          socket.resume();
        }
        if (s.active === 0 && s.held.length === 0) this.endBusy(socket, s);
      });
    };
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

  private startBusy(socket: Socket): BusyState {
    const state: BusyState = { active: 0, held: [], closed: new ConnectionClosed(), pausedByUs: false };
    this.busy.set(socket, state);
    socket.on('close', this.onBusyClose);
    return state;
  }

  /** The connection is idle again: it keeps nothing of its requests. */
  private endBusy(socket: Socket, state: BusyState): void {
    if (this.busy.get(socket) !== state) return;
    // A refused or closed connection keeps its aborted state, so a late request is not started.
    if (state.closed.closed) return;
    this.busy.delete(socket);
    socket.removeListener('close', this.onBusyClose);
  }

  private closeBusy(socket: Socket): void {
    const state = this.busy.get(socket);
    if (!state) return;
    this.busy.delete(socket);
    state.held.length = 0;
    state.closed.close();
  }

  private uncount(address: string): void {
    const left = (this.perClient.get(address) ?? 1) - 1;
    if (left <= 0) this.perClient.delete(address);
    else this.perClient.set(address, left);
  }
}

/** node caches the peer address on the socket at first read, so it is still there after close. */
function peerOf(socket: Socket): string {
  return plainAddress(socket.remoteAddress ?? 'unknown');
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
