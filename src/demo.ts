// `npm run demo`: the test backend (50 slots, 100 ms per request) on :8000 and Sluice with
// config/sluice.yaml on :8080 (admin and dashboard on :9090), in one process. Prints where
// to look and what to try; Ctrl-C stops both. `--traffic` adds a light, steady mix of
// requests (loopback only) so the dashboard has something to show; `--backend-port N`
// moves the backend off :8000 (SLUICE_PORT and SLUICE_ADMIN_PORT move Sluice, as always).
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { createApp, type SluiceApp } from './app.js';
import { compileConfig } from './config/compile.js';
import { ConfigError, loadConfigFile } from './config/load.js';
import { startTestBackend, type TestBackend } from './testing/backend.js';

const CONFIG = resolve(import.meta.dirname, '../../config/sluice.yaml');
const DEFAULT_BACKEND_PORT = 8000;
const TRAFFIC_PER_SECOND = 60;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { traffic: { type: 'boolean', default: false }, 'backend-port': { type: 'string' } }, strict: true });
  const backendPort = Number(values['backend-port'] ?? DEFAULT_BACKEND_PORT);
  const backend = await startTestBackend({ host: '127.0.0.1', port: backendPort, slots: 50, latencyMs: 100, reportLatencyMs: 2000 })
    .catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EADDRINUSE') throw err;
      process.stderr.write(`demo: port ${backendPort} is taken; try npm run demo -- --backend-port 8001\n`);
      process.exit(2);
    });
  let app: SluiceApp;
  try {
    const config = loadConfigFile(CONFIG, { ...process.env, BACKEND_URL: backend.url, BACKEND_SLOTS: '50' }, (raw) => {
      // With generated traffic an access line per request would bury the instructions.
      if (values.traffic) raw.logging = { ...(raw.logging as object), access_log: false };
    });
    app = createApp(compileConfig(config));
  } catch (err) {
    await backend.close();
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const { port, adminPort } = await app.listen().catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EADDRINUSE') throw err;
    await backend.close();
    process.stderr.write(`demo: ${err.message}; set SLUICE_PORT / SLUICE_ADMIN_PORT to use other ports\n`);
    process.exit(2);
  });
  const gateway = `http://127.0.0.1:${port}`;
  const admin = `http://127.0.0.1:${adminPort}`;
  process.stdout.write(`
Sluice demo
  backend    ${backend.url}   test backend: 50 slots, 100 ms per request
  gateway    ${gateway}   config/sluice.yaml
  dashboard  ${admin}/
  metrics    ${admin}/metrics   queue: ${admin}/queue   status: ${admin}/status

Try:
  curl -si ${gateway}/api/items/1 | grep -iE '^(server-timing|x-request-id|cache-status)'
  for i in $(seq 200); do curl -s -o /dev/null ${gateway}/api/live/$i?ms=500 & done; wait
      (200 requests, 50 slots: watch the queue fill and drain on the dashboard)
${values.traffic ? `\nGenerating about ${TRAFFIC_PER_SECOND} requests per second.\n` : ''}
Ctrl-C stops both.
`);
  const stopTraffic = values.traffic ? startTraffic(gateway) : () => {};
  let stopping = false;
  const stop = () => {
    if (stopping) process.exit(1);
    stopping = true;
    stopTraffic();
    void shutdown(app, backend).then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

async function shutdown(app: SluiceApp, backend: TestBackend): Promise<void> {
  await app.shutdown(2000);
  await backend.close();
}

/** A steady mix: popular cacheable items, unique live reads, an occasional slow report. */
function startTraffic(gateway: string): () => void {
  let n = 0;
  const timer = setInterval(() => {
    for (let i = 0; i < TRAFFIC_PER_SECOND / 10; i++) {
      n++;
      const path = n % 50 === 0 ? '/api/reports'
        : n % 3 === 0 ? `/api/live/${n}?ms=${50 + (n % 7) * 60}`
        : `/api/items/${Math.floor(Math.random() ** 3 * 40)}`;
      const method = path === '/api/reports' ? 'POST' : 'GET';
      request(gateway + path, { method, body: method === 'POST' ? '{}' : null })
        .then((res) => res.body.dump())
        .catch(() => {});
    }
  }, 100);
  return () => clearInterval(timer);
}

main().catch((err: unknown) => {
  process.stderr.write(`demo: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
