// A route's total deadline that passes while a request waits for a slot: the client, still
// connected, gets the catalogue's answer for it, not a silent 499.
import { afterEach, describe, expect, it } from 'vitest';
import { backend, backendYaml, client, get, sluice } from '../helpers/harness.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

describe('deadline while queued', () => {
  it('answers 504 total_timeout when the route timeout ends the wait before queue_timeout does', async () => {
    const be = await backend({ slots: 1, latencyMs: 1000 });
    cleanups.push(() => be.close());
    const gw = await sluice(`${backendYaml(be, 1)}queue: { timeout: 10s, shed: timeout }\nroutes:\n  - { name: short, match: { path: /api/live/* }, timeout: 300ms, queue_timeout: 5s }\n`);
    cleanups.push(() => gw.close());
    const agent = client();
    const holder = get(`${gw.url}/api/live/holder?ms=2000`, { dispatcher: agent });
    await new Promise((r) => setTimeout(r, 100));
    const waiter = await get(`${gw.url}/api/live/waiter`, { dispatcher: agent });
    expect(waiter.status).toBe(504);
    expect(waiter.headers['x-sluice-error']).toBe('total_timeout');
    expect(JSON.parse(waiter.text).error.code).toBe('total_timeout');
    await holder;
    // The one that timed out in the queue never reached the backend.
    expect(be.stats().by_path['/api/live/waiter']).toBeUndefined();
    await agent.close();
  });
});
