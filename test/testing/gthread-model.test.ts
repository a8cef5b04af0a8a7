// The test backend's Gunicorn gthread model, through real sockets: connections bound to a
// worker, threads per worker, connections beyond worker_connections left unaccepted, and
// gthread's keep-alive rule.
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type Socket } from 'node:net';
import { backend, until } from '../helpers/harness.js';
import type { TestBackend, TestBackendOptions } from '../../src/testing/backend.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

async function gthread(opts: Partial<TestBackendOptions>): Promise<TestBackend> {
  const be = await backend({ model: 'gthread', latencyMs: 150, ...opts });
  cleanups.push(() => be.close());
  return be;
}

/** A raw connection that collects what the backend sends. */
async function open(be: TestBackend): Promise<{ socket: Socket; received: () => string }> {
  const socket = connect(be.port, '127.0.0.1');
  let data = '';
  socket.on('data', (d) => { data += d.toString(); });
  socket.on('error', () => {});
  await new Promise((r) => socket.once('connect', r));
  cleanups.push(() => { socket.destroy(); });
  return { socket, received: () => data };
}

const GET = (path: string) => `GET ${path} HTTP/1.1\r\nHost: backend\r\n\r\n`;
const responses = (text: string) => (text.match(/HTTP\/1\.1 \d{3}/g) ?? []).length;

describe('gthread model', () => {
  it('runs at most `threads` requests per worker; the rest wait inside it, FIFO', async () => {
    const be = await gthread({ workers: 1, threads: 2 });
    const conns = await Promise.all([open(be), open(be), open(be)]);
    for (const [i, c] of conns.entries()) c.socket.write(GET(`/api/live/w${i}`));
    await until(() => conns.every((c) => responses(c.received()) === 1), 5000, 'three answers');
    const stats = be.stats();
    expect(stats.inflight_max).toBe(2);
    expect(stats.worker_queue_max).toBe(1);
    expect(stats.workers).toHaveLength(1);
    expect(stats.workers![0]).toMatchObject({ connections: 3, running: 0, queued: 0 });
  });

  it('binds each connection to one worker, and a busy worker queues while another idles', async () => {
    const be = await gthread({ workers: 2, threads: 1 });
    const conns = await Promise.all(Array.from({ length: 6 }, () => open(be)));
    const bound = () => be.stats().workers!.reduce((sum, w) => sum + w.connections, 0);
    await until(() => bound() === 6, 2000, 'all six to be accepted');
    const perWorker = be.stats().workers!.map((w) => w.connections);
    for (const [i, c] of conns.entries()) c.socket.write(GET(`/api/live/b${i}`));
    await until(() => conns.every((c) => responses(c.received()) === 1), 5000, 'six answers');
    // Each worker ran its own connections one at a time, however the 6 were spread.
    expect(be.stats().inflight_max).toBe(perWorker.filter((n) => n > 0).length);
    expect(be.stats().worker_queue_max).toBe(Math.max(...perWorker) - 1);
  });

  it('leaves connections beyond worker_connections unaccepted until a worker has room', async () => {
    const be = await gthread({ workers: 1, threads: 1, workerConnections: 1 });
    const first = await open(be);
    const second = await open(be);
    await until(() => be.stats().unaccepted === 1, 2000, 'the second connection to wait');
    second.socket.write(GET('/api/live/late'));
    await new Promise((r) => setTimeout(r, 300));
    expect(responses(second.received())).toBe(0);
    expect(be.stats().total).toBe(0);
    first.socket.destroy();
    await until(() => responses(second.received()) === 1, 3000, 'the second request to run once accepted');
    expect(be.stats().unaccepted).toBe(0);
    expect(be.stats().total).toBe(1);
  });

  it('keeps a connection alive only below worker_connections - threads idle ones (Gunicorn max_keepalived)', async () => {
    const be = await gthread({ workers: 1, threads: 1, workerConnections: 2 });
    const a = await open(be);
    a.socket.write(GET('/api/live/a'));
    await until(() => responses(a.received()) === 1, 3000, 'a');
    expect(a.received()).toMatch(/connection: keep-alive/i);
    const b = await open(be);
    b.socket.write(GET('/api/live/b'));
    await until(() => responses(b.received()) === 1, 3000, 'b');
    // a is idle and kept, which is all max_keepalived = 2 - 1 allows: b's answer closes.
    expect(b.received()).toMatch(/connection: close/i);
  });

  it('runs requests queued inside a worker even after their client has gone', async () => {
    const be = await gthread({ workers: 1, threads: 1 });
    const busy = await open(be);
    const leaving = await open(be);
    busy.socket.write(GET('/api/live/busy'));
    leaving.socket.write(GET('/api/live/leaving'));
    await until(() => be.stats().workers![0]!.queued === 1, 2000, 'the second request to queue');
    leaving.socket.destroy();
    await until(() => be.stats().total === 2 && be.stats().inflight_now === 0, 3000, 'both to run');
    expect(be.stats().abandoned).toBe(1);
  });
});
