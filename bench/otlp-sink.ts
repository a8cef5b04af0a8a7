import type { ProcessGroup } from './procs.js';

// A collector that keeps up: accepts OTLP/HTTP exports and throws them away. It runs as its
// own process so receiving spans costs neither Sluice nor the load generator any CPU.
const SINK_SOURCE = `
const http = require('node:http');
let n = 0;
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => { n++; res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(); });
});
server.listen(0, '127.0.0.1', () => console.log('otlp sink on http://127.0.0.1:' + server.address().port + '/v1/traces'));
process.on('SIGTERM', () => { console.error('exports ' + n); process.exit(0); });
`;

export async function startOtlpSink(procs: ProcessGroup): Promise<{ url: string; pid: number; stop: () => Promise<void> }> {
  const sink = await procs.spawnServer({ name: 'otlp sink', args: ['-e', SINK_SOURCE], ready: /otlp sink on (http:\/\/\S+)/ });
  return { url: sink.url, pid: sink.pid, stop: sink.stop };
}
