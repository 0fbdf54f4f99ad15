import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { artifactPath, chromiumPath, launchBrowser, loadImages, NO_BROWSER } from '../helpers/browser.js';
import { startTestServer, type TestServer } from './helpers.js';

// The web page in a real browser (Debian's chromium through playwright-core): submit the demo-world example
// from the form, watch it run over Server-Sent Events, open its report; no console errors anywhere.
if (!chromiumPath) console.warn(NO_BROWSER);

describe.skipIf(!chromiumPath)('the web page', () => {
  let s: TestServer;
  let browser: Browser;
  beforeAll(async () => {
    s = await startTestServer();
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await s?.stop();
  });

  it('submits a demo-world job, shows its progress live, then its metrics, gallery and report', async () => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    const problems: string[] = [];
    context.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()} (${m.location().url})`));
    context.on('weberror', (e) => problems.push(`page error: ${e.error().message}`));
    context.on('response', (r) => r.status() >= 400 && problems.push(`HTTP ${r.status()}: ${r.url()}`));
    context.on('requestfailed', (r) => {
      // the page closes a job's event stream once its final event has come: the browser calls that an abort
      if (/\/events$/.test(new URL(r.url()).pathname) && r.failure()?.errorText === 'net::ERR_ABORTED') return;
      problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`);
    });
    // record every stage the job table shows while the job runs
    await context.addInitScript(() => {
      const seen: string[] = [];
      (window as unknown as { stagesSeen: string[] }).stagesSeen = seen;
      document.addEventListener('DOMContentLoaded', () => {
        const jobs = document.getElementById('jobs');
        if (!jobs) return;
        new MutationObserver(() => {
          const cell = document.querySelector('#jobs tr td:nth-child(4)');
          const text = cell?.textContent ?? '';
          if (text && seen[seen.length - 1] !== text) seen.push(text);
        }).observe(jobs, { childList: true, subtree: true });
      });
    });
    const page = await context.newPage();
    await page.goto(`${s.url}/`);
    await page.waitForFunction(() => document.getElementById('health')?.textContent === 'service ok');
    const body = JSON.parse(await page.locator('#body').inputValue());
    expect(body).toMatchObject({ kind: 'demo' });
    // the ready example, made as small as a demo world may be (the same stages, in a fraction of the time)
    await page.locator('#body').fill(JSON.stringify({ ...body, sessions: 4, testImages: 4, steps: 4 }, null, 2));
    await page.locator('#submit').click();
    await page.locator('#submitted').filter({ hasText: 'submitted demo-' }).waitFor();
    await page.locator('#jobs tr td.state.done').waitFor({ timeout: 540_000 });

    const stages = (await page.evaluate(() => (window as unknown as { stagesSeen: string[] }).stagesSeen)).map((t) => t.replace(/^\d+\/\d+ /, ''));
    const order = ['world', 'extract', 'features', 'decoders', 'zonly', 'img2img', 'evaluate', 'report'];
    const positions = order.map((st) => stages.indexOf(st));
    expect(positions.every((p) => p >= 0), `stages shown: ${stages.join(', ')}`).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);

    await page.locator('#jobs tr.job').first().click();
    await page.locator('#detail-body table').waitFor();
    expect(await page.locator('#detail-body table').textContent()).toMatch(/PixCorr/);
    await page.locator('#detail-body .gallery img').first().waitFor();
    await page.waitForFunction(() => [...document.querySelectorAll('#detail-body .gallery img')].every((i) => (i as HTMLImageElement).complete));
    const widths = await page.$$eval('#detail-body .gallery img', (imgs) => imgs.map((i) => (i as HTMLImageElement).naturalWidth));
    expect(widths.length).toBeGreaterThanOrEqual(4 * 3);
    expect(widths.every((w) => w > 0)).toBe(true);
    await page.screenshot({ path: artifactPath('serve-page.png'), fullPage: true });

    const [report] = await Promise.all([context.waitForEvent('page'), page.locator('#open-report').click()]);
    await report.waitForLoadState('load');
    expect(report.url()).toMatch(/\/v1\/jobs\/demo-[^/]+\/files\/run\/report\.html$/);
    expect(await report.locator('body').textContent()).toMatch(/PixCorr/);
    await loadImages(report);
    const reportImages = await report.$$eval('img', (imgs) => imgs.map((i) => (i as HTMLImageElement).naturalWidth));
    expect(reportImages.length).toBeGreaterThan(0);
    expect(reportImages.every((w) => w > 0)).toBe(true);
    await report.screenshot({ path: artifactPath('serve-report.png'), fullPage: true });
    expect(problems).toEqual([]);
    await context.close();
  }, 600_000);
});
