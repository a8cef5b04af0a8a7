// Thousands of idle keep-alive clients must cost what node:http itself costs per socket and
// nothing more: no Sluice listener, closure, timer or Map entry per idle connection. The
// witness is a bare node:http server holding a connection in the same state (one request
// answered, then idle), compared on the server-side sockets of real connections.
import { afterEach, describe, expect, it } from 'vitest';
import { createServer } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo, Socket } from 'node:net';
import type { TestBackend } from '../../src/testing/backend.js';
import { backend, backendYaml, json, sluice, until, type RunningSluice } from '../helpers/harness.js';
import { collect, openSocket, parseResponses, request } from '../helpers/raw-http.js';

const IDLE = 300;

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function setup(slots: number, latencyMs: number, extra = ''): Promise<{ be: TestBackend; gw: RunningSluice; accepted: Socket[] }> {
  const be = await backend({ slots, latencyMs });
  const gw = await sluice(`${backendYaml(be, slots)}${extra}`);
  cleanup.push(() => be.close(), () => gw.close());
  const accepted: Socket[] = [];
  gw.app.gateway.server.on('connection', (socket: Socket) => accepted.push(socket));
  return { be, gw, accepted };
}

/** Opens a keep-alive connection, makes one request on it and leaves it idle. */
async function idleClient(url: string, target = '/api/echo?ms=1'): Promise<Socket> {
  const socket = await openSocket(url);
  socket.on('error', () => {});
  cleanup.push(() => { socket.destroy(); });
  let text = '';
  const answered = new Promise<void>((resolve) => {
    const onData = (d: Buffer) => {
      text += d.toString('latin1');
      if (parseResponses(text).length === 1) { socket.off('data', onData); resolve(); }
    };
    socket.on('data', onData);
  });
  socket.write(request('GET', target));
  await answered;
  expect(parseResponses(text)[0]!.status).toBe(200);
  return socket;
}

async function idleClients(url: string, n: number): Promise<Socket[]> {
  const out: Socket[] = [];
  for (let i = 0; i < n; i += 50) out.push(...await Promise.all(Array.from({ length: Math.min(50, n - i) }, () => idleClient(url))));
  return out;
}

type ListenerCounts = Record<string, number>;

function listenerCounts(socket: Socket): ListenerCounts {
  const counts: ListenerCounts = {};
  for (const name of socket.eventNames()) counts[String(name)] = socket.listenerCount(name);
  return counts;
}

/** What node:http itself attaches to a server-side socket that has answered one request and is idle. */
async function nodeFloor(): Promise<ListenerCounts> {
  const server = createServer({ keepAliveTimeout: 60_000 }, (_req, res) => { res.setHeader('content-type', 'text/plain'); res.end('ok'); });
  let serverSide: Socket | undefined;
  server.on('connection', (socket: Socket) => { serverSide = socket; });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanup.push(() => { server.closeAllConnections(); server.close(); });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  await idleClient(url, '/');
  await new Promise((r) => setTimeout(r, 20));
  floorTimeoutMs = serverSide!.timeout;
  return listenerCounts(serverSide!);
}

/** The socket timeout node:http sets on the idle socket of nodeFloor() (its keep-alive timeout). */
let floorTimeoutMs: number | undefined;

const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('idle keep-alive connections', () => {
  it(`${IDLE} idle connections carry node's own listeners only, and no timer of Sluice`, async () => {
    const floor = await nodeFloor();
    const { gw, accepted } = await setup(4, 1, 'limits: { keep_alive_timeout: 60s }\n');
    const timersBefore = timers();
    await idleClients(gw.url, IDLE);
    await until(() => gw.app.gateway.activeRequests === 0, 5000, 'requests to finish');
    expect(accepted).toHaveLength(IDLE);
    for (const socket of accepted) {
      expect(listenerCounts(socket)).toEqual(floor);
      // The keep-alive timeout is node's own socket timeout, nothing Sluice adds.
      expect(socket.timeout).toBe(floorTimeoutMs);
    }
    expect(timers() - timersBefore).toBeLessThan(IDLE / 10);
  });

  it('per-client counting adds one shared close listener per socket and forgets a client when its last socket closes', async () => {
    const floor = await nodeFloor();
    const { be, gw, accepted } = await setup(4, 1, `limits: { per_client: { max_connections: ${IDLE} } }\n`);
    const clients = await idleClients(gw.url, IDLE);
    const guard = gw.app.gateway.guard;
    expect(guard.connectionsOf('127.0.0.1')).toBe(IDLE);
    const shared = new Set<unknown>();
    for (const socket of accepted) {
      expect(listenerCounts(socket)).toEqual({ ...floor, close: floor.close! + 1 });
      shared.add(socket.listeners('close').at(-1));
    }
    expect(shared.size).toBe(1);

    // The limit still holds with every counted connection idle.
    const before = be.stats().total;
    const over = await openSocket(gw.url);
    over.on('error', () => {});
    const refused = await collect(over, { timeoutMs: 2000, untilClose: true }, () => over.write(request('GET', '/api/echo')));
    expect(refused.responses[0]?.status).toBe(429);
    expect(be.stats().total).toBe(before);

    for (const socket of clients) socket.destroy();
    await until(() => guard.countedClients === 0, 5000, 'the per-client count to empty');
    // Freed, so the client may connect again.
    await idleClient(gw.url);
    expect(guard.connectionsOf('127.0.0.1')).toBe(1);
  });

  it('a connection that was idle still aborts its queued request when it closes', async () => {
    const { be, gw } = await setup(1, 400);
    const idle = await idleClient(gw.url, '/api/echo?ms=1');
    const ranBefore = be.stats().total;
    // Takes the only slot for 400 ms.
    const hog = await openSocket(gw.url);
    hog.on('error', () => {});
    cleanup.push(() => { hog.destroy(); });
    hog.write(request('GET', '/api/echo?hog=1'));
    await until(() => be.stats().total > ranBefore, 5000, 'the hog to reach the backend');
    idle.write(request('GET', '/api/echo?queued=1'));
    await until(async () => (await json(`${gw.adminUrl}/status`)).queue.waiting === 1, 5000, 'the request to queue');
    idle.destroy();
    await until(async () => (await json(`${gw.adminUrl}/status`)).queue.waiting === 0, 5000, 'the queue to empty');
    await until(async () => (await json(`${gw.adminUrl}/status`)).slots.busy === 0, 5000, 'the slot to be free');
    expect(be.stats().total).toBe(ranBefore + 1);
  });

  it('pipelined requests past pipeline_depth still wait, and the connection is idle-cheap again afterwards', async () => {
    const floor = await nodeFloor();
    const { gw, accepted } = await setup(4, 50, 'limits: { pipeline_depth: 2 }\n');
    const socket = await openSocket(gw.url);
    socket.on('error', () => {});
    cleanup.push(() => { socket.destroy(); });
    let text = '';
    socket.on('data', (d: Buffer) => { text += d.toString('latin1'); });
    socket.write(Array.from({ length: 6 }, (_, i) => request('GET', `/api/echo?ms=50&n=${i}`)).join(''));
    await until(() => parseResponses(text).length === 6, 10_000, 'six answers');
    expect(parseResponses(text).map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(parseResponses(text).map((r) => JSON.parse(r.body).query.n)).toEqual(['0', '1', '2', '3', '4', '5']);
    await until(() => gw.app.gateway.activeRequests === 0, 5000, 'requests to finish');
    expect(listenerCounts(accepted[0]!)).toEqual(floor);
  });
});
