/**
 * An HTML report served from a run folder shows no server paths, as .json/.csv/.txt files do: report.html names the
 * model and NSD folders relative to the run folder ('../../opt/models/sd' when they lie outside the root) and its
 * warnings quote absolute paths (the session-gap warning's "looked for /…/betas_session05.hdf5"); before, HTML got
 * the root-relative rewrite only and every path outside the root reached the client. The rewrite goes by context so
 * that the page still works: the marker is escaped in text and attributes, a JSON data block stays JSON, inline
 * scripts (a regular expression literal looks like a path) and base64 data blocks are left alone.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { VIEWER_SCRIPT } from '../../ts/encoding/viewerScript.js';
import { SORTABLE_SCRIPT } from '../../ts/report/html.js';
import { hiddenHtml } from '../../ts/server/htmlPaths.js';
import { hiddenPaths, rootRelative, SERVER_PATH } from '../../ts/server/rootPaths.js';
import { chromiumPath, launchBrowser, NO_BROWSER } from '../helpers/browser.js';
import { serveRunFolder } from '../helpers/servedRunFolder.js';
import type { TestServer } from './helpers.js';

if (!chromiumPath) console.warn(NO_BROWSER);

const ORT = '/opt/onnxruntime/lib/libonnxruntime.so.1';
const ESCAPED = '&lt;server path&gt;';
const SCRIPT = `const re = (/foo/g); document.getElementById('ran').textContent = 'ran ' + re.source + ' ' + JSON.parse(document.getElementById('cfg').textContent).ort;`;
const BASE64 = 'AAAA/opt/x+/tmp/y/zz==';

/** A report as the reconstruct and encoding reports write one, with paths in each place a path can be. */
function report(root: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>r</title><style>.a{color:#123}</style></head><body>
<!-- written from ${ORT} -->
<p id="paths">Model <code>../../opt-models/sd</code>, NSD <code>../world/nsd</code> (paths relative to this run folder).</p>
<div class="warning" id="warn"><strong>Warning:</strong> subject 1: session 5 has no betas (looked for /data/nsd/betas_session05.hdf5 or .nii.gz); ${root}/world/nsd/x.hdf5 was read</div>
<p><img id="img" src="images/a.png" title="${ORT}" alt='read ${root}/world/model/unet.onnx'> <a id="up" href="../run2/report.html">other run</a> <a id="url" href="https://example.org/a/b">site</a> 1/2 it/s</p>
<script type="application/json" id="cfg">{"ort": "${ORT}", "nsd": "${root}/world/nsd", "label": "a/b", "n": 1}</script>
<script type="application/octet-stream" id="vol">${BASE64}</script>
<p id="ran">not run</p>
<script>${SCRIPT}</script>
</body></html>
`;
}

describe('hiddenHtml', () => {
  const root = '/srv/root';
  // (RootFolder's rewrites, for a root that need not exist)
  const paths = { hidden: (t: string) => hiddenPaths(t, [root]), shown: (t: string) => rootRelative(t, [root]), holds: (p: string) => p === root || p.startsWith(`${root}/`) };

  it('hides paths outside the root in text, comments and attributes, with the marker escaped', () => {
    const out = hiddenHtml(report(root), `${root}/run1/report.html`, paths);
    expect(out).not.toContain(ORT);
    expect(out).not.toContain('/data/nsd');
    expect(out).not.toContain('opt-models');
    expect(out).not.toContain(`${root}/`);
    expect(out).toContain(`<!-- written from ${ESCAPED} -->`);
    expect(out).toContain(`Model <code>${ESCAPED}</code>, NSD <code>../world/nsd</code>`);
    expect(out).toContain(`(looked for ${ESCAPED} or .nii.gz); world/nsd/x.hdf5 was read`);
    expect(out).toContain(`title="${ESCAPED}" alt='read world/model/unet.onnx'`);
    // inside the root, a URL, a fraction and units: as they were
    expect(out).toContain('href="../run2/report.html"');
    expect(out).toContain('href="https://example.org/a/b">site</a> 1/2 it/s');
    expect(out).not.toContain('<server path>');
  });

  it('rewrites a JSON block string by string (still JSON), and leaves inline scripts, styles and data blocks as they were', () => {
    const out = hiddenHtml(report(root), `${root}/run1/report.html`, paths);
    const cfg = /<script type="application\/json" id="cfg">([^<]*)<\/script>/.exec(out)![1];
    expect(JSON.parse(cfg)).toEqual({ ort: SERVER_PATH, nsd: 'world/nsd', label: 'a/b', n: 1 });
    expect(cfg).toContain('\\u003cserver path>');
    expect(out).toContain(`<script>${SCRIPT}</script>`);
    expect(out).toContain(`>${BASE64}</script>`);
    expect(out).toContain('<style>.a{color:#123}</style>');
  });

  it("leaves the reports' own scripts byte for byte", () => {
    const page = `<html><body><p>x</p><script>${SORTABLE_SCRIPT}</script><script>${VIEWER_SCRIPT}</script></body></html>`;
    expect(hiddenHtml(page, `${root}/run1/report.html`, paths)).toBe(page);
  });

  it('leaves data: URLs alone (a JPEG\'s base64 starts /9j/, after a comma)', () => {
    const page = `<img src="data:image/jpeg;base64,/9j/4AAQSkZJRg/ABAQ=="><script type="application/json">{"img": "data:image/jpeg;base64,/9j/4AAQ/x"}</script>`;
    expect(hiddenHtml(page, `${root}/r/report.html`, paths)).toBe(page);
  });

  // (before, a path after '&quot;' (a report's <pre> of a config, an attribute's escaped quote) reached the client)
  it('hides a path after an HTML-escaped quote, and a climbing one, without eating the entity', () => {
    const page = `<pre>{&quot;ort&quot;: &quot;${ORT}&quot;, &quot;model&quot;: &quot;../../opt-models/sd&quot;, &quot;nsd&quot;: &quot;${root}/world/nsd&quot;, &quot;up&quot;: &quot;../run2&quot;}</pre><img title="say &quot;${ORT}&quot;" src=a.png>`;
    expect(hiddenHtml(page, `${root}/run1/report.html`, paths)).toBe(
      `<pre>{&quot;ort&quot;: &quot;${ESCAPED}&quot;, &quot;model&quot;: &quot;${ESCAPED}&quot;, &quot;nsd&quot;: &quot;world/nsd&quot;, &quot;up&quot;: &quot;../run2&quot;}</pre><img title="say &quot;${ESCAPED}&quot;" src=a.png>`,
    );
  });

  it('quotes a bare attribute value it rewrites', () => {
    expect(hiddenHtml(`<img title=${ORT} src=a.png>`, `${root}/r/report.html`, paths)).toBe(`<img title="${ESCAPED}" src=a.png>`);
  });
});

describe("a run folder's report.html, served", () => {
  let s: TestServer;
  let id: string;
  let written: string;
  beforeAll(async () => {
    ({ s, id } = await serveRunFolder((out, root) => {
      written = report(root);
      mkdirSync(out, { recursive: true });
      writeFileSync(join(out, 'report.html'), written);
    }));
  });
  afterAll(async () => s?.stop());

  it('has no server path outside the root (before: the ONNX Runtime path, /data/nsd and ../../opt-models reached the client)', async () => {
    const r = await fetch(`${s.url}/v1/jobs/${id}/files/report.html`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const text = await r.text();
    expect(Number(r.headers.get('content-length'))).toBe(Buffer.byteLength(text));
    for (const leaked of [s.root, ORT, '/data/nsd', 'opt-models']) expect(text).not.toContain(leaked);
    expect(text).toContain(`Model <code>${ESCAPED}</code>, NSD <code>../world/nsd</code>`);
    expect(readFileSync(join(s.root, 'run1', 'report.html'), 'utf8')).toBe(written);
  });

  it('rewrites a report over 64 MiB too (an encode report with many base64 volumes; before: served as it was)', async () => {
    const big = join(s.root, 'run1', 'big.html');
    // (a data block of 65 MiB, as the encode report embeds its volumes, before the same report)
    writeFileSync(big, `<script type="application/octet-stream" id="vol">${'QUFB'.repeat(65 << 18)}</script>\n${written}`);
    const r = await fetch(`${s.url}/v1/jobs/${id}/files/big.html`);
    expect(r.status).toBe(200);
    const text = await r.text();
    // (booleans: a failed toContain would ship the 65 MiB text to the test runner)
    for (const leaked of [s.root, ORT, '/data/nsd', 'opt-models']) expect(text.includes(leaked), leaked).toBe(false);
    expect(text.length > 65 << 20).toBe(true);
  });

  describe.skipIf(!chromiumPath)('in a real browser', () => {
    let browser: Browser;
    beforeAll(async () => {
      browser = await launchBrowser();
    });
    afterAll(async () => {
      await browser?.close();
    });

    it('shows the marker as text and still runs its script and reads its JSON block', async () => {
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      await page.goto(`${s.url}/v1/jobs/${id}/files/report.html`);
      expect(await page.locator('#paths').textContent()).toBe('Model <server path>, NSD ../world/nsd (paths relative to this run folder).');
      expect(await page.locator('#img').getAttribute('title')).toBe(SERVER_PATH);
      expect(await page.locator('#warn').textContent()).toContain('(looked for <server path> or .nii.gz); world/nsd/x.hdf5 was read');
      expect(await page.locator('#ran').textContent()).toBe(`ran foo ${SERVER_PATH}`);
      expect(await page.locator('#vol').textContent()).toBe(BASE64);
      expect(problems).toEqual([]);
      await page.close();
    });
  });
});
