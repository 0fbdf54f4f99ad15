import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { chromiumPath, launchBrowser, NO_BROWSER } from '../helpers/browser.js';
import { failingFitJob, startTestServer, until, type TestServer } from './helpers.js';

// A report served by the service loads its own files beside it: the encoding report runs NiiVue from
// report_files/niivue.umd.js. Served as application/octet-stream with nosniff, chromium refused to run it
// ("Refused to execute script … its MIME type ('application/octet-stream') is not executable") and the
// report's brain viewer did not start, although it worked when the same report was opened from disk.
if (!chromiumPath) console.warn(NO_BROWSER);

const NIIVUE = resolve('node_modules', '@niivue', 'niivue', 'dist', 'niivue.umd.js');

describe("a run folder's report with its own scripts, served", () => {
  let s: TestServer;
  let id: string;
  beforeAll(async () => {
    s = await startTestServer();
    const run = join(s.root, 'run1');
    mkdirSync(join(run, 'report_files'), { recursive: true });
    copyFileSync(NIIVUE, join(run, 'report_files', 'niivue.umd.js'));
    writeFileSync(join(run, 'report_files', 'style.css'), 'body { background: rgb(1, 2, 3); }\n');
    writeFileSync(
      join(run, 'report.html'),
      `<!doctype html><html><head><meta charset="utf-8"><title>r</title><link rel="stylesheet" href="report_files/style.css"></head><body>
<p id="out">not run</p>
<script src="report_files/niivue.umd.js"></script>
<script>document.getElementById('out').textContent = window.niivue && typeof window.niivue.Niivue === 'function' ? 'niivue loaded' : 'no niivue';</script>
</body></html>`,
    );
    // a job whose run folder is run1 (a NaN in its Y: it fails at its fit, and its folder stays readable)
    const job = await s.call('POST', '/v1/jobs', await failingFitJob(s, 'run1'));
    expect(job.status, job.text).toBe(202);
    id = job.json.id;
    await until(async () => ((await s.call('GET', `/v1/jobs/${id}`)).json.state === 'failed' ? true : undefined), 60_000, 'the job to fail');
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('serves .js and .css with their media types', async () => {
    const js = await fetch(`${s.url}/v1/jobs/${id}/files/report_files/niivue.umd.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(js.headers.get('x-content-type-options')).toBe('nosniff');
    await js.arrayBuffer();
    const css = await fetch(`${s.url}/v1/jobs/${id}/files/report_files/style.css`);
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
    await css.text();
  });

  describe.skipIf(!chromiumPath)('in a real browser', () => {
    let browser: Browser;
    beforeAll(async () => {
      browser = await launchBrowser();
    });
    afterAll(async () => {
      await browser?.close();
    });

    it("runs the report's NiiVue bundle and applies its style sheet under the report CSP", async () => {
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      const r = await page.goto(`${s.url}/v1/jobs/${id}/files/report.html`);
      expect(r?.headers()['content-security-policy']).toMatch(/connect-src data: blob:/);
      expect(await page.locator('#out').textContent()).toBe('niivue loaded');
      expect(await page.locator('body').evaluate((b) => b.ownerDocument.defaultView!.getComputedStyle(b).backgroundColor)).toBe('rgb(1, 2, 3)');
      expect(problems).toEqual([]);
      await page.close();
    });
  });
});
