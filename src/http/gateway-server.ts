// The node:http adapter of the gateway port: limits on the request head, keep-alive with
// clients, malformed requests answered 400/408/431 with a Sluice error body, connection and
// pipelining limits (connection-guard.ts), and the count of
// requests in progress that graceful shutdown waits for.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { errorBody, SluiceError } from '../errors.js';
import type { SluiceConfig } from '../config/schema.js';
import { ConnectionGuard } from './connection-guard.js';
import type { ConnectionClosed } from './connection-closed.js';

/**
 * `connectionClosed` aborts when the client's connection closes while this request is in
 * progress, even before its turn to answer. It is shared by the requests of one connection
 * that are in progress together, and exists only while one is: an idle connection has none.
 */
export type RequestHandler = (req: IncomingMessage, res: ServerResponse, expectsContinue: boolean, connectionClosed: ConnectionClosed) => Promise<void>;

export class GatewayServer {
  readonly server: Server;
  /** Connection, per-client and pipelining limits; an idle connection holds nothing in it. */
  readonly guard: ConnectionGuard;
  private active = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(limits: SluiceConfig['limits'], handler: RequestHandler, exemptFromClientLimits: (address: string) => boolean = () => false) {
    this.server = createServer({
      maxHeaderSize: limits.max_header_bytes,
      keepAliveTimeout: limits.keep_alive_timeout,
      // Sluice enforces its own per-route body and total deadlines; Node's whole-request
      // timeout would cut off requests that are legitimately waiting in the queue.
      requestTimeout: 0,
      // Slowloris: the whole head within header_timeout, checked often enough to be on time.
      headersTimeout: limits.header_timeout,
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(limits.header_timeout / 4))),
    });
    // No silent truncation (node's default keeps the first 2,000 lines): every line is parsed,
    // the head is bounded by max_header_bytes, and one with too many lines is refused (431).
    this.server.maxHeadersCount = 0;
    // Over it, node:http closes new connections at once; those already open keep working.
    this.server.maxConnections = limits.max_connections;
    const guard = this.guard = new ConnectionGuard({
      pipelineDepth: limits.pipeline_depth,
      perClientConnections: limits.per_client.max_connections,
      exempt: exemptFromClientLimits,
    });
    this.server.on('connection', (socket: Socket) => guard.accept(socket));
    const run = (req: IncomingMessage, res: ServerResponse, expectsContinue: boolean) => {
      guard.run(req, (connectionClosed) => {
        this.active++;
        return handler(req, res, expectsContinue, connectionClosed)
          .catch((err) => { if (!res.headersSent) res.writeHead(500).end(); else res.destroy(err as Error); })
          .finally(() => {
            this.active--;
            if (this.active === 0) for (const wake of this.idleWaiters.splice(0)) wake();
          });
      });
    };
    this.server.on('request', (req, res) => run(req, res, false));
    // Answered with 100 only after admission, so an oversized upload is refused before it is sent.
    this.server.on('checkContinue', (req, res) => run(req, res, true));
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => rejectMalformed(err, socket));
  }

  get activeRequests(): number {
    return this.active;
  }

  async listen(port: number, host: string): Promise<number> {
    this.server.listen(port, host);
    await once(this.server, 'listening');
    const address = this.server.address();
    return typeof address === 'object' && address ? address.port : port;
  }

  /** Stops accepting connections; resolves when every request in progress has finished or the grace period ends. */
  async drain(graceMs: number): Promise<boolean> {
    this.server.close();
    this.server.closeIdleConnections();
    if (this.active === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      new Promise<boolean>((resolve) => this.idleWaiters.push(() => resolve(true))),
      new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), graceMs); }),
    ]);
    clearTimeout(timer);
    return drained;
  }

  closeAllConnections(): void {
    this.server.closeAllConnections();
  }
}

const REASONS = { headers_too_large: 'Request Header Fields Too Large', header_timeout: 'Request Timeout', bad_request: 'Bad Request' } as const;

function rejectMalformed(err: NodeJS.ErrnoException, socket: Socket): void {
  if (!socket.writable || err.code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  const code = err.code === 'HPE_HEADER_OVERFLOW' ? 'headers_too_large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'header_timeout' : 'bad_request';
  const error = new SluiceError(code, err.code);
  // The request head could not be read, so there is no client X-Request-Id to keep and no
  // phase timing: the id is new and Server-Timing carries only the error.
  const requestId = randomUUID();
  const body = errorBody(error, requestId);
  const reason = REASONS[code];
  socket.end(
    `HTTP/1.1 ${error.status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
    `Cache-Control: no-store\r\nX-Request-Id: ${requestId}\r\nServer-Timing: error;desc=${code}\r\n` +
    `X-Sluice-Error: ${code}\r\nConnection: close\r\n\r\n${body}`,
  );
}
