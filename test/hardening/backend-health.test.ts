// Passive backend health: a server that refuses connections is ejected after K failures,
// traffic moves to the others, it is probed back after the cool-down, and /readyz says when
// none is healthy (while staying ready). After every fault, slots busy returns to exactly 0.
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { backend, get, json, sluice, until } from '../helpers/harness.js';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

describe('passive health', () => {
  it('ejects a refusing server after K connect failures, moves traffic, and probes it back', async () => {
    const port = await deadPort();
    const good = await backend({ slots: 2, latencyMs: 1 });
    cleanup.push(() => good.close());
    const gw = await sluice(`backend:
  servers:
    - { url: "http://127.0.0.1:${port}", slots: 2 }
    - { url: "${good.url}", slots: 2 }
  passive_health: { failures: 2, cooldown: 700ms }
`);
    cleanup.push(() => gw.close());
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await get(`${gw.url}/api/echo?i=${i}`)).status);
    expect(statuses.filter((s) => s === 502)).toHaveLength(2);
    expect(statuses.slice(2)).toEqual(Array(8).fill(200));
    let status = await json(`${gw.adminUrl}/status`);
    expect(status.slots.servers[0].health).toBe('ejected');
    expect(status.slots.busy).toBe(0);
    expect((await get(`${gw.adminUrl}/readyz`)).status).toBe(200);

    // The server comes back on its port; after the cool-down one request probes it.
    const revived = await backend({ slots: 2, latencyMs: 1, port });
    cleanup.push(() => revived.close());
    await new Promise((r) => setTimeout(r, 800));
    for (let i = 0; i < 4; i++) expect((await get(`${gw.url}/api/echo?again=${i}`)).status).toBe(200);
    status = await json(`${gw.adminUrl}/status`);
    expect(status.slots.servers[0].health).toBe('healthy');
    expect(revived.stats().total).toBeGreaterThan(0);
    expect(status.slots.busy).toBe(0);
  });

  it('with every server ejected, /readyz stays ready and says so, and requests fail fast with the real error', async () => {
    const gw = await sluice(`backend:
  servers:
    - { url: "http://127.0.0.1:${await deadPort()}", slots: 2 }
  passive_health: { failures: 1, cooldown: 10s }
queue: { timeout: 5s }
`);
    cleanup.push(() => gw.close());
    expect((await get(`${gw.url}/api/echo`)).status).toBe(502);
    const ready = await get(`${gw.adminUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.text).note).toMatch(/ejected/);
    const started = Date.now();
    const again = await get(`${gw.url}/api/echo`);
    expect(again.status).toBe(502);
    expect(again.headers['x-sluice-error']).toBe('upstream_connect_failed');
    expect(Date.now() - started).toBeLessThan(2000);
    await until(async () => (await json(`${gw.adminUrl}/status`)).slots.busy === 0, 3000, 'slots to be free');
  });
});
