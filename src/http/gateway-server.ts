// The node:http adapter of the gateway port: limits on the request head, keep-alive with
// clients, malformed requests answered 400/431 with a Sluice error body, and the count of
// requests in progress that graceful shutdown waits for.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { errorBody, SluiceError } from '../errors.js';
import type { SluiceConfig } from '../config/schema.js';

export type RequestHandler = (req: IncomingMessage, res: ServerResponse, expectsContinue: boolean) => Promise<void>;

export class GatewayServer {
  readonly server: Server;
  private active = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(limits: SluiceConfig['limits'], handler: RequestHandler) {
    this.server = createServer({
      maxHeaderSize: limits.max_header_bytes,
      keepAliveTimeout: limits.keep_alive_timeout,
      // Sluice enforces its own per-route body and total deadlines; Node's whole-request
      // timeout would cut off requests that are legitimately waiting in the queue.
      requestTimeout: 0,
      headersTimeout: 30_000,
    });
    const run = (req: IncomingMessage, res: ServerResponse, expectsContinue: boolean) => {
      this.active++;
      handler(req, res, expectsContinue)
        .catch((err) => { if (!res.headersSent) res.writeHead(500).end(); else res.destroy(err as Error); })
        .finally(() => {
          this.active--;
          if (this.active === 0) for (const wake of this.idleWaiters.splice(0)) wake();
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

function rejectMalformed(err: NodeJS.ErrnoException, socket: Socket): void {
  if (!socket.writable || err.code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  const code = err.code === 'HPE_HEADER_OVERFLOW' ? 'headers_too_large' : 'bad_request';
  const error = new SluiceError(code, err.code);
  // The request head could not be read, so there is no client X-Request-Id to keep and no
  // phase timing: the id is new and Server-Timing carries only the error.
  const requestId = randomUUID();
  const body = errorBody(error, requestId);
  const reason = code === 'headers_too_large' ? 'Request Header Fields Too Large' : 'Bad Request';
  socket.end(
    `HTTP/1.1 ${error.status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
    `Cache-Control: no-store\r\nX-Request-Id: ${requestId}\r\nServer-Timing: error;desc=${code}\r\n` +
    `X-Sluice-Error: ${code}\r\nConnection: close\r\n\r\n${body}`,
  );
}
