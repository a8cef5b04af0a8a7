// The Node floor for a proxy: node:http in front, one undici Pool of `slots` connections
// behind, nothing else (no queue of its own, no cache, no coalescing, no logging). What a
// bare Node proxy with a connection cap costs and gets, measured beside Sluice:
//   node dist/bench/minimal-proxy.js BACKEND_URL SLOTS
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'host']);

function main(backendUrl: string | undefined, slotsArg: string | undefined): void {
  if (!backendUrl || !slotsArg) throw new Error('usage: minimal-proxy.js BACKEND_URL SLOTS');
  const pool = new Pool(new URL(backendUrl).origin, { connections: Number(slotsArg), pipelining: 1 });
  const server = createServer((req, res) => {
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(req.headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
    pool.request({ method: req.method as 'GET', path: req.url ?? '/', headers, body: hasBody ? req : null }).then((up) => {
      const out: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(up.headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
      res.writeHead(up.statusCode, out);
      up.body.pipe(res);
    }, () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
  });
  server.keepAliveTimeout = 30_000;
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as AddressInfo;
    process.stdout.write(`minimal proxy listening on http://127.0.0.1:${port}\n`);
  });
  process.on('SIGTERM', () => {
    server.closeAllConnections();
    server.close(() => void pool.close().then(() => process.exit(0)));
  });
}

main(process.argv[2], process.argv[3]);
