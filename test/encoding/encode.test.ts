import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveEncodeConfig } from '../../ts/config/encode.js';
import { encode, encodeResult, encodeStages, type EncodeResult } from '../../ts/encoding/encode.js';
import { listUnetLayers } from '../../ts/encoding/unetLayers.js';
import { readNifti, readNiftiHeader, writeNifti } from '../../ts/io/nifti.js';
import { writeNpy } from '../../ts/io/npy.js';
import { roiPath } from '../../ts/nsd/paths.js';
import { makeWorld, type World } from './world.js';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { runFileNamed } from '../../ts/pipeline/runFiles.js';
import { PNG } from 'pngjs';
import type { Page } from 'playwright-core';
import type { EncodingSummary } from '../../ts/encoding/mapFiles.js';
import { mapRecordsOf } from '../../ts/encoding/report.js';
import { artifactPath, chromiumPath, imageStates, launchBrowser, NO_BROWSER, openReport } from '../helpers/browser.js';
import { filesUnder } from '../helpers/filesUnder.js';
import { pearson } from '../helpers/pearson.js';
import { buildInfo } from '../../ts/native/buildInfo.js';

let world: World;
let result: EncodeResult;
let layers: string[];


beforeAll(async () => {
  world = await makeWorld();
  const all = await listUnetLayers(world.model);
  const tanh = all.filter((l) => l.opType === 'Tanh').map((l) => l.name);
  layers = [tanh[0], tanh[tanh.length - 1]];
  result = await encode({
    out: join(world.tmp, 'out'),
    nsd: { root: world.nsd.root, subject: 1, zscore: 'none' },
    model: world.model,
    imageSize: 64,
    featureSets: [
      { name: 'z', kind: 'z' },
      { name: 'c', kind: 'c' },
      { name: 'zc', kind: 'zc', strength: 0.5, steps: 4, guidance: 1 },
      { name: 'unet', kind: 'unet', layers, timesteps: [200, 800], pool: 2 },
    ],
    ridge: { alphas: '1e-1:1e5:13' },
    banded: [{ name: 'z+c', sets: ['z', 'c'], nIter: 20 }],
    noiseCeiling: 'estimate',
  });
}, 300_000);

afterAll(() => world?.cleanup());

const regionR = (set: string, region: string) => result.featureSets.find((f) => f.name === set)!.regions.find((r) => r.atlas === 'streams' && r.region === region)!.meanR;

describe('encode on the miniature NSD', () => {
  it('z is most accurate in early voxels, c in ventral voxels', () => {
    expect(regionR('z', 'early')).toBeGreaterThan(0.6);
    expect(regionR('z', 'early')).toBeGreaterThan(regionR('c', 'early') + 0.03);
    expect(regionR('c', 'ventral')).toBeGreaterThan(0.6);
    expect(regionR('c', 'ventral')).toBeGreaterThan(regionR('z', 'ventral') + 0.2);
    // Unplanted streams are noise for every model.
    for (const f of result.featureSets) expect(Math.abs(f.regions.find((r) => r.region === 'parietal')!.meanR)).toBeLessThan(0.1);
  });

  it("every file of the run (z, c, z_c, U-Net tables, a joint model, the ceiling) has a name --force knows as a run's", () => {
    const out = join(world.tmp, 'out');
    const manifest = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as { config: unknown; versions: Record<string, string> };
    // (the engine's threads: another count may choose another of two near-tied alphas; review s45)
    expect(manifest.versions).toMatchObject({ blas: buildInfo().blas, engineThreads: String(buildInfo().threads) });
    const files = filesUnder(out).filter((f) => !f.startsWith('cache/'));
    expect(files.filter((f) => f.startsWith('maps/')).length).toBeGreaterThan(20);
    expect(files.filter((f) => !runFileNamed(f, manifest.config))).toEqual([]);
  });

  it('per-voxel accuracy tracks the planted signal-to-noise ratio', () => {
    const [X, Y] = world.truth.grid;
    const col = new Map<number, number>();
    result.mask.indices.forEach((i, j) => col.set(i, j));
    const z = result.featureSets.find((f) => f.name === 'z')!.r, c = result.featureSets.find((f) => f.name === 'c')!.r;
    const got: number[] = [], expected: number[] = [];
    const planted = new Set<number>();
    for (const v of world.truth.voxels) {
      const j = col.get(v.x + X * (v.y + Y * v.z));
      if (j === undefined) continue;
      planted.add(j);
      // Test betas average ~3 trials of noise (noiseSd² + session offsets 0.3²).
      expected.push(v.amplitude / Math.sqrt(v.amplitude ** 2 + (world.truth.noiseSd ** 2 + 0.09) / 3));
      got.push(v.space === 'latent' ? z[j] : c[j]);
    }
    expect(got.length).toBeGreaterThan(300);
    expect(pearson(got, expected)).toBeGreaterThan(0.3);
    const meanGot = got.reduce((s, v) => s + v, 0) / got.length, meanExp = expected.reduce((s, v) => s + v, 0) / expected.length;
    expect(Math.abs(meanGot - meanExp)).toBeLessThan(0.1);
    const noise = Array.from(z).filter((_, j) => !planted.has(j));
    expect(Math.abs(noise.reduce((s, v) => s + v, 0) / noise.length)).toBeLessThan(0.05);
    // The noise ceiling estimated from repetitions is high where signal was planted, low elsewhere.
    const nc = result.noiseCeiling!;
    const ncPlanted = [...planted].reduce((s, j) => s + nc[j], 0) / planted.size;
    const ncNoise = Array.from(nc).filter((_, j) => !planted.has(j)).reduce((s, v) => s + v, 0) / noise.length;
    expect(ncPlanted).toBeGreaterThan(0.5);
    expect(ncNoise).toBeLessThan(0.2);
  });

  it('banded ridge recovers the band each voxel was built from', () => {
    const b = result.banded[0];
    const [X, Y] = world.truth.grid;
    const col = new Map<number, number>();
    result.mask.indices.forEach((i, j) => col.set(i, j));
    let right = 0, total = 0;
    for (const v of world.truth.voxels) {
      const j = col.get(v.x + X * (v.y + Y * v.z))!;
      const gz = b.bandWeights.data[j * 2];
      total++;
      right += Number(v.space === 'latent' ? gz > 0.5 : gz < 0.5);
    }
    // (chance 0.5; with himalaya's candidate order 0.82 at 20 candidates, 0.83 at 30, 0.85 at 60: the rest are
    // voxels whose fit cannot tell the bands apart at this SNR)
    expect(right / total).toBeGreaterThan(0.8);
    const early = world.truth.voxels.filter((v) => v.space === 'latent').map((v) => col.get(v.x + X * (v.y + Y * v.z))!);
    const ventral = world.truth.voxels.filter((v) => v.space === 'semantic').map((v) => col.get(v.x + X * (v.y + Y * v.z))!);
    // partitions are NaN where the joint model explains nothing (the convention); average where defined
    const m = (a: Float32Array, idx: number[]) => {
      const v = idx.map((j) => a[j]).filter(Number.isFinite);
      return v.reduce((s, x) => s + x, 0) / v.length;
    };
    expect(m(b.unique.z, early)).toBeGreaterThan(m(b.unique.c, early));
    expect(m(b.unique.c, ventral)).toBeGreaterThan(m(b.unique.z, ventral));
  });

  it('computes z_c and U-Net layer features at each timestep', () => {
    const names = result.featureSets.map((f) => f.name);
    expect(names).toEqual(expect.arrayContaining(['zc', `unet:${layers[0]}@t200`, `unet:${layers[1]}@t800`, 'z+c']));
    const u = result.featureSets.find((f) => f.name === `unet:${layers[0]}@t200`)!;
    expect(u.features).toBe(8 * 2 * 2); // 8 channels pooled to 2×2
    expect(regionR('zc', 'early')).toBeGreaterThan(0.3);
  });

  it('maps round-trip through the NIfTI writer with the mask geometry', async () => {
    const ref = await readNiftiHeader(roiPath(world.nsd.root, 1, 'nsdgeneral'));
    const z = result.featureSets.find((f) => f.name === 'z')!;
    const { header, data } = await readNifti(join(world.tmp, 'out', z.map));
    expect(header.dims.slice(0, 3)).toEqual(ref.dims.slice(0, 3));
    expect(header.srow).toEqual(ref.srow);
    expect(header.sformCode).toBe(ref.sformCode);
    expect(header.qformCode).toBe(ref.qformCode);
    expect(header.pixdim.slice(1, 4)).toEqual(ref.pixdim.slice(1, 4));
    expect(header.datatype).toBe('float32');
    const inMask = new Set(result.mask.indices);
    result.mask.indices.forEach((i, j) => expect(data[i]).toBe(z.r[j]));
    let outside = 0;
    for (let i = 0; i < data.length; i++) if (!inMask.has(i)) outside += Number.isNaN(data[i]) ? 1 : 0;
    expect(outside).toBe(data.length - inMask.size);
  });

  it('writes the region CSV, mosaics and report', async () => {
    const { readFile, stat } = await import('node:fs/promises');
    const csv = await readFile(join(world.tmp, 'out', 'regions.csv'), 'utf8');
    expect(csv.split('\n')[0]).toBe('feature_set,atlas,region,label,voxels,mean_r,median_r,mean_r_over_ceiling,voxels_over_ceiling,mean_r_over_mean_sqrt_nc,constant_voxels');
    expect(csv).toMatch(/^z,streams,early,1,\d+,0\.\d+/m);
    expect(csv).toMatch(/^c,prf-visualrois,V1v,1,/m);
    const png = await readFile(join(world.tmp, 'out', result.featureSets[0].mosaic));
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    const html = await readFile(join(world.tmp, 'out', 'report.html'), 'utf8');
    for (const f of result.featureSets) expect(html).toContain(f.mosaic.replace('+', '%2B'));
    expect((await stat(join(world.tmp, 'out', 'encoding.json'))).size).toBeGreaterThan(100);
  });

  it('lists every map it wrote, named so the z_c feature set and the joint model z+c cannot be confused', async () => {
    const { readdir } = await import('node:fs/promises');
    const { existsSync } = await import('node:fs');
    const summary = JSON.parse(readFileSync(join(world.tmp, 'out', 'encoding.json'), 'utf8')) as EncodingSummary;
    const onDisk = (await readdir(join(world.tmp, 'out', 'maps'))).sort();
    expect(summary.maps.map((m) => m.file.replace('maps/', '')).sort()).toEqual(onDisk);
    expect(onDisk).toEqual(expect.arrayContaining(['zc.nii.gz', 'z+c.nii.gz', 'z+c_unique-z.nii.gz', 'z+c_unique-c.nii.gz', 'z+c_shared.nii.gz', 'noise-ceiling.nii.gz', 'z_r-over-sqrt-nc.nii.gz']));
    expect(onDisk).not.toContain('z_c.nii.gz');
    const kinds = new Set(summary.maps.map((m) => m.kind));
    expect([...kinds].sort()).toEqual(['alpha', 'band-weight', 'banded-alpha', 'banded-r', 'banded-r2', 'banded-r2-without', 'noise-ceiling', 'r', 'r-over-sqrt-nc', 'shared', 'unique']);
    for (const m of summary.maps) expect(existsSync(join(world.tmp, 'out', m.mosaic)), m.mosaic).toBe(true);
    expect(summary.partitionConvention).toMatch(/floored at 0/);
    // the report embeds every map, the anatomy and the atlases, and carries NiiVue's UMD bundle beside it
    const html = readFileSync(join(world.tmp, 'out', 'report.html'), 'utf8');
    expect(html.match(/<script type="application\/octet-stream" id="vol-map-/g)).toHaveLength(summary.maps.length);
    expect(html).toContain('id="vol-underlay"');
    expect(html.match(/id="vol-atlas-/g)).toHaveLength(2);
    expect(existsSync(join(world.tmp, 'out', 'report_files', 'niivue.umd.js'))).toBe(true);
    expect(html).toContain('id="partition-convention"');
  });

  // The alpha chosen per voxel was only in fits/<set>/best_alphas.npy: no map, no figure. Now each feature set has
  // maps/<set>_log10-alpha.nii.gz on the betas' grid (NaN outside the mask), listed, drawn and in the report.
  it('maps log10 of the alpha chosen per voxel for every feature set, on the betas grid, with its figure in the report', async () => {
    const ref = await readNiftiHeader(roiPath(world.nsd.root, 1, 'nsdgeneral'));
    const summary = JSON.parse(readFileSync(join(world.tmp, 'out', 'encoding.json'), 'utf8')) as EncodingSummary;
    const html = readFileSync(join(world.tmp, 'out', 'report.html'), 'utf8');
    const inMask = new Set(result.mask.indices);
    for (const f of result.featureSets.filter((x) => x.route !== 'banded')) {
      const record = summary.maps.find((m) => m.kind === 'alpha' && m.featureSet === f.name)!;
      expect(record, f.name).toBeDefined();
      const { header, data } = await readNifti(join(world.tmp, 'out', record.file));
      expect([header.datatype, header.dims.slice(0, 3), header.srow]).toEqual(['float32', ref.dims.slice(0, 3), ref.srow]);
      result.mask.indices.forEach((i, j) => expect(data[i]).toBeCloseTo(Math.log10(f.bestAlphas[j]), 5));
      for (let i = 0; i < data.length; i += 7) if (!inMask.has(i)) expect(data[i]).toBeNaN();
      // the grid 1e-1:1e5:13 in log10: −1, −0.5, …, 5
      for (const i of result.mask.indices) expect(Math.abs(data[i] * 2 - Math.round(data[i] * 2))).toBeLessThan(1e-5);
      const at = (a: number) => f.bestAlphas.filter((x) => Math.abs(x - a) < 1e-6 * a).length;
      expect(record.description).toContain(`(grid 1e-1 … 1e5 (13 alphas); ${at(1e5)} of ${result.voxels} voxels at its largest alpha, ${at(0.1)} at its smallest)`);
      expect(readFileSync(join(world.tmp, 'out', record.mosaic)).subarray(1, 4).toString()).toBe('PNG');
      expect(html).toContain(`src="${record.mosaic}"`);
    }
    expect(summary.maps.find((m) => m.featureSet === 'z' && m.kind === 'alpha')!.file).toBe('maps/z_log10-alpha.nii.gz');
    expect(html).toContain('<h2>Regularisation chosen by cross-validation: alpha and band weights</h2>');
  });

  // A joint model wrote only its r, γ and the partition: its alpha and held-out R² (and those of the models without
  // each set) were nowhere, so its r could be reproduced only by searching the grid. They are now written as .npy
  // and as maps, and one banded fit at the written alpha and γ gives the written r and R².
  it("writes the joint model's alpha and held-out R² (with and without each set) from which its r is reproduced", async () => {
    const { readNpy, readMatrixNpy, readIntVectorNpy } = await import('../../ts/io/npy.js');
    const { extractNsd } = await import('../../ts/nsd/extract.js');
    const { encodeExtractOptions, alignFeatures } = await import('../../ts/encoding/stages.js');
    const { BandedRidgeCV } = await import('../../ts/ridge/BandedRidgeCV.js');
    const { columnPearson, columnR2 } = await import('../../ts/encoding/metrics.js');
    const out = join(world.tmp, 'out');
    const b = result.banded[0];
    const vec = async (f: string) => (await readNpy(join(out, 'banded', 'z+c', f))).data as Float32Array;
    expect(await vec('best_alphas.npy')).toEqual(b.bestAlphas);
    expect(await vec('r2.npy')).toEqual(b.r2);
    expect(await vec('r2_without_0.npy')).toEqual(b.r2Without.z);
    expect(await vec('r2_without_1.npy')).toEqual(b.r2Without.c);
    expect(result.featureSets.find((f) => f.name === 'z+c')!.bestAlphas).toEqual(b.bestAlphas);
    // the partition is made of these R²: unique(z) = R²₊(z+c) − R²₊(c alone)
    const floor = (v: number) => Math.max(v, 0);
    b.r2.forEach((v, j) => {
      if (v > 0) expect(b.unique.z[j]).toBeCloseTo(floor(v) - floor(b.r2Without.z[j]), 6);
      expect(v).toBeLessThanOrEqual(b.r[j] ** 2 + 1e-5); // R² ≤ r² always
    });
    // the maps, as the vectors
    expect(b.maps).toMatchObject({ alpha: 'maps/z+c_log10-alpha.nii.gz', r2: 'maps/z+c_r2.nii.gz', 'r2-without-z': 'maps/z+c_r2-without-z.nii.gz', 'gamma-c': 'maps/z+c_gamma-c.nii.gz' });
    const map = async (f: string) => (await readNifti(join(out, f))).data;
    const [alpha, r2, without, gammaC] = await Promise.all([map(b.maps.alpha), map(b.maps.r2), map(b.maps['r2-without-z']), map(b.maps['gamma-c'])]);
    result.mask.indices.forEach((i, j) => {
      expect(alpha[i]).toBeCloseTo(Math.log10(b.bestAlphas[j]), 5);
      expect([r2[i], without[i], gammaC[i]]).toEqual([b.r2[j], b.r2Without.z[j], b.bandWeights.data[j * 2 + 1]]);
    });
    // one banded fit per voxel at its written alpha and γ reproduces its r and R²
    const c = result.config;
    const betas = await extractNsd(encodeExtractOptions(c));
    const ids = await readIntVectorNpy(join(out, 'features', 'embed', 'image_ids.npy'), 'ids');
    const table = async (n: 'z' | 'c') => ({ name: n, description: n, ids, x: await readMatrixNpy(join(out, 'features', 'embed', `${n}.npy`), n) });
    const [tz, tc] = [await table('z'), await table('c')];
    const rows = (role: 'training' | 'test', idsOf: Int32Array) => ({ z: alignFeatures(tz, idsOf, role, 1), c: alignFeatures(tc, idsOf, role, 1) });
    const train = rows('training', betas.trainImageIds), test = rows('test', betas.testImageIds);
    const column = (m: { data: Float32Array; rows: number; cols: number }, j: number) => ({ data: Float32Array.from({ length: m.rows }, (_, i) => m.data[i * m.cols + j]), rows: m.rows, cols: 1 });
    const best = b.r.indexOf(Math.max(...b.r));
    for (const j of [best, 0, Math.floor(b.r.length / 2)]) {
      const gammas = [[b.bandWeights.data[j * 2], b.bandWeights.data[j * 2 + 1]]];
      const m = await new BandedRidgeCV({ alphas: [b.bestAlphas[j]], gammas, groups: betas.trainImageIds, folds: c.ridge.folds, standardize: true }).fit(train, column(betas.train, j));
      const pred = m.predict(test);
      expect(columnPearson(pred, column(betas.test, j))[0], `voxel ${j}`).toBeCloseTo(b.r[j], 3);
      expect(columnR2(pred, column(betas.test, j))[0], `voxel ${j}`).toBeCloseTo(b.r2[j], 3);
    }
  });

  it('reads the map list of a folder written before it was kept (old names such as maps/z_c.nii.gz)', () => {
    const v1 = {
      format: 'brainlatent-encoding', version: 1, featureSets: [{ name: 'z', description: 'z', map: 'maps/z.nii.gz' }, { name: 'z+c', description: 'banded', map: 'maps/z_c.nii.gz' }],
      banded: [{ name: 'z+c', sets: ['z', 'c'], maps: { 'unique-z': 'maps/z_c_unique-z.nii.gz', shared: 'maps/z_c_shared.nii.gz', r: 'maps/z_c.nii.gz' } }],
    } as unknown as Parameters<typeof mapRecordsOf>[0];
    const records = mapRecordsOf(v1);
    expect(records.find((r) => r.kind === 'banded-r')).toMatchObject({ file: 'maps/z_c.nii.gz', mosaic: 'mosaics/z_c.png', banded: 'z+c' });
    expect(records.find((r) => r.kind === 'unique')).toMatchObject({ file: 'maps/z_c_unique-z.nii.gz', space: 'z' });
    expect(records.filter((r) => r.kind === 'r').map((r) => r.file)).toEqual(['maps/z.nii.gz']);
  });
});

describe.skipIf(!chromiumPath)(`the encoding report in a real browser${chromiumPath ? '' : ` (${NO_BROWSER})`}`, () => {
  let browser: Awaited<ReturnType<typeof launchBrowser>>;
  const report = () => join(world.tmp, 'out', 'report.html');
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => browser?.close());

  /** Pixels of the viewer's canvas (a screenshot: NiiVue's WebGL buffer reads back black from the page). */
  const canvasPixels = async (page: Page) => {
    const png = PNG.sync.read(await page.locator('#brain-canvas').screenshot());
    let lit = 0, warm = 0;
    for (let i = 0; i < png.data.length; i += 4) {
      const [r, g, b] = [png.data[i], png.data[i + 1], png.data[i + 2]];
      if (r + g + b > 60) lit++;
      if (r > 180 && b < 110 && r - b > 120 && !(g > 200 && r < 100)) warm++;
    }
    return { lit, warm, total: png.width * png.height };
  };

  it('opens from file:// with no console error or failed request, every figure loaded, the region table within the page', async () => {
    const { page, problems } = await openReport(browser, report());
    await page.evaluate(() => (window as unknown as { brainViewer: { ready: Promise<unknown> } }).brainViewer.ready);
    const imgs = await imageStates(page);
    const summary = JSON.parse(readFileSync(join(world.tmp, 'out', 'encoding.json'), 'utf8')) as EncodingSummary;
    expect(imgs.length).toBe(summary.maps.length);
    expect(imgs.filter((i) => i.width === 0)).toEqual([]);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(1400);
    const table = await page.locator('#region-summary').boundingBox();
    expect(table!.x + table!.width).toBeLessThanOrEqual(1400);
    await page.screenshot({ path: artifactPath('encoding-report.png'), fullPage: true, timeout: 120_000 });
    expect(problems).toEqual([]);
    await page.close();
  });

  it('draws the map over the anatomy in NiiVue, and the threshold control hides what falls below it', async () => {
    const { page, problems } = await openReport(browser, report());
    await page.evaluate(() => (window as unknown as { brainViewer: { ready: Promise<unknown> } }).brainViewer.ready);
    const before = await canvasPixels(page);
    await page.locator('#brain-canvas').screenshot({ path: artifactPath('encoding-viewer.png') });
    expect(before.lit / before.total).toBeGreaterThan(0.1); // anatomy and map, not a blank canvas
    expect(before.warm).toBeGreaterThan(200); // the r map's warm colours
    await page.locator('#threshold').evaluate((el: HTMLInputElement) => {
      el.value = el.max;
      el.dispatchEvent(new Event('input'));
    });
    const after = await canvasPixels(page);
    expect(after.warm).toBeLessThan(before.warm / 4);
    expect(after.lit / after.total).toBeGreaterThan(0.05); // the anatomy stays
    expect(problems).toEqual([]);
    await page.close();
  });

  it("answers a click with the voxel's coordinates, its value in every map and its regions", async () => {
    const { page, problems } = await openReport(browser, report());
    await page.evaluate(() => (window as unknown as { brainViewer: { ready: Promise<unknown> } }).brainViewer.ready);
    await page.selectOption('#slice-type', 'axial');
    const box = (await page.locator('#brain-canvas').boundingBox())!;
    const summary = JSON.parse(readFileSync(join(world.tmp, 'out', 'encoding.json'), 'utf8')) as EncodingSummary;
    const zMap = await readNifti(join(world.tmp, 'out', summary.maps.find((m) => m.kind === 'r' && m.featureSet === 'z')!.file));
    const [X, Y] = world.truth.grid;
    const seen: string[] = [];
    let finite = 0;
    // posterior, where the early (z-predictive) voxels are, then towards the centre
    for (const [fx, fy] of [[0.5, 0.85], [0.45, 0.8], [0.55, 0.75], [0.5, 0.5]]) {
      await page.mouse.click(box.x + fx * box.width, box.y + fy * box.height);
      const info = page.locator('#voxel-info');
      const at = await info.evaluate((el: HTMLElement) => ({ ...el.dataset, text: el.textContent ?? '' }));
      const [i, j, k] = [Number(at.i), Number(at.j), Number(at.k)];
      const expected = zMap.data[i + X * (j + Y * k)];
      if (Number.isFinite(expected)) {
        finite++;
        expect(Number(at.value)).toBeCloseTo(expected, 5);
        const shown = expected.toFixed(3);
        expect(at.text).toContain(Number(shown) === 0 ? shown.replace('-', '') : shown.replace('-', '−'));
      } else {
        expect(at.value).toBe('NaN');
      }
      expect(at.text).toMatch(/voxel \(i, j, k\) = \(\d+, \d+, \d+\) · \(x, y, z\) = \(.*\) mm/);
      expect(at.text).toMatch(/streams: .*prf-visualrois: /);
      seen.push(`${i},${j},${k}`);
    }
    expect(finite).toBeGreaterThan(0);
    expect(new Set(seen).size).toBeGreaterThan(1); // the crosshair followed the clicks
    await page.locator('#brain-canvas').screenshot({ path: artifactPath('encoding-viewer-axial-click.png') });
    expect(problems).toEqual([]);
    await page.close();
  });

  // (both per-map checks in one pass over the maps: showing a map uploads its volume again, ~1 s in software GL)
  it("starts each map at its stated threshold exactly (the figures' and captions', not a slider step below it), and shows the 'negative values (blue)' box only on maps that draw negative values", async () => {
    // (the box stayed ticked, greyed out, on held-out r maps that show r >= the threshold only)
    const html = readFileSync(report(), 'utf8');
    const { page, problems } = await openReport(browser, report());
    await page.evaluate(() => (window as unknown as { brainViewer: { ready: Promise<unknown> } }).brainViewer.ready);
    const maps = await page.locator('#viewer-config').evaluate((e) => (JSON.parse(e.textContent ?? '{}') as { maps: { threshold: number; signed: boolean; kind: string }[] }).maps);
    expect(maps.length).toBeGreaterThan(1);
    expect(maps[0].kind).toBe('r');
    expect(html).toContain('<label class="check" id="show-negative-label" hidden><input id="show-negative" type="checkbox" checked> negative values (blue)</label>');
    expect(new Set(maps.map((m) => m.signed))).toEqual(new Set([true, false]));
    for (let k = 0; k < maps.length; k++) {
      await page.evaluate((i) => (window as unknown as { brainViewer: { show(k: number): void } }).brainViewer.show(i), k);
      expect(Number(await page.locator('#threshold').inputValue()), `map ${k} (${maps[k].kind})`).toBeCloseTo(maps[k].threshold, 10);
      expect(await page.locator('#show-negative').isVisible(), `map ${k} (${maps[k].kind})`).toBe(maps[k].signed);
    }
    expect(problems).toEqual([]);
    await page.close();
  });

  it('says which file is missing when report.html is opened without its report_files folder', async () => {
    // a user copies report.html alone (an e-mail attachment): the page shows the figures, and the viewer says why it is empty
    const alone = join(world.tmp, 'report-alone');
    mkdirSync(alone, { recursive: true });
    copyFileSync(report(), join(alone, 'report.html'));
    const { page } = await openReport(browser, join(alone, 'report.html'));
    const failure = await page.evaluate(() =>
      (window as unknown as { brainViewer: { ready: Promise<unknown> } }).brainViewer.ready.then(() => 'ready', (e: Error) => e.message),
    );
    expect(failure).toMatch(/report_files\/niivue\.umd\.js/);
    expect(await page.locator('#voxel-info').textContent()).toMatch(/^The viewer could not start: NiiVue \(report_files\/niivue\.umd\.js\) did not load; keep the report_files folder beside report\.html$/);
    await page.close();
  });
});

describe('noise ceiling from ncsnr.nii.gz', () => {
  it('reads ncsnr beside the betas and reports r over the ceiling', async () => {
    const { betasDir } = await import('../../ts/nsd/paths.js');
    const [X, Y, Z] = world.truth.grid;
    const ncsnr = new Float32Array(X * Y * Z).fill(0.05);
    for (const v of world.truth.voxels) ncsnr[v.x + X * (v.y + Y * v.z)] = v.amplitude / world.truth.noiseSd;
    const ref = await readNiftiHeader(roiPath(world.nsd.root, 1, 'nsdgeneral'));
    await writeNifti(join(betasDir(world.nsd.root, 1), 'ncsnr.nii.gz'), { dims: [X, Y, Z], datatype: 'float32', srow: ref.srow, sformCode: ref.sformCode, pixdim: ref.pixdim }, ncsnr);
    const r = await encode({ out: join(world.tmp, 'nc'), nsd: { root: world.nsd.root, subject: 1, zscore: 'none', sessions: '1-4' }, model: world.model, imageSize: 64, featureSets: [{ name: 'z', kind: 'z' }], ridge: { alphas: '1e-1:1e5:7' } });
    const v = world.truth.voxels.find((x) => x.space === 'latent')!;
    const j = Array.from(r.mask.indices).indexOf(v.x + X * (v.y + Y * v.z));
    const s2 = (v.amplitude / world.truth.noiseSd) ** 2;
    // NSD's mixed-repetition ceiling: the noise term is the mean over test images of 1/n (it took 1/mean(n))
    const cache = join(world.tmp, 'nc', 'cache');
    const reps = JSON.parse(readFileSync(join(cache, readdirSync(cache)[0], 'manifest.json'), 'utf8')).counts.testRepetitions as Record<string, number>;
    expect(Object.keys(reps).length, JSON.stringify(reps)).toBeGreaterThan(1); // sessions 1-4: some test images not yet seen 3 times
    let images = 0, inverse = 0;
    for (const [n, k] of Object.entries(reps)) {
      images += k;
      inverse += k / Number(n);
    }
    expect(r.noiseCeiling![j]).toBeCloseTo(s2 / (s2 + inverse / images), 5);
    const early = r.featureSets[0].regions.find((x) => x.region === 'early')!;
    expect(early.meanRNormalised).toBeGreaterThan(early.meanR);
    expect(r.files).toContain(join('maps', 'noise-ceiling.nii.gz'));
  });
});

describe('encode on the pipeline stage machinery', () => {
  const mainConfig = () => ({
    out: join(world.tmp, 'out'),
    nsd: { root: world.nsd.root, subject: 1, zscore: 'none' as const },
    model: world.model,
    imageSize: 64,
    featureSets: [
      { name: 'z', kind: 'z' as const },
      { name: 'c', kind: 'c' as const },
      { name: 'zc', kind: 'zc' as const, strength: 0.5, steps: 4, guidance: 1 },
      { name: 'unet', kind: 'unet' as const, layers, timesteps: [200, 800], pool: 2 },
    ],
    ridge: { alphas: '1e-1:1e5:13' },
    banded: [{ name: 'z+c', sets: ['z', 'c'], nIter: 20 }],
    noiseCeiling: 'estimate',
  });

  it('runs one stage per job in dependency order, each leaving a marker', () => {
    const ids = result.stages.map((s) => s.stage);
    expect(ids).toEqual([
      'extract', 'ceiling', 'embed', 'features.zc', 'features.unet',
      'fit.z', 'fit.c', 'fit.zc', 'fit.unet.L0.t200', 'fit.unet.L0.t800', 'fit.unet.L1.t200', 'fit.unet.L1.t800',
      'banded.z+c', 'maps', 'report',
    ]);
    expect(result.stages.every((s) => s.status === 'ran')).toBe(true);
  });

  it('resumes: a second run skips every stage and returns the same results', async () => {
    const again = await encode(mainConfig());
    expect(again.stages.every((s) => s.status === 'skipped')).toBe(true);
    expect(again.featureSets.map((f) => [f.name, f.meanR])).toEqual(result.featureSets.map((f) => [f.name, f.meanR]));
    for (const [i, f] of again.featureSets.entries()) expect(f.r).toEqual(result.featureSets[i].r);
    expect(again.banded[0].unique.z).toEqual(result.banded[0].unique.z);
    const dry = await encode(mainConfig(), { dryRun: true });
    expect(dry.plan!.filter((l) => /^run  /.test(l))).toEqual([]);
  });

  // (one forced dry run, probes and all, for the two tests that ask the same question of it: ~18 s each)
  let forcedDryRun: ReturnType<typeof encode> | undefined;
  const dryRunForced = () => (forcedDryRun ??= encode(mainConfig(), { dryRun: true, force: true }));

  it('dry run: every stage to run timed by a short probe of its own work, nothing written', async () => {
    const { readdir, stat } = await import('node:fs/promises');
    const markers = async () => Promise.all((await readdir(join(world.tmp, 'out', 'stages'))).map(async (f) => [f, (await stat(join(world.tmp, 'out', 'stages', f))).mtimeMs]));
    const before = await markers();
    const dry = await dryRunForced();
    const ids = dry.stages.map((s) => s.stage);
    expect(ids).toEqual(result.stages.map((s) => s.stage));
    for (const id of ids) {
      const e = dry.estimates![id];
      expect(e.basis, id).not.toBe('');
      // the noise ceiling here is estimated from single trials: every stage does measurable work
      expect(e.seconds, id).toBeGreaterThan(0);
    }
    expect(dry.estimates!['fit.unet.L0.t200'].basis).toMatch(/ridge probe \d+×\d+ → \d+ targets/);
    expect(dry.estimates!['banded.z+c'].basis).toMatch(/with partitioning .* scaled to \d+ targets × 20 candidates/);
    expect(dry.estimates!['features.unet'].basis).toMatch(/4 table\(s\)/);
    expect(dry.plan!.filter((l) => /^ {2}\S+ +~/.test(l))).toHaveLength(ids.length);
    expect(dry.plan!.at(-1)).toMatch(/^total ~/);
    // one image count throughout: the images with betas in the sessions read, as the run embeds them
    const images = result.trainImages + result.testImages;
    expect(dry.plan!.find((l) => l.startsWith('subject '))).toMatch(new RegExp(`; ${images} images with betas in the sessions read \\(of \\d+ in the subject's design\\)`));
    expect(dry.plan!.find((l) => l.startsWith('VAE and text encoder'))).toBe(`VAE and text encoder: ${images} images`);
    expect(dry.estimates!.embed.basis).toMatch(new RegExp(` s per batch of \\d+ images \\(VAE \\+ captions\\) × [\\d.]+ batches \\(${images} images\\)$`));
    expect(await markers()).toEqual(before);
  });

  // the map probe wrote to TMPDIR: a missing one failed the whole dry run at its last probe (review s44)
  it('dry run: a temporary folder that cannot be written leaves the maps unprobed, said so, and the rest estimated', async () => {
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = join(world.tmp, 'no-such-tmp');
    try {
      const dry = await encode(mainConfig(), { dryRun: true, force: true });
      expect(dry.estimates!.maps.basis).toBe(`not probed: the temporary folder ${join(world.tmp, 'no-such-tmp')} (TMPDIR) cannot take a map (ENOENT); the run writes its maps in its own folder`);
      expect(dry.estimates!.report.basis).toMatch(/a figure drawn in/);
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
  });

  it("dry run: each fit's memory is planned at the shape the fit then had (rows, the table's columns, voxels)", async () => {
    // z and c from the model's declared sizes, z_c as wide as z, the U-Net layers from the preflight's probe run, pooled
    const dry = await dryRunForced();
    const num = (v: string) => Number(v.replace(/,/g, ''));
    const planned = new Map(
      dry.plan!.flatMap((l) => {
        const m = /^ {2}fit '[^']+' \(stage (fit\.\S+)\): route \S+, ([\d,]+) samples × ([\d,]+) features → ([\d,]+) voxels; work buffers planned at most \S+ GiB/.exec(l);
        return m ? [[m[1], [num(m[2]), num(m[3]), num(m[4])]] as const] : [];
      }),
    );
    const fits = result.stages.map((s) => s.stage).filter((id) => id.startsWith('fit.'));
    expect([...planned.keys()]).toEqual(fits);
    for (const id of fits) {
      const info = JSON.parse(readFileSync(join(world.tmp, 'out', 'fits', id.slice('fit.'.length), 'fit.json'), 'utf8')) as { features: number };
      expect(planned.get(id), id).toEqual([result.trainImages, info.features, result.voxels]);
    }
  });

  it('a stage runs on its own from the completed outputs; after it, only what depends on it reruns', async () => {
    const { runStage } = await import('../../ts/pipeline/stageRunner.js');
    const { rm } = await import('node:fs/promises');
    const c = resolveEncodeConfig(mainConfig());
    const fit = encodeStages(c).find((s) => s.id === 'fit.zc')!;
    await rm(join(c.out, 'fits', 'zc'), { recursive: true });
    const report = await runStage(c, fit, { progress: () => {} });
    expect(report.status).toBe('ran');
    const zc = result.featureSets.find((f) => f.name === 'zc')!;
    const { readNpy } = await import('../../ts/io/npy.js');
    expect((await readNpy(join(c.out, 'fits', 'zc', 'r.npy'))).data).toEqual(zc.r);
    // a stage that must run (its marker is gone) reruns, and so does every stage that depends on it
    await rm(join(c.out, 'stages', 'fit.c.json'));
    const again = await encode(c);
    expect(again.stages.filter((s) => s.status === 'ran').map((s) => s.stage)).toEqual(['fit.c', 'maps', 'report']);
    expect(again.featureSets.find((f) => f.name === 'c')!.r).toEqual(result.featureSets.find((f) => f.name === 'c')!.r);
  });

  it('reads back a folder whose maps stage kept no list (data/maps.json): the names from its encoding.json', async () => {
    const { rename } = await import('node:fs/promises');
    const list = join(world.tmp, 'out', 'data', 'maps.json');
    const fresh = await encodeResult(mainConfig());
    await rename(list, `${list}.away`);
    try {
      const old = await encodeResult(mainConfig());
      expect(old.files).toEqual(fresh.files);
      expect(old.featureSets.map((f) => [f.map, f.mosaic])).toEqual(fresh.featureSets.map((f) => [f.map, f.mosaic]));
      expect(old.banded[0].maps).toEqual(fresh.banded[0].maps);
    } finally {
      await rename(`${list}.away`, list);
    }
  });

  it('refuses a folder holding another config, says what would run in a dry run, and --force redoes everything', async () => {
    const path = join(world.tmp, 'file-feat.npy'), ids = join(world.tmp, 'file-ids.npy');
    const { readFile } = await import('node:fs/promises');
    const imageIds = JSON.parse(await readFile(join(world.tmp, 'out', 'data', 'image_ids.json'), 'utf8')) as { train: number[]; test: number[] };
    const every = [...new Set([...imageIds.train, ...imageIds.test])];
    await writeNpy(path, Float32Array.from({ length: every.length * 4 }, (_, i) => Math.sin(i)), [every.length, 4]);
    await writeNpy(ids, Int32Array.from(every), [every.length]);
    const cfg = { out: join(world.tmp, 'file-run'), nsd: { root: world.nsd.root, subject: 1, zscore: 'none' as const, cacheDir: join(world.tmp, 'out', 'cache') }, featureSets: [{ name: 'f', kind: 'file' as const, path, ids }], noiseCeiling: 'none' };
    const first = await encode(cfg);
    expect(first.stages.map((s) => [s.stage, s.status])).toEqual([['extract', 'ran'], ['ceiling', 'ran'], ['fit.f', 'ran'], ['maps', 'ran'], ['report', 'ran']]);
    const other = { ...cfg, ridge: { folds: 3 } };
    await expect(encode(other)).rejects.toThrow(/cannot start encode:[\s\S]*holds another run's outputs/);
    // a dry run answers as the run would: refused; with --force it says what would go first, and what would run
    await expect(encode(other, { dryRun: true })).rejects.toThrow(/holds another run's outputs/);
    // --force removes what the run wrote and only that: every file of the finished folder has a name a run gives
    // its outputs (so an interrupted stage's files go too), and the user's files stay, inside the run's folders too
    const manifest = JSON.parse(readFileSync(join(cfg.out, 'run.json'), 'utf8')) as { config: unknown };
    expect(filesUnder(cfg.out).filter((f) => !f.startsWith('cache/') && !runFileNamed(f, manifest.config))).toEqual([]);
    const mine = ['my-notes.txt', 'data/participants.csv', 'maps/my_contrast.nii.gz', 'images/figure.png'];
    for (const f of mine) {
      mkdirSync(dirname(join(cfg.out, f)), { recursive: true });
      writeFileSync(join(cfg.out, f), 'mine');
    }
    const dry = await encode(other, { dryRun: true, force: true });
    const clearing = dry.plan!.find((l) => l.startsWith('--force'));
    expect(clearing).toMatch(/^--force: first removes the previous run's outputs in .*file-run \(data, .*fits, .*run\.json, stages\); other files there stay \(4 no run wrote: data\/participants\.csv, images\/figure\.png, maps\/my_contrast\.nii\.gz, my-notes\.txt\)$/);
    // (an encode folder's images/ holds no run's file: it is not named, nor is reconstruct's decoders/)
    expect(clearing).not.toMatch(/[(,] (images|decoders)[,)]/);
    expect(dry.plan!.filter((l) => /^run  /.test(l)).map((l) => l.split(/\s+/)[1])).toEqual(['extract', 'ceiling', 'fit.f', 'maps', 'report']);
    const forced = await encode(other, { force: true });
    for (const f of mine) expect(readFileSync(join(cfg.out, f), 'utf8'), f).toBe('mine');
    expect(forced.stages.every((s) => s.status === 'ran')).toBe(true);
    expect((await encode(other)).stages.every((s) => s.status === 'skipped')).toBe(true);
  });
});

describe('encode bad input', () => {
  // each case in its own run folder: a folder holding another config's run is refused (tested below)
  let runs = 0;
  const base = () => ({ out: join(world.tmp, `bad-${++runs}`), nsd: { root: world.nsd.root, subject: 1, zscore: 'none' as const }, model: world.model, imageSize: 64 });

  it('rejects features for images that have no betas, and too few, before any work', async () => {
    const path = join(world.tmp, 'feat.npy'), ids = join(world.tmp, 'feat-ids.npy');
    await writeNpy(path, new Float32Array(20 * 3).fill(1), [20, 3]);
    await writeNpy(ids, Int32Array.from({ length: 20 }, (_, i) => 60_000 + i), [20]);
    await expect(encode({ ...base(), featureSets: [{ name: 'f', kind: 'file', path, ids }] })).rejects.toThrow(/features for images that have no betas/);
    // not 73k ids at all (1..73000)
    await writeNpy(ids, Int32Array.from({ length: 20 }, (_, i) => 900_000 + i), [20]);
    await expect(encode({ ...base(), featureSets: [{ name: 'f', kind: 'file', path, ids }] })).rejects.toThrow(/feature set 'f': ids file \(.*feat-ids\.npy\): element 0 is 900000, expected a 73k id/);
    await writeNpy(ids, Int32Array.from({ length: 20 }, (_, i) => i + 1), [20]);
    await expect(encode({ ...base(), featureSets: [{ name: 'f', kind: 'file', path, ids }] })).rejects.toThrow(/feature set 'f': .*feat\.npy lacks features for \d+ of subject 1's \d+ images in sessions 1-6/);
  });

  it('rejects a layer name that is not in the model', async () => {
    await expect(encode({ ...base(), featureSets: [{ name: 'u', kind: 'unet', layers: ['down_blocks.9/nope'], timesteps: [500] }] })).rejects.toThrow(
      /layer 'down_blocks.9\/nope' is not in .*unet\/model.onnx.*sd layers --model/,
    );
  });

  it('rejects a mask on another grid', async () => {
    const mask = join(world.tmp, 'other-grid.nii.gz');
    await writeNifti(mask, { dims: [10, 10, 10], datatype: 'int16' }, new Int16Array(1000).fill(1));
    // refused before any work (the preflight reads the betas' header), naming both grids and both files
    await expect(encode({ ...base(), nsd: { ...base().nsd, roi: mask }, featureSets: [{ name: 'z', kind: 'z' }] })).rejects.toThrow(
      /cannot start encode:[\s\S]*nsd\.roi: the mask .*other-grid\.nii\.gz is on a 10×10×10 grid but subject 1's betas \(.*betas_session01\.nii\.gz\) are on \d+×\d+×\d+/,
    );
  });

  it('rejects banded sets that name undefined feature sets', async () => {
    await expect(encode({ ...base(), featureSets: [{ name: 'z', kind: 'z' }], banded: [{ name: 'b', sets: ['z', 'q'] }] })).rejects.toThrow(/feature set 'q', which is not defined/);
  });
});

describe('CLI', () => {
  async function run(register: (p: import('commander').Command) => void, ...args: string[]): Promise<string> {
    const { Command } = await import('commander');
    const { vi } = await import('vitest');
    const program = new Command().exitOverride();
    register(program);
    const out: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
    try {
      await program.parseAsync(['node', 'brainlatent', ...args]);
    } finally {
      spy.mockRestore();
    }
    return out.join('');
  }

  it('brainlatent encode --config runs the config with paths relative to it', async () => {
    const { writeFile } = await import('node:fs/promises');
    const { registerEncodeCommand } = await import('../../ts/cli/commands/encode.js');
    const cfg = join(world.tmp, 'enc.json');
    await writeFile(cfg, JSON.stringify({ out: 'cli-out', nsd: { root: 'nsd', subject: 1, zscore: 'none' }, model: 'sd', imageSize: 64, featureSets: [{ name: 'z', kind: 'z' }], ridge: { alphas: '1e-1:1e5:7' } }));
    const text = await run(registerEncodeCommand, 'encode', '--config', cfg);
    expect(text).toMatch(/voxels, \d+ training images \/ 40 test images; mean held-out r \(streams; prf-visualrois in regions\.csv\):/);
    expect(text).toMatch(/^z\s+[-0-9.]+\s+0\.[5-9]/m);
  });

  it('brainlatent sd layers --model lists the U-Net tensors', async () => {
    const { registerSdCommand } = await import('../../ts/cli/commands/sd.js');
    const text = await run(registerSdCommand, 'sd', 'layers', '--model', world.model);
    expect(text.split('\n')).toContain(`${layers[0]}\tTanh\t-`);
  });
});
