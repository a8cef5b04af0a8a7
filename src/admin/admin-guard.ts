// Who may use the admin server. With admin.token set, every resource but /healthz and
// /readyz (probes carry no secrets) needs `Authorization: Bearer <token>`. On a loopback
// listener the Host header must name loopback too, so a web page the operator opens
// cannot reach the admin port through DNS rebinding (its Host would be the attacker's name).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

const OPEN_PATHS = new Set(['/healthz', '/readyz']);
const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_NAMES.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export type AdminRefusal = { status: 401 | 403; code: 'unauthorized' | 'admin_host_refused'; message: string };

export class AdminGuard {
  private readonly tokenHash: Buffer | undefined;

  constructor(token: string | undefined, private readonly loopbackOnly: boolean) {
    this.tokenHash = token === undefined ? undefined : sha256(token);
  }

  check(req: IncomingMessage, pathname: string): AdminRefusal | undefined {
    if (this.loopbackOnly) {
      const hostname = (req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
      if (!isLoopbackHost(hostname)) {
        return { status: 403, code: 'admin_host_refused', message: `the admin server answers only to loopback names, not Host ${JSON.stringify(req.headers.host ?? '')}` };
      }
    }
    if (!this.tokenHash || OPEN_PATHS.has(pathname)) return undefined;
    const offered = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
    // Hashes have equal length, so the comparison's time does not depend on the token.
    if (offered !== undefined && timingSafeEqual(sha256(offered), this.tokenHash)) return undefined;
    return { status: 401, code: 'unauthorized', message: 'admin.token is set: send Authorization: Bearer <token>' };
  }
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
