// A bare reachability check: opens and closes one TCP connection to a backend server.
import { connect } from 'node:net';

/** Resolves with undefined when the server accepts, else `connect_timeout` or `upstream_connect_failed`. */
export function tcpProbe(url: string, timeoutMs: number): Promise<string | undefined> {
  const target = new URL(url);
  const port = Number(target.port || (target.protocol === 'https:' ? 443 : 80));
  const host = target.hostname.replace(/^\[|\]$/g, '');
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: timeoutMs });
    const done = (error: string | undefined) => {
      socket.destroy();
      resolve(error);
    };
    socket.once('connect', () => done(undefined));
    socket.once('timeout', () => done('connect_timeout'));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ETIMEDOUT' ? 'connect_timeout' : 'upstream_connect_failed'));
  });
}
