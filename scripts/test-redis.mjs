// A throwaway redis-server for the test run: started on a free loopback port with no
// persistence, stopped afterwards. Installs Debian's redis-server first when it is missing
// (scripts/install-redis.sh). The tests' global setup uses it, and so do tests that must
// stop and restart Redis themselves; `SLUICE_TEST_REDIS=redis://host:port` makes the test
// run use that server instead of starting one (tests that stop Redis still start their own).
//
//   node scripts/test-redis.mjs      starts one in the foreground and prints its URL
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** Installs redis-server with apt-get when it is not on the PATH. */
export function ensureRedisInstalled() {
  execFileSync('sh', [join(here, 'install-redis.sh')], { stdio: ['ignore', 'inherit', 'inherit'] });
}

async function freePort() {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resolves once something answers PING with PONG on the port. */
async function waitForPong(port, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1');
      let data = '';
      socket.on('connect', () => socket.write('PING\r\n'));
      socket.on('data', (d) => { data += d; if (data.includes('\r\n')) { socket.destroy(); resolve(data.startsWith('+PONG')); } });
      socket.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis-server on port ${port} did not answer PING within ${timeoutMs}ms`);
}

/**
 * Starts redis-server on a free loopback port (or `port`). Returns its URL and controls:
 * `stop()` ends it (SIGTERM, then SIGKILL), `start()` starts it again on the same port.
 */
export async function startRedis(options = {}) {
  ensureRedisInstalled();
  const port = options.port ?? await freePort();
  let child;
  const launch = async () => {
    child = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--protected-mode', 'yes', '--loglevel', 'warning', '--dir', process.env.TMPDIR ?? '/tmp',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    const exited = once(child, 'exit').then(() => { throw new Error(`redis-server exited: ${stderr}`); });
    await Promise.race([waitForPong(port, 10_000), exited]);
    exited.catch(() => {});
  };
  await launch();
  const stop = async () => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const ended = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await ended;
    clearTimeout(timer);
  };
  return { url: `redis://127.0.0.1:${port}`, port, stop, start: launch };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const redis = await startRedis();
  process.stdout.write(`${redis.url}\n`);
  const quit = () => { redis.stop().then(() => process.exit(0)); };
  process.on('SIGINT', quit);
  process.on('SIGTERM', quit);
}
