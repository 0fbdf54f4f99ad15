import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { demoRunConfig, demoRunStale, demoRunStaleReason, impliedForcePlan, runDemo, type DemoResult } from '../../ts/demo/runDemo.js';
import { stageRecipe } from '../../ts/pipeline/runFolder.js';
import { readWorldManifest, worldDamage, worldKey } from '../../ts/demo/worldManifest.js';
import { outputRecords } from '../../ts/pipeline/outputRecords.js';
import { reconstruct } from '../../ts/pipeline/reconstruct.js';
import { runFileNamed } from '../../ts/pipeline/runFiles.js';
import { filesUnder } from '../helpers/filesUnder.js';
import { artifactPath, chromiumPath, imageStates, launchBrowser, NO_BROWSER, openReport } from '../helpers/browser.js';
import { buildInfo } from '../../ts/native/buildInfo.js';

// The demo world at small settings: the whole pipeline (miniature NSD → RidgeCV → native sampler on the
// closed-form ONNX models → metrics → run folder) in a few seconds.
let demo: DemoResult;
const out = mkdtempSync(join(tmpdir(), 'bl-demo-'));
const settings = { out, testImages: 24, seeds: 2, steps: 20 };

beforeAll(async () => {
  demo = await runDemo(settings);
});

describe('brainlatent demo', () => {
  it('writes the run folder with report, metrics, decoders and images named as in the reference code', () => {
    const run = join(out, 'run');
    for (const f of ['run.json', 'report.html', 'metrics.csv', 'metrics.json', 'metrics_per_image.csv', 'decoders/z.safetensors', 'decoders/c.safetensors', 'decoders/c_target_r.npy']) {
      expect(existsSync(join(run, f)), f).toBe(true);
    }
    const id = JSON.parse(readFileSync(join(run, 'data', 'image_ids.json'), 'utf8')).test[0] as number;
    const idx = String(id - 1).padStart(5, '0');
    for (const f of [`${idx}_org.png`, `${idx}_z.png`, `${idx}_000.png`]) expect(existsSync(join(run, 'images', f)), f).toBe(true);
    const html = readFileSync(join(run, 'report.html'), 'utf8');
    expect(html).toContain(`images/${idx}_org.png`);
    expect(html).not.toMatch(/src="(\/|https?:|file:)/);
    // paths are shown relative to the run folder, never as the absolute path of the world
    expect(html).toContain('<code>../world/model</code>');
    expect(html).not.toContain(out);
    // --force removes exactly what a run writes: every file of a finished run folder has a name a run gives its outputs
    const manifest = JSON.parse(readFileSync(join(run, 'run.json'), 'utf8')) as { config: unknown; versions: Record<string, string> };
    expect(manifest.versions).toMatchObject({ blas: buildInfo().blas, engineThreads: String(buildInfo().threads), onnxruntime: expect.any(String) });
    expect(filesUnder(run).filter((f) => !f.startsWith('cache/') && !runFileNamed(f, manifest.config))).toEqual([]);
    // img2img's progress record goes when the stage finishes, its folder too (an empty one stayed)
    expect(readdirSync(join(run, 'stages')).filter((e) => e.includes('partial'))).toEqual([]);
  });

  it('reconstructs recognisable images, and img2img improves on the z-only ones', () => {
    const m = demo.run.metrics!;
    expect(m.final['Pixels(2WI)']).toBeGreaterThanOrEqual(0.9);
    expect(m.final['Pixels(2WI)']).toBeGreaterThan(m.zonly['Pixels(2WI)']);
    expect(m.final.PixCorr).toBeGreaterThan(m.zonly.PixCorr);
    expect(m.zonly['Pixels(2WI)']).toBeGreaterThan(0.8);
    expect(demo.world.prior).toBe('world');
  });

  it('records what the report shows about the decoders, and warns when chosen alphas crowd the grid', () => {
    const s = JSON.parse(readFileSync(join(out, 'run', 'decoders', 'summary.json'), 'utf8'));
    for (const t of ['z', 'c']) {
      const d = s[t];
      expect(d.alphas).toEqual([1, 10, 100, 1e3, 1e4, 1e5]);
      // counts over the targets that vary; the constant ones are counted apart
      expect(d.alphaCounts.reduce((a: number, b: number) => a + b, 0) + d.constantTargets).toBe(d.targets);
      expect(d.cvCurve).toHaveLength(6);
      // the edge shares count the targets with a positive CV score only: the demo's noise targets score <= 0 at every
      // alpha and are best at the grid's top, which a wider grid would not change
      expect(d.unpredictableTargets).toBeGreaterThan(0);
      expect(d.edgeHigh).toBeLessThan(d.alphaCounts[5] / (d.targets - d.constantTargets));
      expect(d.warnings.length > 0).toBe(d.edgeHigh > 0.05 || d.edgeLow > 0.05);
      // the chart counts the same targets as the edge shares (it counted the unpredictable ones too: 17% at 1e5 for z,
      // coloured 'grid edge, > 5%', beside 0.9% in the table)
      const predictable = d.predictableAlphaCounts.reduce((a: number, b: number) => a + b, 0);
      expect(predictable + d.unpredictableTargets + d.constantTargets).toBe(d.targets);
      expect(d.predictableAlphaCounts[5] / predictable).toBe(d.edgeHigh);
      expect(d.predictableAlphaCounts[0] / predictable).toBe(d.edgeLow);
    }
    // the demo's c has padding positions that never vary: they are not what crowds the grid
    expect(s.c.constantTargets).toBeGreaterThan(1000);
    // so the demo's own grid (1..1e5) draws no warning, and its report none
    expect(demo.run.warnings).toEqual([]);
    const html = readFileSync(join(out, 'run', 'report.html'), 'utf8');
    // the report says how many targets the features do not predict, and words the edge row as the choice it counts
    for (const t of ['z', 'c']) {
      const d = s[t];
      const n = (v: number) => v.toLocaleString('en');
      const predictable = d.targets - d.constantTargets - d.unpredictableTargets;
      expect(html).toContain(`<tr><td>targets with CV R² ≤ 0 at every α</td><td>${n(d.unpredictableTargets)} <small>`);
      expect(html).toContain(
        `<tr><td>of the ${n(predictable)} targets with CV R² &gt; 0 at some α, the share that chose the grid's smallest / largest α</td>` +
          `<td>${(100 * d.edgeLow).toFixed(1)}% / ${(100 * d.edgeHigh).toFixed(1)}%</td></tr>`,
      );
    }
  });

  it('dry run: estimates each stage from short probes, close to what the stages took', async () => {
    // a dry run of the same config in a fresh run folder: every stage planned and probed
    const cfg = JSON.parse(readFileSync(join(out, 'run', 'run.json'), 'utf8')).config;
    const dry = await reconstruct({ ...cfg, out: join(out, 'dry') }, { dryRun: true });
    expect(existsSync(join(out, 'dry', 'run.json'))).toBe(false); // a dry run writes nothing
    const est = dry.estimates!;
    expect(Object.keys(est)).toEqual(['extract', 'features', 'decoders', 'zonly', 'img2img', 'evaluate', 'report']);
    for (const e of Object.values(est)) {
      expect(e.seconds).toBeGreaterThan(0);
      expect(e.basis.length).toBeGreaterThan(10);
    }
    expect(dry.plan!.join('\n')).toMatch(/run  img2img .*~.*per U-Net call/);
    // the work is counted exactly: a measured per-call cost × the U-Net calls the plan runs × seeds × batches
    expect(est.img2img.basis).toMatch(/ s per U-Net call .* × \d+ U-Net calls × 2 seed\(s\) × \d+ images ÷ \d+ per batch$/);
    // The estimate is the probe's per-call and encode/decode costs times the work counted, plus the load
    // stage's share: checked as arithmetic. (Its closeness to the run's wall time is a timing of a machine
    // whose load changes between the two — vitest runs other files meanwhile — so it is not asserted).
    const m = /: ([\d.]+) s per U-Net call.* \+ ([\d.]+) s encode\/decode, × (\d+) U-Net calls × (\d+) seed\(s\) × (\d+) images ÷ (\d+) per batch$/.exec(est.img2img.basis)!;
    expect(m).not.toBeNull();
    const [perStep, fixed, steps, seeds, images, perBatch] = m.slice(1).map(Number);
    const batches = images / perBatch;
    expect(batches).toBe(3);
    const work = batches * seeds * (fixed + steps * perStep);
    expect(est.img2img.seconds).toBeGreaterThanOrEqual(work - batches * seeds * (0.0005 + steps * 0.0005));
  }, 300_000);

  it('reuses an unchanged world; another parameter or damaged files rebuild it', async () => {
    expect(demo.world.reused).toBe(false);
    const m = (await readWorldManifest(join(out, 'world')))!;
    expect(m.files.length).toBeGreaterThan(10);
    expect(worldDamage(join(out, 'world'), m)).toBeNull();
    expect(worldDamage(join(out, 'world'), { ...m, files: [...m.files, { path: 'model/unet/gone.onnx', size: 1 }] })).toMatch(/gone.onnx is missing/);
    const options = m.options as Record<string, unknown>;
    expect(worldKey(options)).toBe(m.key);
    expect(worldKey({ ...options, noiseSd: 0.8 })).not.toBe(m.key);
    expect(worldKey(options, 'another code version')).not.toBe(m.key);
    // nothing changed: the world is reused and the run resumes, every stage skipped
    const again = await runDemo(settings);
    expect(again.world.reused).toBe(true);
    expect(again.run.stages.every((s) => s.status === 'skipped')).toBe(true);
    expect(again.run.warnings).toEqual(demo.run.warnings);
    // a run made from another build of the world (or that says nothing of one) is redone, not resumed
    const stamp = join(out, 'run', 'demo-world.json');
    const made = readFileSync(stamp, 'utf8');
    expect(JSON.parse(made)).toEqual({ key: m.key, createdAt: m.createdAt });
    const config = demoRunConfig(settings, again.world);
    expect(await demoRunStale(out, again.world, config)).toBe(false);
    writeFileSync(stamp, JSON.stringify({ key: m.key, createdAt: '2000-01-01T00:00:00.000Z' }));
    expect(await demoRunStale(out, again.world, config)).toBe(true);
    rmSync(stamp);
    expect(await demoRunStale(out, again.world, config)).toBe(true);
    writeFileSync(stamp, made);
    expect(await demoRunStale(out, { ...again.world, reused: false }, config)).toBe(true);
    // a stage a newer brainlatent made: the demo's own folder is redone, and says why
    const marker = join(out, 'run', 'stages', 'features.json');
    const kept = readFileSync(marker, 'utf8');
    writeFileSync(marker, JSON.stringify({ ...JSON.parse(kept), recipe: stageRecipe('features') + 1, ranWith: { brainlatent: '9.0.0' } }));
    expect(await demoRunStaleReason(out, again.world, config)).toBe('the run was made by a newer brainlatent (features, 9.0.0)');
    writeFileSync(marker, kept);
    expect(await demoRunStaleReason(out, again.world, config)).toBeNull();
  });

  it("a dry run with other settings says the demo starts the run over, not that --force was given (it named --force)", async () => {
    const dry = await runDemo({ ...settings, seeds: 1 }, { dryRun: true });
    const text = dry.run.plan!.join('\n');
    expect(text).toMatch(/^the run's settings changed, so the run starts over \(no --force needed\): it first removes the previous run's outputs in .*run \(.*run\.json.*\); other files there stay$/m);
    expect(text).not.toContain('--force:');
    const forced = await runDemo({ ...settings, seeds: 1 }, { dryRun: true, force: true });
    expect(forced.run.plan!.join('\n')).toMatch(/^--force: first removes the previous run's outputs in /m);
    expect(impliedForcePlan(['a', "--force: first removes x; other files there stay"], 'the world was built anew')).toEqual([
      'a',
      'the world was built anew, so the run starts over (no --force needed): it first removes x; other files there stay',
    ]);
  }, 300_000);

  it('the report shows a dash for a decoder statistic that is undefined (null in summary.json), not a failure', async () => {
    const copy = join(out, 'run-null');
    cpSync(join(out, 'run'), copy, { recursive: true });
    const summaryPath = join(copy, 'decoders', 'summary.json');
    const summary = JSON.parse(readFileSync(summaryPath, 'utf8')) as Record<string, Record<string, unknown>>;
    summary.z.meanCvScore = null;
    summary.z.testFeatureCorrelation = null;
    writeFileSync(summaryPath, JSON.stringify(summary));
    // (the decoders' marker vouches for the file as edited: a hand edit is otherwise a damaged output, and the decoders rerun)
    const markerPath = join(copy, 'stages', 'decoders.json');
    const marker = JSON.parse(readFileSync(markerPath, 'utf8')) as { outputFiles: Record<string, unknown> };
    Object.assign(marker.outputFiles, await outputRecords(copy, ['decoders/summary.json']));
    writeFileSync(markerPath, JSON.stringify(marker));
    rmSync(join(copy, 'stages', 'report.json'));
    const cfg = { ...JSON.parse(readFileSync(join(copy, 'run.json'), 'utf8')).config, out: copy };
    const r = await reconstruct(cfg);
    // (the decoders keep the edited summary; the stages after them see another marker, as after a rerun, and run)
    expect(r.stages.filter((s) => s.status === 'ran').map((s) => s.stage)).toEqual(['zonly', 'img2img', 'evaluate', 'report']);
    expect((JSON.parse(readFileSync(summaryPath, 'utf8')) as typeof summary).z.meanCvScore).toBeNull();
    const html = readFileSync(join(copy, 'report.html'), 'utf8');
    expect(html).toMatch(/at the chosen α: mean over all targets[^<]*<\/td><td>–/);
    expect(html).toMatch(/mean r\(decoded, true\) over test images<\/td><td>– <small>/);
  });

  it('resumes: a second run skips every stage; force redoes them', async () => {
    const cfg = JSON.parse(readFileSync(join(out, 'run', 'run.json'), 'utf8')).config;
    const again = await reconstruct(cfg);
    expect(again.stages.every((s) => s.status === 'skipped')).toBe(true);
    const dryAgain = await reconstruct(cfg, { dryRun: true });
    expect(dryAgain.plan!.join('\n')).toMatch(/skip extract/);
    expect(dryAgain.estimates!.img2img.seconds).toBe(0);
  });

  it('an img2img stage interrupted after some samples computes only the rest on the next run, with the same images', async () => {
    const cfg = { ...JSON.parse(readFileSync(join(out, 'run', 'run.json'), 'utf8')).config, out: join(out, 'resume') };
    const ac = new AbortController();
    const first = await reconstruct(cfg, {
      signal: ac.signal,
      // (block 0 = the first 4 × batchSize images: once seed 1 samples them, seed 0's are written and recorded; stop then)
      onProgress: (p) => p.stage === 'img2img' && p.message === 'seed 1' && ac.abort(),
    }).then(() => null, (e: Error) => e);
    expect(first?.message).toMatch(/img2img cancelled/);
    const partial = readdirSync(join(cfg.out, 'stages', 'img2img.partial'));
    expect(partial).toHaveLength(1);
    expect(JSON.parse(readFileSync(join(cfg.out, 'stages', 'img2img.partial', partial[0]), 'utf8')).done).toEqual([[0, 0]]);
    const reused = Math.min(24, 4 * cfg.img2img.batchSize);
    // the dry run estimates only the samples still to make, and says how many are kept
    const dry = await reconstruct(cfg, { dryRun: true });
    // (the time on the samples to compute, and their count apart: it read '× 36 samples left of 2 seed(s) × 24 images', one product)
    expect(dry.estimates!.img2img.basis).toMatch(new RegExp(` U-Net calls × ${48 - reused} samples to compute ÷ \\d+ per batch \\(${48 - reused} = 2 seed\\(s\\) × 24 images − ${reused} kept from an interrupted run, stages/img2img\\.partial/\\)$`));
    const full = await reconstruct({ ...cfg, out: join(out, 'resume-fresh') }, { dryRun: true });
    expect(full.estimates!.img2img.basis).toMatch(/× 2 seed\(s\) × 24 images ÷ /);
    const counts: { message?: string; done: number; reused?: number }[] = [];
    const again = await reconstruct(cfg, { onProgress: (p) => p.stage === 'img2img' && p.count && counts.push({ message: p.message, ...p.count }) });
    const img2img = again.stages.find((s) => s.stage === 'img2img')!;
    expect(img2img.status).toBe('ran');
    expect(img2img.summary?.reusedSamples).toBe(reused);
    // the progress says which samples were reused, so a bar's rate and ETA count only the ones computed now
    expect(counts.find((c) => /done before/.test(c.message ?? ''))).toMatchObject({ done: reused, reused });
    expect(counts[counts.length - 1]).toMatchObject({ done: 48, reused });
    expect(existsSync(join(cfg.out, 'stages', 'img2img.partial'))).toBe(false);
    // every sample as in the uninterrupted run of the same config
    const samples = readdirSync(join(out, 'run', 'images')).filter((f) => /_\d{3}\.png$/.test(f));
    expect(samples).toHaveLength(48);
    for (const f of samples) expect(readFileSync(join(cfg.out, 'images', f)).equals(readFileSync(join(out, 'run', 'images', f))), f).toBe(true);
  }, 300_000);

  it('gives a test image the same final reconstruction alone, in a subset, in another order or batch size', async () => {
    const cfg = JSON.parse(readFileSync(join(out, 'run', 'run.json'), 'utf8')).config;
    const ids = JSON.parse(readFileSync(join(out, 'run', 'data', 'image_ids.json'), 'utf8')).test as number[];
    // the full run lists the test images in the order they were seen; nsd.testImages takes the N smallest ids
    const sorted = [...ids].sort((a, b) => a - b);
    expect(ids.slice(0, 2)).not.toEqual(sorted.slice(0, 2));
    expect(ids.slice(0, 5)).not.toEqual(sorted.slice(0, 5));
    const sample = (run: string, id: number, k: number) => readFileSync(join(run, 'images', `${String(id - 1).padStart(5, '0')}_${String(k).padStart(3, '0')}.png`));
    for (const [n, batchSize] of [[2, cfg.img2img.batchSize], [5, 1]]) {
      const sub = { ...cfg, out: join(out, `subset-${n}`), nsd: { ...cfg.nsd, testImages: n }, img2img: { ...cfg.img2img, batchSize } };
      // (with batch size 1 the stage runs blocks of 4 images: its progress must still only go forward)
      const fractions: number[] = [];
      const evaluate: { fraction: number; message?: string }[] = [];
      const r = await reconstruct(sub, {
        onProgress: (p) => {
          if (p.stage === 'img2img' && p.status === 'running') fractions.push(p.fraction);
          if (p.stage === 'evaluate' && p.status === 'running') evaluate.push({ fraction: p.fraction, message: p.message });
        },
      });
      // the evaluation's progress goes forward through each set's metrics and network passes (the ground truth's once)
      for (let i = 1; i < evaluate.length; i++) expect(evaluate[i].fraction, JSON.stringify(evaluate)).toBeGreaterThanOrEqual(evaluate[i - 1].fraction);
      const said = evaluate.map((e) => e.message);
      expect(said).toContain('z-only: SSIM');
      expect(said.filter((m) => / ground truth \d+ of /.test(m ?? '')).every((m) => m!.startsWith('z-only: '))).toBe(true);
      for (const net of cfg.evaluation.networks as { name: string }[]) expect(said).toContain(`seed ${cfg.img2img.seeds - 1}: ${net.name}: reconstructions ${n} of ${n} images`);
      expect(said[said.length - 1]).toBe(`seed ${cfg.img2img.seeds - 1}`);
      // the result counts the images reconstructed (it said all 24 of the subject's), as a dry run does, and so does a resume
      expect(r.testImages).toBe(n);
      expect((await reconstruct(sub, { dryRun: true })).testImages).toBe(n);
      const resumed = await reconstruct(sub);
      expect(resumed.stages.every((s) => s.status === 'skipped')).toBe(true);
      expect(resumed.testImages).toBe(n);
      expect(fractions.length).toBeGreaterThan(2);
      for (let i = 1; i < fractions.length; i++) expect(fractions[i], `img2img progress ${fractions.join(', ')}`).toBeGreaterThanOrEqual(fractions[i - 1]);
      expect(JSON.parse(readFileSync(join(sub.out, 'data', 'image_ids.json'), 'utf8')).test).toEqual(sorted.slice(0, n));
      for (const id of sorted.slice(0, n)) {
        for (let k = 0; k < cfg.img2img.seeds; k++) expect(sample(sub.out, id, k).equals(sample(join(out, 'run'), id, k)), `image ${id} seed ${k} (${n} test images)`).toBe(true);
      }
    }
  }, 300_000);

  it('a dry run with force keeps the current world (the run would rebuild it) and plans every stage', async () => {
    const before = (await readWorldManifest(join(out, 'world')))!;
    const dry = await runDemo(settings, { dryRun: true, force: true });
    expect(dry.world.reused).toBe(true);
    expect((await readWorldManifest(join(out, 'world')))!.createdAt).toBe(before.createdAt);
    expect(dry.run.plan!.filter((l) => /^run  /.test(l)).map((l) => l.split(/\s+/)[1])).toEqual(['extract', 'features', 'decoders', 'zonly', 'img2img', 'evaluate', 'report']);
  }, 300_000);
});

describe.skipIf(!chromiumPath)(`the reconstruction report in a real browser${chromiumPath ? '' : ` (${NO_BROWSER})`}`, () => {
  let browser: Awaited<ReturnType<typeof launchBrowser>>;
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => browser?.close());

  it('opens from file:// with no console error or failed request, every image loaded, the page within 1400 px', async () => {
    const { page, problems } = await openReport(browser, join(out, 'run', 'report.html'));
    // the gallery's images load as they scroll into view (NSD's 1,000 × 7 PNGs otherwise load at once); imageStates scrolls
    expect(await page.locator('table.gallery img[loading="lazy"]').count()).toBe(24 * 4);
    const imgs = await imageStates(page);
    expect(imgs.length).toBe(24 * 4); // original, z-only, two seeds per test image
    expect(imgs.filter((i) => i.width === 0)).toEqual([]);
    expect(await page.locator('svg.marks').count()).toBe(6); // three charts per decoder
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(1400);
    await page.screenshot({ path: artifactPath('reconstruction-report.png'), fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
  });

  it('shows the published rows in their own columns, and a caption naming only the columns shown', async () => {
    const { page } = await openReport(browser, join(out, 'run', 'report.html'));
    const heads = await page.locator('#metrics thead th').allTextContents();
    expect(heads).toEqual(['reconstruction', 'PixCorr', 'SSIM', 'Pixels(2WI) %', 'DemoNet(2WI) %']);
    const caption = await page.locator('#metrics caption').textContent();
    expect(caption).toContain('Pixels(2WI) and DemoNet(2WI): two-way identification in %');
    expect(caption).not.toMatch(/EffNet|SwAV|AlexNet/);
    const tn = await page.locator('#published tbody tr', { hasText: 'Takagi & Nishimoto (CVPR 2023)' }).locator('td').allTextContents();
    expect(tn.slice(2)).toEqual(['–', '–', '83.0', '83.0', '76.0', '77.0', '–', '–']);
    // this run's rows name its test set too (the cell was empty), and the test set column reads as text, from the left
    const ours = await page.locator('#published tbody tr', { hasText: 'this run (synthetic): final' }).locator('td.set').textContent();
    expect(ours).toBe(`${demo.run.testImages} test images, subject 1`);
    // (the demo's world is no NSD and its model no Stable Diffusion: said at the top and beside the published rows; review s45)
    expect(await page.locator('h1').textContent()).toBe('Reconstruction, subject 1 (synthetic data)');
    expect(await page.locator('#synthetic').textContent()).toMatch(/^Synthetic run: the betas are synthetic: .* not NSD; the model is the demo world's closed-form stand-in .* not Stable Diffusion\. Its metrics measure the method on this world; they are not comparable with the published NSD results\.$/);
    expect(await page.locator('#published caption').textContent()).toContain('its rows are not comparable with the published ones');
    expect(await page.locator('#published thead th.set').evaluate((th) => th.ownerDocument.defaultView!.getComputedStyle(th).textAlign)).toBe('left');
    // the run's own values are in % in the page, not fractions
    const final = await page.locator('#metrics tbody tr').nth(1).locator('td').allTextContents();
    expect(Number(final[3])).toBeCloseTo(100 * demo.run.metrics!.final['Pixels(2WI)'], 1);
    await page.close();
  });

  it('sorts the per-image table by a metric, both ways', async () => {
    const { page } = await openReport(browser, join(out, 'run', 'report.html'));
    const table = page.locator('#per-image');
    const header = table.locator('thead th[title="final: SSIM"]');
    const col = Number(await header.getAttribute('data-col'));
    const column = async () => (await table.locator(`tbody tr td:nth-child(${col + 1})`).evaluateAll((tds) => tds.map((td) => Number((td as HTMLElement).dataset.v))));
    const before = await column();
    await header.click();
    const up = await column();
    expect(up).toEqual([...before].sort((a, b) => a - b));
    expect(await header.getAttribute('aria-sort')).toBe('ascending');
    await header.click();
    expect(await column()).toEqual([...before].sort((a, b) => b - a));
    // the images move with their row
    const firstId = await table.locator('tbody tr').first().locator('td.id').textContent();
    expect(await table.locator('tbody tr').first().locator('img').first().getAttribute('src')).toBe(`images/${firstId}_org.png`);
    await page.close();
  });
});
