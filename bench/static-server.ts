// A minimal node:http server that answers every request with one fixed response; the
// baseline S6 compares Sluice's cached path against. Run as a child process so its CPU
// is measured apart from the load generator's:
//   node dist/bench/static-server.js RESPONSE.json
// where RESPONSE.json is {"headers": {...}, "bodyBase64": "..."}.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

interface FixedResponse {
  headers: Record<string, string>;
  bodyBase64: string;
}

function main(file: string | undefined): void {
  if (!file) throw new Error('usage: static-server.js RESPONSE.json');
  const spec = JSON.parse(readFileSync(file, 'utf8')) as FixedResponse;
  const body = Buffer.from(spec.bodyBase64, 'base64');
  const headers = { ...spec.headers, 'content-length': String(body.length) };
  const server = createServer((_req, res) => {
    res.writeHead(200, headers);
    res.end(body);
  });
  server.keepAliveTimeout = 30_000;
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as AddressInfo;
    process.stdout.write(`static server listening on http://127.0.0.1:${port}\n`);
  });
  process.on('SIGTERM', () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}

main(process.argv[2]);
