import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { newJobId, type JobRunner, type JobSpec, type RunnerReadiness } from '../../ts/server/jobs/JobRunner.js';
import { JobBoard } from '../../ts/server/jobs/jobBoard.js';
import type { JobView } from '../../ts/server/jobs/types.js';
import { artifactPath, chromiumPath, launchBrowser, NO_BROWSER } from '../helpers/browser.js';
import { startTestServer, type TestServer } from './helpers.js';

// The web page while a job runs, in a real browser, against a runner the test drives (no job process): what the
// page shows of a running job, how it takes a user's click while progress streams in, and the units of a
// finished job's metrics.
if (!chromiumPath) console.warn(NO_BROWSER);

const STAGES = ['world', 'extract', 'features', 'decoders', 'zonly', 'img2img', 'evaluate', 'report'];

/** Jobs start when submitted and stay running until the test ends them; cancel() is recorded. */
class ScriptedRunner implements JobRunner {
  readonly board: JobBoard;
  /** @param clock the board's (seconds), for a test that reads jobs as of a time it sets */
  constructor(clock?: () => number) {
    this.board = new JobBoard(clock);
  }
  readonly cancelled: string[] = [];
  async submit(spec: JobSpec): Promise<JobView> {
    this.board.add({ id: spec.id, kind: spec.kind, out: spec.outShown, stages: STAGES }, spec.out);
    this.board.started(spec.id);
    return this.board.get(spec.id)!;
  }
  async cancel(id: string): Promise<JobView | undefined> {
    this.cancelled.push(id);
    this.board.finish(id, 'cancelled', { error: { name: 'CancelledError', message: 'cancelled' } });
    return this.board.get(id);
  }
  queueDepth(): number {
    return 0;
  }
  async ready(): Promise<RunnerReadiness> {
    return { ok: true, detail: 'scripted' };
  }
  async close(): Promise<void> {}
}

describe.skipIf(!chromiumPath)('the web page while a job runs', () => {
  let s: TestServer;
  let runner: ScriptedRunner;
  let browser: Browser;
  beforeAll(async () => {
    runner = new ScriptedRunner();
    s = await startTestServer({ runner });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await s?.stop();
  });

  const submit = async (page: Page, out: string): Promise<string> => {
    await page.locator('#body').fill(JSON.stringify({ kind: 'demo', out }));
    await page.locator('#submit').click();
    await page.locator('#submitted').filter({ hasText: 'submitted demo-' }).waitFor();
    return ((await page.locator('#submitted').textContent()) ?? '').replace('submitted ', '');
  };

  it("shows the selected job's state, stage, progress and message as they change, not as they were at submission", async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await page.goto(`${s.url}/`);
    const id = await submit(page, 'live1');
    await page.locator('#detail-body').filter({ hasText: `${id} · demo · running` }).waitFor();
    expect(await page.locator('#detail-progress').textContent()).toBe('starting…');
    expect(await page.locator(`#jobs tr[data-id="${id}"] td:nth-child(4)`).textContent()).toBe('starting…');
    runner.board.progress(id, { stage: 'world', index: 1, stages: 8, fraction: 0.25, message: 'stimuli: 386/1544 images' });
    await page.locator('#detail-progress').filter({ hasText: 'stimuli: 386/1544 images' }).waitFor();
    expect(await page.locator('#detail-progress').textContent()).toMatch(/^stage 1\/8 world · 25%/);
    expect(await page.locator(`#jobs tr[data-id="${id}"] td:nth-child(4)`).textContent()).toBe('1/8 world');
    runner.board.finish(id, 'failed', { error: { name: 'Error', message: 'the world build ran out of disk' } });
    await page.locator('#detail-body').filter({ hasText: `${id} · demo · failed` }).waitFor();
    expect(await page.locator('#detail-body .problems').textContent()).toBe('the world build ran out of disk');
    expect(await page.locator('#detail-progress').count()).toBe(0);
    await page.close();
  });

  it('takes a Cancel click held for a quarter of a second while progress streams in', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await page.goto(`${s.url}/`);
    const id = await submit(page, 'live2');
    let fraction = 0;
    const ticker = setInterval(() => runner.board.progress(id, { stage: 'img2img', index: 6, stages: 8, fraction: (fraction = Math.min(1, fraction + 0.002)) }), 20);
    try {
      await page.locator(`#jobs tr[data-id="${id}"] progress`).waitFor();
      // where the button is, read in one step (the page may be redrawing the row meanwhile)
      const box = await page.evaluate((sel) => {
        const r = document.querySelector(sel)!.getBoundingClientRect();
        return { x: r.x, y: r.y, width: r.width, height: r.height };
      }, `#jobs tr[data-id="${id}"] button.cancel`);
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      await page.mouse.down();
      await page.waitForTimeout(250); // a person's click: the press and the release are apart
      await page.mouse.up();
      await page.locator(`#jobs tr[data-id="${id}"] td.state.cancelled`).waitFor({ timeout: 10_000 });
    } finally {
      clearInterval(ticker);
    }
    expect(runner.cancelled).toContain(id);
    await page.close();
  });

  it("shows a finished job's identification metrics in %, as the report does, with the units named", async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await page.goto(`${s.url}/`);
    const id = await submit(page, 'live3');
    runner.board.finish(id, 'done', {
      result: {
        testImages: 8,
        metrics: {
          zonly: { PixCorr: 0.7724, SSIM: 0.9244, 'Pixels(2WI)': 1, 'DemoNet(2WI)': 0.9642857, 'EffNet-B': 0.81 },
          final: { PixCorr: 0.9259, SSIM: 0.949, 'Pixels(2WI)': 0.998, 'DemoNet(2WI)': 1, 'EffNet-B': 0.7 },
          better: { PixCorr: 'higher', SSIM: 'higher', 'Pixels(2WI)': 'higher', 'DemoNet(2WI)': 'higher', 'EffNet-B': 'lower' },
        },
      },
    });
    await page.locator('#detail-body #metrics').waitFor();
    const rows = await page.$$eval('#detail-body #metrics tr', (trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent)));
    expect(rows).toEqual([
      ['', 'z-only', 'final'],
      ['PixCorr', '0.772', '0.926'],
      ['SSIM', '0.924', '0.949'],
      ['Pixels(2WI) %', '100.0', '99.8'],
      ['DemoNet(2WI) %', '96.4', '100.0'],
      ['EffNet-B ↓', '0.810', '0.700'],
    ]);
    expect(await page.locator('#detail-body').textContent()).toMatch(/two-way identification \(chance 50%/);
    await page.screenshot({ path: artifactPath('serve-page-metrics.png') });
    await page.close();
  });

  it("shows beside a metric's value the images it left out of its mean (no correlation), and the test images the means are over", async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await page.goto(`${s.url}/`);
    const id = await submit(page, 'live-left-out');
    runner.board.finish(id, 'done', {
      result: {
        testImages: 8,
        metrics: {
          zonly: { PixCorr: 0.7724, 'Pixels(2WI)': 1 },
          final: { PixCorr: 0.9259, 'Pixels(2WI)': null },
          better: { PixCorr: 'higher', 'Pixels(2WI)': 'higher' },
          images: 8,
          leftOut: { zonly: { PixCorr: 1, 'Pixels(2WI)': 0 }, final: { PixCorr: 0, 'Pixels(2WI)': 8 } },
        },
      },
    });
    await page.locator('#detail-body #metrics').waitFor();
    const rows = await page.$$eval('#detail-body #metrics tr', (trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent)));
    // (a metric every image left out has no mean: its cell says why it is empty)
    expect(rows).toEqual([
      ['', 'z-only', 'final'],
      ['PixCorr', '0.772 (1 left out)', '0.926'],
      ['Pixels(2WI) %', '100.0', '(8 left out)'],
    ]);
    expect(await page.locator('#metrics-left-out').textContent()).toBe('left out: images with no correlation (a uniform image or a constant feature row), left out of that mean.');
    expect(await page.locator('#detail-body').textContent()).toMatch(/Means over the 8 test images\./);
    await page.close();
  });

  it("shows a finished encode job's summary under it: counts, then mean r, r / √NC, mean r / mean √NC and the voxels over the ceiling floor per feature set, labelled", async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    // an encode job on the runner (this root has no data: submitted through the page, its preflight refuses it)
    const id = newJobId('encode');
    await runner.submit({ id, kind: 'encode', out: join(s.root, 'enc-live'), outShown: 'enc-live', input: {} as never });
    await page.goto(`${s.url}/`);
    await page.locator(`#jobs tr[data-id="${id}"]`).click();
    runner.board.finish(id, 'done', {
      result: {
        report: 'report.html',
        encoding: {
          voxels: 1508, trainImages: 400, trainRows: 1200, testImages: 40, noiseCeiling: true,
          featureSets: [
            { name: 'z', model: 'ridge', features: 6400, meanR: 0.2114, meanRNormalised: 0.4023, voxelsOverCeiling: 731, ratioOfMeans: 0.3312 },
            { name: 'c', model: 'ridge', features: 768, meanR: -0.0123, meanRNormalised: null, voxelsOverCeiling: 731, ratioOfMeans: null },
            { name: 'z+c', model: 'banded', features: 7168, meanR: 0.2561, meanRNormalised: 0.4511, voxelsOverCeiling: 1204, ratioOfMeans: 0.3587 },
          ],
        },
      },
    });
    await page.locator('#detail-body #encoding-sets').waitFor();
    expect(await page.locator('#encoding-facts').textContent()).toBe('1,508 voxels · 1,200 training trials (of 400 images) · 40 test images · noise ceiling: yes');
    const rows = await page.$$eval('#encoding-sets tr', (trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent)));
    expect(rows).toEqual([
      ['feature set', 'model', 'features', 'mean r', 'mean r / √NC', 'mean r / mean √NC', 'voxels NC > 1%'],
      ['z', 'ridge', '6,400', '0.211', '0.402', '0.331', '731'],
      ['c', 'ridge', '768', '−0.012', '–', '–', '731'],
      ['z+c', 'banded ridge (joint)', '7,168', '0.256', '0.451', '0.359', '1,204'],
    ]);
    expect(await page.locator('#encoding').textContent()).toMatch(/held-out Pearson r on the test images, averaged over every voxel of the mask/);
    expect(await page.locator('#open-report').count()).toBe(1);
    await page.screenshot({ path: artifactPath('serve-page-encode.png') });
    await page.close();
  });

  it('says on its row and in the run panel that a job is no longer known after a restart, stops asking for it, and follows the others', async () => {
    const before = new ScriptedRunner();
    let a: TestServer | undefined = await startTestServer({ runner: before }, s.root);
    const port = Number(new URL(a.url).port);
    let b: TestServer | undefined;
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const asked: string[] = [];
    page.on('request', (r) => asked.push(new URL(r.url()).pathname));
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    try {
      await page.goto(`${a.url}/`);
      const id = await submit(page, 'lost1');
      before.board.progress(id, { stage: 'world', index: 1, stages: 8, fraction: 0.5 });
      const row = (id: string) => page.locator(`#jobs tr[data-id="${id}"]`);
      await row(id).locator('td:nth-child(4)').filter({ hasText: '1/8 world' }).waitFor();
      // the service restarts on the same port, its job list empty
      await a.stop();
      a = undefined;
      const after = new ScriptedRunner();
      b = await startTestServer({ runner: after, port }, s.root);
      await row(id).locator('td.state.gone').waitFor({ timeout: 20_000 });
      expect(await row(id).locator('td.state').textContent()).toBe('unknown');
      expect(await row(id).locator('td:nth-child(4)').textContent()).toBe('no longer known to the service');
      expect(await row(id).locator('button.cancel, progress').count()).toBe(0);
      const note = (await page.locator('#detail-gone').textContent()) ?? '';
      expect(note).toContain(`The service no longer knows job ${id}: it has restarted`);
      expect(note).toMatch(/in memory only, with or without Redis/);
      // it is not asked for again
      const asks = () => asked.filter((p) => p.includes(`/v1/jobs/${id}`)).length;
      const n = asks();
      await page.waitForTimeout(3_000);
      expect(asks()).toBe(n);
      // a job on the restarted service is followed live as ever
      const id2 = await submit(page, 'lost2');
      after.board.progress(id2, { stage: 'extract', index: 2, stages: 8, fraction: 0.3, message: 'after the restart' });
      await page.locator('#detail-progress').filter({ hasText: 'after the restart' }).waitFor();
      expect(await row(id2).locator('td:nth-child(4)').textContent()).toBe('2/8 extract');
      expect(await row(id).locator('td.state').textContent()).toBe('unknown');
      // and one submitted there by another client comes to the list by itself
      const id3 = newJobId('demo');
      await after.submit({ id: id3, kind: 'demo', out: join(s.root, 'lost3'), outShown: 'lost3', input: {} as never });
      await row(id3).locator('td.state.running').waitFor({ timeout: 10_000 });
      expect(pageErrors).toEqual([]);
    } finally {
      await page.close();
      await a?.stop();
      await b?.stop();
    }
  });

  it('lists a job submitted elsewhere (not from this page) while it is open, and follows it', async () => {
    // (before, the page asked for the list only when it loaded and at sign-in: the row never came)
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const listed = page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/jobs');
    await page.goto(`${s.url}/`);
    await listed;
    const id = newJobId('demo');
    await runner.submit({ id, kind: 'demo', out: join(s.root, 'elsewhere1'), outShown: 'elsewhere1', input: {} as never });
    const row = page.locator(`#jobs tr[data-id="${id}"]`);
    await row.waitFor({ timeout: 10_000 });
    runner.board.progress(id, { stage: 'extract', index: 2, stages: 8, fraction: 0.5, message: 'from the CLI' });
    await row.locator('td:nth-child(4)').filter({ hasText: '2/8 extract' }).waitFor({ timeout: 10_000 });
    runner.board.finish(id, 'cancelled', { error: { name: 'CancelledError', message: 'cancelled' } });
    await row.locator('td.state.cancelled').waitFor({ timeout: 10_000 });
    await page.close();
  });

  it("says a running stage that has reported nothing for the rate's window has stalled, instead of its last ETA", async () => {
    // (before, a job whose worker died showed 'ETA 12 s' for ever: no progress event came to change it)
    let now = 0;
    const clocked = new ScriptedRunner(() => now);
    const t = await startTestServer({ runner: clocked }, s.root);
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    try {
      await page.goto(`${t.url}/`);
      const id = await submit(page, 'stall1');
      const at = (seconds: number, fraction: number) => {
        now = seconds;
        clocked.board.progress(id, { stage: 'img2img', index: 6, stages: 8, fraction });
      };
      at(0, 0);
      at(1, 0.1);
      at(11, 0.2); // 0.01 of the stage a second: 80 s left
      const pct = page.locator(`#jobs tr[data-id="${id}"] td:nth-child(5) span`);
      await pct.filter({ hasText: '20% · ETA 1:20' }).waitFor();
      now = 21; // read 10 s on: 70 s left
      await pct.filter({ hasText: '20% · ETA 1:10' }).waitFor({ timeout: 10_000 });
      now = 45; // 34 s without an update
      await pct.filter({ hasText: '20% · no progress for 34 s' }).waitFor({ timeout: 10_000 });
      expect(await page.locator('#detail-progress').textContent()).toBe('stage 6/8 img2img · 20% · no progress for 34 s');
      // the first update after the stall has no pace yet (the gap is not one), the next has that since the stall
      at(46, 0.3);
      await pct.filter({ hasText: /^ 30%/ }).waitFor();
      at(48, 0.32);
      await pct.filter({ hasText: /^ 32% · ETA / }).waitFor();
    } finally {
      await page.close();
      await t.stop();
    }
  });

  it('keeps every row current with 8 jobs running: a few followed live, the rest by the poll, which never sticks', async () => {
    // (before, every running job had its own event stream: past the browser's 6 connections to a host, the list's
    // poll waited for ever, its flag stuck, no later poll went out, and the rows of the unfollowed jobs froze)
    const many = new ScriptedRunner();
    const t = await startTestServer({ runner: many }, s.root);
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    try {
      const ids: string[] = [];
      for (let i = 0; i < 8; i++) {
        const id = newJobId('demo');
        await many.submit({ id, kind: 'demo', out: join(s.root, `many${i}`), outShown: `many${i}`, input: {} as never });
        ids.push(id);
      }
      await page.goto(`${t.url}/`);
      const stage = (id: string) => page.locator(`#jobs tr[data-id="${id}"] td:nth-child(4)`);
      for (const id of ids) await stage(id).waitFor();
      for (const id of ids) many.board.progress(id, { stage: 'extract', index: 2, stages: 8, fraction: 0.5 });
      for (const id of ids) await stage(id).filter({ hasText: '2/8 extract' }).waitFor({ timeout: 10_000 });
      // and again: the poll still goes out
      for (const id of ids) many.board.progress(id, { stage: 'features', index: 3, stages: 8, fraction: 0.1 });
      for (const id of ids) await stage(id).filter({ hasText: '3/8 features' }).waitFor({ timeout: 10_000 });
      // a job that ends while not followed live shows how it ended
      many.board.finish(ids[7], 'cancelled', { error: { name: 'CancelledError', message: 'cancelled' } });
      await page.locator(`#jobs tr[data-id="${ids[7]}"] td.state.cancelled`).waitFor({ timeout: 10_000 });
      expect(pageErrors).toEqual([]);
    } finally {
      await page.close();
      await t.stop();
    }
  });

  it("keeps at most 3 event streams open, the selected job's among them: selecting an unfollowed job closes another's, and a queued job's closes once it is no longer selected", async () => {
    // (before, the selected job's stream came on top of the 3 running jobs' — a 4th connection of the browser's 6 —
    // and a stream closed only when its job ended, so each job selected while queued kept one)
    const jobsRunner = new ScriptedRunner();
    const t = await startTestServer({ runner: jobsRunner }, s.root);
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    // every EventSource the page opens, counted until the page closes it
    await context.addInitScript(() => {
      const w = window as unknown as { EventSource: typeof EventSource; streamsOpen: () => string[]; mostOpen: number };
      const Native = w.EventSource;
      const open = new Set<EventSource>();
      w.mostOpen = 0;
      w.streamsOpen = () => [...open].map((es) => decodeURIComponent(/\/v1\/jobs\/([^/]+)\/events$/.exec(es.url)![1]));
      w.EventSource = class extends Native {
        constructor(url: string | URL, init?: EventSourceInit) {
          super(url, init);
          open.add(this);
          w.mostOpen = Math.max(w.mostOpen, open.size);
        }
        override close() {
          open.delete(this);
          super.close();
        }
      };
    });
    const page = await context.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    type Counted = { streamsOpen: () => string[]; mostOpen: number };
    const open = () => page.evaluate(() => (window as unknown as Counted).streamsOpen().sort());
    const mostOpen = () => page.evaluate(() => (window as unknown as Counted).mostOpen);
    const row = (id: string) => page.locator(`#jobs tr[data-id="${id}"]`);
    try {
      const running: string[] = [];
      for (let i = 0; i < 5; i++) {
        const id = newJobId('demo');
        await jobsRunner.submit({ id, kind: 'demo', out: join(s.root, `streams${i}`), outShown: `streams${i}`, input: {} as never });
        running.push(id);
      }
      const queued = newJobId('demo');
      jobsRunner.board.add({ id: queued, kind: 'demo', out: 'streams-q', stages: STAGES }, join(s.root, 'streams-q'));
      await page.goto(`${t.url}/`);
      for (const id of [...running, queued]) await row(id).waitFor();
      await page.waitForFunction(() => (window as unknown as Counted).streamsOpen().length === 3);
      const followed = await open();
      const unfollowed = running.find((id) => !followed.includes(id))!;

      // selecting a running job not followed: it is followed live, and another stream closes for it
      await row(unfollowed).click();
      await page.waitForFunction((id) => (window as unknown as Counted).streamsOpen().includes(id), unfollowed);
      expect(await open()).toHaveLength(3);
      jobsRunner.board.progress(unfollowed, { stage: 'extract', index: 2, stages: 8, fraction: 0.5, message: 'live' });
      await page.locator('#detail-progress').filter({ hasText: 'live' }).waitFor();

      // a queued job selected is followed too (it may start at any moment), within the limit; once another job is
      // selected its stream closes (it is not running)
      await row(queued).click();
      await page.waitForFunction((id) => (window as unknown as Counted).streamsOpen().includes(id), queued);
      expect(await open()).toHaveLength(3);
      await row(unfollowed).click();
      await page.waitForFunction((id) => !(window as unknown as Counted).streamsOpen().includes(id), queued);
      // and the list's poll (every 3 s), answered, opens no more than the limit either
      const polled = () => page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/jobs');
      await polled();
      await polled();
      expect(await open()).toHaveLength(3);
      expect(await mostOpen()).toBe(3);
      expect(pageErrors).toEqual([]);
    } finally {
      await context.close();
      await t.stop();
    }
  });

  it('fits a narrow window: one column, the submit form and its button within the page', async () => {
    const page = await browser.newPage({ viewport: { width: 700, height: 900 } });
    await page.goto(`${s.url}/`);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(700);
    for (const sel of ['#body', '#submit', '#jobs']) {
      const box = (await page.locator(sel).boundingBox())!;
      expect(box.x + box.width, sel).toBeLessThanOrEqual(700);
    }
    await page.screenshot({ path: artifactPath('serve-page-narrow.png'), fullPage: true });
    await page.close();
  });

  it("shows a finished run's gallery as original, z-only, final per test image, labelled, and only the selected job's", async () => {
    // a 1×1 PNG under each name a reconstruction writes (images/<id>_000.png, _001.png, _org.png, _z.png)
    const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==', 'base64');
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await page.goto(`${s.url}/`);
    const ids: string[] = [];
    for (const [out, images] of [['gal1', ['00068', '00086']], ['gal2', ['00320']]] as const) {
      const id = await submit(page, out);
      mkdirSync(join(s.root, out, 'images'), { recursive: true });
      for (const image of images) for (const suffix of ['000', '001', 'org', 'z']) writeFileSync(join(s.root, out, 'images', `${image}_${suffix}.png`), png);
      runner.board.finish(id, 'done', { result: { report: 'report.html' } });
      ids.push(id);
    }
    await page.locator(`#jobs tr[data-id="${ids[0]}"] td.state.done`).waitFor();
    // the first job, then at once the second: only the second's gallery may end up in the panel
    await page.locator(`#jobs tr[data-id="${ids[0]}"]`).click();
    await page.locator(`#jobs tr[data-id="${ids[1]}"]`).click();
    await page.locator('#detail-body .gallery img').first().waitFor();
    await page.waitForTimeout(500);
    expect(await page.$$eval('#detail-body .gallery img', (imgs) => imgs.map((i) => i.getAttribute('alt')))).toEqual([
      '00320: original',
      '00320: z-only',
      '00320: final (seed 0)',
    ]);
    await page.locator(`#jobs tr[data-id="${ids[0]}"]`).click();
    await page.locator('#detail-body figcaption').nth(1).waitFor();
    expect(await page.locator('#detail-body figcaption').allTextContents()).toEqual(['00068', '00086']);
    expect(await page.$$eval('#detail-body .gallery img', (imgs) => imgs.map((i) => i.getAttribute('alt')!.split(': ')[1]))).toEqual([
      'original', 'z-only', 'final (seed 0)', 'original', 'z-only', 'final (seed 0)',
    ]);
    expect(await page.locator('#detail-body').textContent()).toContain('Each test image: original · z-only · final (seed 0).');
    await page.close();
  });

  it('offers a ready example of every job kind but batch, each one valid as it stands (reconstruct, encode and ridge-fit refused only for the data this root lacks)', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await page.goto(`${s.url}/`);
    const kinds = await page.$$eval('#example option', (os) => os.map((o) => o.getAttribute('value')));
    expect(kinds).toEqual(['demo', 'reconstruct', 'encode', 'ridge-fit']);
    for (const kind of kinds) {
      await page.selectOption('#example', kind);
      const body = JSON.parse(await page.locator('#body').inputValue());
      expect(body.kind).toBe(kind);
      await page.locator('#submit').click();
      if (kind === 'reconstruct' || kind === 'encode') {
        // reconstruct and encode configs are preflighted at submission: this root has none of the data they name,
        // and the problems are about that data only, not the body's form
        await page.locator('#problems').filter({ hasText: 'does not exist' }).waitFor();
        const problems = (await page.locator('#problems').textContent())!.split('\n');
        expect(problems).toContain('body.config: model folder models/sd-v1-4-onnx does not exist');
        expect(problems).toContain('body.config: NSD root nsd does not exist');
        expect(problems.every((p) => p.startsWith('body.config: '))).toBe(true);
        continue;
      }
      if (kind === 'ridge-fit') {
        // a ridge fit's inputs are checked at submission too: this root has no X.npy or Y.npy
        await page.locator('#problems').filter({ hasText: 'X.npy' }).waitFor();
        const problems = (await page.locator('#problems').textContent())!.split('\n');
        expect(problems).toEqual(['x', 'y'].map((f) => expect.stringMatching(new RegExp(`^body\\.config\\.${f}\\b.*${f.toUpperCase()}\\.npy.*(not found|does not exist)`))));
        continue;
      }
      await page.locator('#submitted').filter({ hasText: `submitted ${kind}-` }).waitFor();
      expect(await page.locator('#problems').textContent()).toBe('');
    }
    await page.close();
  });
});
