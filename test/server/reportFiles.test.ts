import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { chromiumPath, launchBrowser, NO_BROWSER } from '../helpers/browser.js';
import { failingFitJob, startTestServer, until, TEST_TOKEN, type TestServer } from './helpers.js';

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

// A report's script could not fetch the API itself (connect-src), but it framed or opened another page of the
// service's origin (/healthz: no such policy) and called that window's fetch, which sent the session cookie: the
// job list came back (chromium, signed in with a token). Now the report frames nothing and its popups are cut off
// (COOP), while its own images and scripts still load with the cookie.
describe("a served report cannot reach the API through another window of the service's origin", () => {
  const TOKEN = TEST_TOKEN;
  let s: TestServer;
  let id: string;
  beforeAll(async () => {
    s = await startTestServer({ token: TOKEN });
    const run = join(s.root, 'run2');
    mkdirSync(join(run, 'report_files'), { recursive: true });
    writeFileSync(join(run, 'report_files', 'own.js'), 'window.ownScriptRan = true;\n');
    writeFileSync(join(run, 'report_files', 'worker.js'), 'fetch("/v1/jobs").then((r) => r.text()).then((t) => postMessage("worker " + t.slice(0, 9)), () => postMessage("worker fetch failed"));\n');
    // a 1 × 1 PNG
    writeFileSync(join(run, 'dot.png'), Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC', 'base64'));
    writeFileSync(
      join(run, 'report.html'),
      `<!doctype html><html><head><meta charset="utf-8"><title>r</title></head><body>
<img id="img" src="dot.png"><p id="own">?</p><p id="frame">pending</p><p id="popup">pending</p><p id="worker">pending</p>
<script src="report_files/own.js"></script>
<script>
const say = (id, text) => { document.getElementById(id).textContent = text; };
say('own', window.ownScriptRan ? 'own script ran' : 'own script blocked');
const viaWindow = (id, w) => { try { w.fetch('/v1/jobs').then((r) => r.text()).then((t) => say(id, 'reached ' + t.slice(0, 9)), () => say(id, 'fetch failed')); } catch (e) { say(id, 'blocked'); } };
const f = document.createElement('iframe');
f.src = '/healthz';
f.onload = () => viaWindow('frame', f.contentWindow);
document.body.appendChild(f);
setTimeout(() => { if (document.getElementById('frame').textContent === 'pending') say('frame', 'blocked'); }, 1500);
const w = window.open('/healthz');
setTimeout(() => (w ? viaWindow('popup', w) : say('popup', 'blocked')), 1500);
try { const k = new Worker('report_files/worker.js'); k.onmessage = (e) => say('worker', e.data); k.onerror = () => say('worker', 'blocked'); } catch (e) { say('worker', 'blocked'); }
</script></body></html>`,
    );
    const job = await s.call('POST', '/v1/jobs', await failingFitJob(s, 'run2'), { authorization: `Bearer ${TOKEN}` });
    expect(job.status, job.text).toBe(202);
    id = job.json.id;
    await until(async () => ((await s.call('GET', `/v1/jobs/${id}`, undefined, { authorization: `Bearer ${TOKEN}` })).json.state === 'failed' ? true : undefined), 60_000, 'the job to fail');
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('serves HTML with a policy that frames nothing, starts no worker, and its own opener policy', async () => {
    const r = await fetch(`${s.url}/v1/jobs/${id}/files/report.html`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-security-policy')).toMatch(/; frame-src 'none'; worker-src 'none'; object-src 'none';/);
    expect(r.headers.get('cross-origin-opener-policy')).toBe('same-origin');
    await r.text();
  });

  describe.skipIf(!chromiumPath)('in a real browser, signed in', () => {
    let browser: Browser;
    beforeAll(async () => {
      browser = await launchBrowser();
    });
    afterAll(async () => {
      await browser?.close();
    });

    it('reaches the API neither through a frame, a popup nor a worker, and still loads its own image and script', async () => {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(`${s.url}/`);
      const signIn = await page.evaluate(async (token) => (await fetch('v1/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) })).status, TOKEN);
      expect(signIn).toBe(204);
      await page.goto(`${s.url}/v1/jobs/${id}/files/report.html`);
      await page.waitForFunction(() => ['frame', 'popup', 'worker'].every((k) => document.getElementById(k)!.textContent !== 'pending'), undefined, { timeout: 10_000 });
      const text = (k: string) => page.locator(`#${k}`).textContent();
      expect(await text('frame')).toBe('blocked');
      expect(await text('popup')).toBe('blocked');
      expect(await text('worker')).toBe('blocked');
      expect(await text('own')).toBe('own script ran');
      expect(await page.$eval('#img', (i) => (i as HTMLImageElement).naturalWidth)).toBe(1);
      await context.close();
    });
  });
});
