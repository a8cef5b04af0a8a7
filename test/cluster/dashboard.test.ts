// The dashboard of a cluster instance names the instance and shows the cluster's slot use
// next to its own, in a real headless Chromium (as test/integration/dashboard.test.ts).
import { afterEach, describe, expect, inject, it } from 'vitest';
import { chromium } from 'playwright-core';
import { backend, json, until } from '../helpers/harness.js';
import { clusterPrefix, startInstances } from '../helpers/cluster.js';

const redisUrl = inject('redisUrl');
const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => {});
});

describe('cluster dashboard', () => {
  it('shows the instance id, the slot mode and the cluster-wide busy slots', async () => {
    const be = await backend({ slots: 10, latencyMs: 50 });
    cleanup.push(() => be.close());
    const [a, b] = await startInstances(2, { redisUrl, prefix: clusterPrefix(), backendUrl: be.url, slots: 10 });
    cleanup.push(() => a!.close(), () => b!.close());
    await until(() => [a!, b!].every((i) => i.app.cluster!.slots.mode === 'shared' && i.app.cluster!.slots.view().instances === 2), 10_000, 'both instances registered');
    const snapshot = await json(`${b!.adminUrl}/dashboard.json`);
    expect(snapshot.cluster).toMatchObject({ instance: 'b', mode: 'shared', instances: 2 });
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] });
    cleanup.push(() => browser.close());
    const page = await browser.newPage();
    await page.goto(`${b!.adminUrl}/`);
    await until(async () => /instance b · shared · cluster slots busy \d+ · 2 instances/.test(await page.locator('#cluster').textContent() ?? ''), 10_000, 'the cluster line');
    expect(await page.locator('#cluster').isVisible()).toBe(true);
  });
});
