// The live dashboard in a real headless Chromium (Debian's package, driven by
// playwright-core): it loads with nothing fetched from outside the admin server, shows
// the numbers /status shows, and keeps updating under load. The screenshot is saved to
// test-artifacts/dashboard.png.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { TestBackend } from '../../src/testing/backend.js';
import { backend, backendYaml, client, get, json, sluice, until, type RunningSluice } from '../helpers/harness.js';

// The same binary scripts/install-browser.sh (run by `npm test`) made sure of.
const CHROMIUM = process.env.SLUICE_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = resolve(import.meta.dirname, '../../test-artifacts');

const ROUTES = `routes:
  - name: items
    match: { path: /api/items/* }
    priority: high
  - name: reports
    match: { path: /api/live/* }
    priority: low
`;

let browser: Browser;
let be: TestBackend;
let gw: RunningSluice;
const agent = client(100);

beforeAll(async () => {
  be = await backend({ slots: 4, latencyMs: 60 });
  gw = await sluice(backendYaml(be, 4) + 'queue: { timeout: 30s }\n' + ROUTES);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

afterAll(async () => {
  await browser?.close();
  await agent.close();
  await gw?.close();
  await be?.close();
});

async function text(page: Page, id: string): Promise<string> {
  return (await page.locator(`#${id}`).textContent())?.trim() ?? '';
}

async function renders(page: Page): Promise<number> {
  return Number(await page.locator('body').getAttribute('data-rendered') ?? 0);
}

describe('dashboard', () => {
  it('loads offline-safe, matches /status, updates live under load, and is screenshotted', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const fetched: string[] = [];
    const problems: string[] = [];
    page.on('request', (r) => fetched.push(r.url()));
    page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
    page.on('pageerror', (e) => problems.push(String(e)));

    const response = await page.goto(`${gw.adminUrl}/`);
    expect(response!.status()).toBe(200);
    expect(response!.headers()['content-security-policy']).toContain("default-src 'none'");
    await page.waitForFunction(() => Number(document.body.dataset.rendered ?? 0) >= 1);

    const idle = await json(`${gw.adminUrl}/status`);
    expect(await text(page, 'slots-total')).toBe(String(idle.slots.total));
    expect(await text(page, 'slots-busy')).toBe(String(idle.slots.busy));
    expect(await text(page, 'queue-waiting')).toBe(String(idle.queue.waiting));
    expect(await page.locator('#servers .server').count()).toBe(idle.slots.servers.length);
    expect(await page.locator('#servers .server').first().getAttribute('data-url')).toBe(be.url);

    // Steady state under load: every slot held, three waiting, for long enough to be read.
    const held = Array.from({ length: 4 }, (_, i) => get(`${gw.url}/api/live/hold-${i}?ms=3000`, { dispatcher: agent }));
    await until(() => be.stats().inflight_now === 4, 5000, 'slots held');
    const waiting = Array.from({ length: 3 }, (_, i) => get(`${gw.url}/api/items/wait-${i}`, { dispatcher: agent, headers: { 'x-request-id': `waiter-${i}` } }));
    await until(async () => (await json(`${gw.adminUrl}/status`)).queue.waiting === 3, 5000, 'three waiting');
    await page.waitForFunction(() => document.getElementById('queue-waiting')!.textContent === '3' && document.getElementById('slots-busy')!.textContent === '4', undefined, { timeout: 5000 });
    const loaded = await json(`${gw.adminUrl}/status`);
    expect(await text(page, 'slots-busy')).toBe(String(loaded.slots.busy));
    expect(await text(page, 'slots-total')).toBe(String(loaded.slots.total));
    expect(await text(page, 'queue-waiting')).toBe(String(loaded.queue.waiting));
    expect(await page.locator('#servers .server .count').first().textContent()).toBe(`${loaded.slots.servers[0].busy}/${loaded.slots.servers[0].total}`);
    expect(await text(page, 'queue-by-priority')).toBe(`high ${loaded.queue.by_priority.high}`);
    const reportsRow = page.locator('#top-routes tr[data-route="reports"]');
    await reportsRow.waitFor({ timeout: 5000 });
    expect(await reportsRow.locator('td').nth(2).textContent()).toBe('4');
    await Promise.all([...held, ...waiting]);

    // Keep traffic flowing and watch the page follow it.
    const before = { renders: await renders(page), requests: Number(await text(page, 'requests-total')), points: Number(await page.locator('#chart-load').getAttribute('data-points')) };
    let stop = false;
    let sent = 0;
    const load = (async () => {
      const workers = Array.from({ length: 8 }, async (_, w) => {
        for (let i = 0; !stop && i < 500; i++) {
          await get(`${gw.url}/api/items/${w}-${i}?ms=${20 + (i % 5) * 40}`, { dispatcher: agent });
          sent++;
        }
      });
      await Promise.all(workers);
    })();
    await page.waitForFunction((n) => Number(document.getElementById('requests-total')!.textContent) >= n + 20, before.requests, { timeout: 10_000 });
    await page.waitForFunction((p) => Number(document.getElementById('chart-load')!.getAttribute('data-points')) >= p + 2, before.points, { timeout: 10_000 });
    stop = true;
    await load;
    expect(sent).toBeGreaterThan(20);
    expect(await renders(page)).toBeGreaterThan(before.renders + 1);
    expect(Number(await text(page, 'requests-total'))).toBeGreaterThan(before.requests);
    const rows = page.locator('#slow .wf-row');
    expect(await rows.count()).toBeGreaterThan(0);
    // The slowest recent requests are the held ones (3 s upstream) and the waiters behind them.
    const slowIds = await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-request-id')));
    expect(slowIds.filter((id) => id?.startsWith('waiter-'))).toHaveLength(3);
    expect(await page.locator('#slow .seg-queue').count()).toBeGreaterThan(0);
    expect(await page.locator('#slow .seg-upstream').count()).toBeGreaterThan(0);
    expect(await page.locator('#top-routes tr[data-route="items"]').count()).toBe(1);
    expect(await page.locator('#chart-wait polyline').count()).toBe(2);
    expect(await page.locator('#conn').textContent()).toBe('live');

    await page.waitForTimeout(1100);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: resolve(ARTIFACTS, 'dashboard.png'), fullPage: true });

    const origin = new URL(gw.adminUrl).origin;
    expect(fetched.length).toBeGreaterThan(0);
    expect(fetched.filter((url) => !url.startsWith(origin))).toEqual([]);
    expect(problems).toEqual([]);
    await page.close();
  });
});
