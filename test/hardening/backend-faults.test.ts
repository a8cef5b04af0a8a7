// A backend that resets mid-response: every waiting request (leader and coalesced
// followers) gets 502, nothing partial is stored, and slots busy returns to exactly 0.
import { createServer, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { get, json, sluice, until, type RunningSluice } from '../helpers/harness.js';

let calls = 0;
let mode: 'reset' | 'ok' = 'reset';
const sockets = new Set<Socket>();
// Answers every request with a cacheable head and half a body, then resets — or, in `ok`
// mode, the whole body.
const faulty = createServer((socket) => {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
  socket.on('error', () => {});
  socket.on('data', () => {
    calls++;
    const head = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nCache-Control: public, max-age=60\r\nContent-Length: 20\r\n\r\n';
    if (mode === 'ok') {
      socket.write(`${head}0123456789abcdefghij`);
      return;
    }
    setTimeout(() => {
      socket.write(`${head}0123456789`);
      setTimeout(() => socket.resetAndDestroy(), 50);
    }, 200);
  });
});
let gw: RunningSluice;

beforeAll(async () => {
  await new Promise<void>((r) => faulty.listen(0, '127.0.0.1', r));
  const { port } = faulty.address() as { port: number };
  gw = await sluice(`backend:\n  servers:\n    - { url: "http://127.0.0.1:${port}", slots: 2 }\n  passive_health: { failures: 0 }\n`);
});
afterAll(async () => {
  await gw?.close();
  for (const s of sockets) s.destroy();
  await new Promise((r) => faulty.close(r));
});

describe('reset mid-response', () => {
  it('leader and followers get 502; nothing is cached; slots return to 0', async () => {
    const answers = await Promise.all(Array.from({ length: 5 }, () => get(`${gw.url}/items/1`)));
    for (const res of answers) {
      expect(res.status).toBe(502);
      expect(res.headers['x-sluice-error']).toBe('upstream_reset');
    }
    expect(calls).toBe(1);
    await until(async () => (await json(`${gw.adminUrl}/status`)).slots.busy === 0, 3000, 'slots to be free');
    mode = 'ok';
    const next = await get(`${gw.url}/items/1`);
    expect(next.status).toBe(200);
    expect(next.text).toBe('0123456789abcdefghij');
    expect(calls).toBe(2);
    expect((await json(`${gw.adminUrl}/status`)).slots.busy).toBe(0);
  });
});
