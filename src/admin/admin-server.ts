// The admin server (loopback by default): health, readiness, status and whatever views
// other components register. Kept off the gateway port so it never competes with traffic
// and is never exposed by accident.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import { AdminGuard, isLoopbackHost } from './admin-guard.js';

export type AdminHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;
export type StatusSection = () => unknown;
/** A component's say in /readyz: `detail` joins the body; a `reason` makes it 503 (not ready). */
export type ReadinessDetail = () => { reason?: string | undefined; detail: Record<string, unknown> };

export class AdminServer {
  readonly server: Server;
  private readonly routes = new Map<string, AdminHandler>();
  private readonly sections = new Map<string, StatusSection>();
  private ready = false;
  private readiness: () => string | undefined = () => undefined;
  private note: () => string | undefined = () => undefined;
  private readonly details: ReadinessDetail[] = [];

  constructor(options: { token?: string | undefined; host?: string } = {}) {
    const guard = new AdminGuard(options.token, isLoopbackHost(options.host ?? '127.0.0.1'));
    this.server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://admin.invalid');
      const refused = guard.check(req, url.pathname);
      if (refused) {
        if (refused.status === 401) res.setHeader('www-authenticate', 'Bearer realm="sluice-admin"');
        sendJson(res, refused.status, { error: { code: refused.code, message: refused.message } });
        return;
      }
      const handler = this.routes.get(`${req.method} ${url.pathname}`);
      if (!handler) {
        sendJson(res, 404, { error: { code: 'not_found', message: `no admin resource ${req.method} ${url.pathname}` } });
        return;
      }
      Promise.resolve(handler(req, res, url)).catch((err: unknown) => {
        if (!res.headersSent) sendJson(res, 500, { error: { code: 'internal', message: String(err) } });
        else res.destroy();
      });
    });
    this.route('GET', '/healthz', (_req, res) => sendJson(res, 200, { status: 'ok' }));
    this.route('GET', '/readyz', (_req, res) => {
      const results = this.details.map((detail) => detail());
      const problem = this.ready ? this.readiness() ?? results.find((r) => r.reason !== undefined)?.reason : 'draining';
      const note = problem === undefined ? this.note() : undefined;
      const extra = Object.assign({}, ...results.map((r) => r.detail)) as Record<string, unknown>;
      sendJson(res, problem === undefined ? 200 : 503, problem === undefined ? { ready: true, ...(note ? { note } : {}), ...extra } : { ready: false, reason: problem, ...extra });
    });
    this.route('GET', '/status', (_req, res) => sendJson(res, 200, this.status()));
  }

  route(method: string, path: string, handler: AdminHandler): void {
    this.routes.set(`${method} ${path}`, handler);
  }

  /** Adds a top-level key to /status, computed on each request. */
  statusSection(name: string, section: StatusSection): void {
    this.sections.set(name, section);
  }

  status(): Record<string, unknown> {
    return Object.fromEntries([...this.sections].map(([name, section]) => [name, section()]));
  }

  /** Something /readyz reports while staying ready (200), e.g. a backend that is down. */
  readinessNote(note: () => string | undefined): void {
    this.note = note;
  }

  /** A check /readyz adds to the ready flag: undefined when ready, else why not. */
  readinessCheck(check: () => string | undefined): void {
    this.readiness = check;
  }

  /** A component's part of /readyz: its detail joins the body; a reason makes it 503. */
  readinessDetail(detail: ReadinessDetail): void {
    this.details.push(detail);
  }

  setReady(ready: boolean): void {
    this.ready = ready;
  }

  async listen(port: number, host: string): Promise<number> {
    this.server.listen(port, host);
    await once(this.server, 'listening');
    const address = this.server.address();
    return typeof address === 'object' && address ? address.port : port;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value) + '\n';
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}
