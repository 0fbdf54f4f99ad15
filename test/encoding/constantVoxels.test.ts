/**
 * A voxel whose measured test betas are constant has no variance to explain: encode scored it r = 0 and R² = 0, which
 * counted in regions.csv's means and medians and in the maps as "explained nothing", with no warning. Its r, R² (and a
 * joint model's partition) are now NaN, left out of the region means and counted, and the run warns (review s29-r1).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { resolveEncodeConfig, type EncodeConfig, type EncodeConfigInput } from '../../ts/config/encode.js';
import { encode, type EncodeResult } from '../../ts/encoding/encode.js';
import type { EncodingSummary } from '../../ts/encoding/mapFiles.js';
import { columnPearson, columnR2, constantColumns, heldOutScores } from '../../ts/encoding/metrics.js';
import { constantVoxelsWarning } from '../../ts/encoding/regions.js';
import { constantVoxelsFact } from '../../ts/encoding/report.js';
import { encodeFitOptions } from '../../ts/encoding/ridgeMemory.js';
import { alignFeatures, encodeExtractOptions, readTable } from '../../ts/encoding/stages.js';
import { tableSpecs } from '../../ts/encoding/runPaths.js';
import { niftiGeometry, readNifti, writeNifti } from '../../ts/io/nifti.js';
import { writeNpy } from '../../ts/io/npy.js';
import type { Matrix } from '../../ts/matrix.js';
import { nsdTrialTable, readNsdDesign } from '../../ts/nsd/expdesign.js';
import { extractNsd } from '../../ts/nsd/extract.js';
import type { NsdExtraction } from '../../ts/nsd/output.js';
import { betasPath, roiPath } from '../../ts/nsd/paths.js';
import { loadRegionMask } from '../../ts/nsd/roi.js';
import { planNsdSessions } from '../../ts/nsd/sessionPlan.js';
import { RidgeCV } from '../../ts/ridge/RidgeCV.js';
import { stageRecipe } from '../../ts/pipeline/runFolder.js';
import { synthNsd } from '../../ts/synth/nsd.js';
import { pearson, r2 } from '../helpers/pearson.js';
import { rng } from '../helpers/random.js';

const column = (m: Matrix, j: number) => Float64Array.from({ length: m.rows }, (_, i) => m.data[i * m.cols + j]);

describe('heldOutScores', () => {
  it('is NaN where the measured column is constant, r 0 and R² as computed where only the prediction is, the same as columnPearson/columnR2 elsewhere', () => {
    const g = rng(7);
    const n = 12;
    const varying = () => Array.from({ length: n }, () => g());
    // columns: measured constant (at a float32 level), prediction constant, both ordinary
    const a = [Array.from({ length: n }, () => Math.fround(2.7)), varying(), varying()];
    const p = [varying(), Array.from({ length: n }, () => 0.5), a[2].map((v) => v + 0.5 * g())];
    const mat = (cols: number[][]): Matrix => ({ data: Float32Array.from({ length: n * cols.length }, (_, k) => cols[k % cols.length][Math.floor(k / cols.length)]), rows: n, cols: cols.length });
    const actual = mat(a), pred = mat(p);
    expect(Array.from(constantColumns(actual))).toEqual([1, 0, 0]);
    const s = heldOutScores(pred, actual);
    expect([s.r[0], s.r2[0]]).toEqual([NaN, NaN]);
    expect(s.r[1]).toBe(0);
    expect(s.r2[1]).toBeCloseTo(r2(column(pred, 1), column(actual, 1)), 5);
    expect(s.r2[1]).toBeLessThan(0);
    expect(s.r[2]).toBe(columnPearson(pred, actual)[2]);
    expect(s.r2[2]).toBe(columnR2(pred, actual)[2]);
    expect(s.r[2]).toBeCloseTo(pearson(column(pred, 2), column(actual, 2)), 5);
    // the library's functions keep their documented 0
    expect([columnPearson(pred, actual)[0], columnR2(pred, actual)[0]]).toEqual([0, 0]);
  });
});

describe('encode where a voxel has the same betas on every test image', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'bl-encode-constant-'));
  const sessions = [1, 2, 3];
  let cfg: EncodeConfigInput;
  let result: EncodeResult;
  let warned: string[];
  /** The voxel made constant: its place in the mask and its flat index in the volume. */
  let j: number;
  let flatIndex: number;
  /** A second voxel, constant on every trial, training ones included: nothing to fit there (its alphas are NaN). */
  let j2: number;
  let flatIndex2: number;
  let voxels: number;

  beforeAll(async () => {
    const nsd = await synthNsd({ out: join(tmp, 'nsd'), grid: [8, 8, 8], designSessions: 4, sessions: 3, trialsPerSession: 60, sharedImages: 10, imageSize: 16, formats: ['nifti'], seed: 6 });
    const { mask } = await loadRegionMask(nsd.root, 1, 'nsdgeneral');
    voxels = mask.indices.length;
    // a voxel of the mask that is in a stream, so that a region row counts it too
    const streams = (await readNifti(roiPath(nsd.root, 1, 'streams'))).data;
    j = mask.indices.findIndex((i) => streams[i] > 0);
    flatIndex = mask.indices[j];
    j2 = mask.indices.findLastIndex((i) => streams[i] > 0);
    flatIndex2 = mask.indices[j2];
    // its betas set to one value (1.5 after NSD's ×300) on every test trial; its training trials keep theirs
    const trials = nsdTrialTable(await readNsdDesign(nsd.root), 1, sessions, 60);
    for (const s of sessions) {
      const path = betasPath(nsd.root, 1, s, 'nifti');
      const { header, data } = await readNifti(path);
      const nVox = header.dims[0] * header.dims[1] * header.dims[2];
      for (let k = 0; k < trials.session.length; k++) if (trials.session[k] === s && trials.test[k]) data[trials.position[k] * nVox + flatIndex] = 450;
      for (let k = 0; k < trials.session.length; k++) if (trials.session[k] === s) data[trials.position[k] * nVox + flatIndex2] = 450;
      await writeNifti(path, { dims: header.dims.slice(0, 4), datatype: 'int16', ...niftiGeometry(header) }, Int16Array.from(data, Math.round));
    }
    // two feature tables of the images seen (their values matter not: the scores are checked against a refit)
    const { plan } = await planNsdSessions({ root: nsd.root, subject: 1, sessions: null, format: 'auto' }, await readNsdDesign(nsd.root));
    const seen = plan!.imageIds;
    const g = rng(9);
    const ids = join(tmp, 'ids.npy');
    await writeNpy(ids, seen, [seen.length]);
    for (const [name, p] of [['a', 4], ['b', 3]] as const) await writeNpy(join(tmp, `${name}.npy`), Float32Array.from({ length: seen.length * p }, () => g()), [seen.length, p]);
    cfg = {
      out: join(tmp, 'out'),
      nsd: { root: nsd.root, subject: 1, zscore: 'none' },
      featureSets: ['a', 'b'].map((name) => ({ name, kind: 'file', path: join(tmp, `${name}.npy`), ids })),
      ridge: { alphas: '1e-1:1e3:5' },
      banded: [{ name: 'a+b', sets: ['a', 'b'], nIter: 4 }],
      noiseCeiling: 'none',
    } as EncodeConfigInput;
    warned = [];
    result = await encode(cfg, { onWarning: (w) => warned.push(w) });
  }, 240_000);
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it("scores the voxel NaN (r, R²) and every other voxel as a refit's predictions against the float64 reference", async () => {
    const c = resolveEncodeConfig(cfg);
    const betas = await extractNsd(encodeExtractOptions(c));
    const test = betas.test;
    expect(Array.from(constantColumns(test)).reduce((s, f) => s + f, 0)).toBe(2);
    expect([constantColumns(test)[j], constantColumns(test)[j2], constantColumns(betas.train)[j], constantColumns(betas.train)[j2]]).toEqual([1, 1, 0, 1]);
    const a = result.featureSets.find((f) => f.name === 'a')!;
    expect([a.r[j], a.r2[j]]).toEqual([NaN, NaN]);
    // the fit stage's fit again, on the same rows: every other voxel's r and R² is the float64 reference's
    const x = await alignedRows(c, 'a', betas);
    const model = await new RidgeCV(encodeFitOptions(c, betas.trainImageIds)).fit(x.train, betas.train);
    const pred = model.predict(x.test);
    for (let k = 0; k < voxels; k++) {
      if (k === j || k === j2) continue;
      expect(a.r[k], `voxel ${k}`).toBeCloseTo(pearson(column(pred, k), column(test, k)), 4);
      expect(a.r2[k], `voxel ${k}`).toBeCloseTo(r2(column(pred, k), column(test, k)), 4);
    }
    expect(a.meanR).toBeCloseTo(Array.from(a.r).filter((_, k) => k !== j && k !== j2).reduce((s, v) => s + v, 0) / (voxels - 2), 5);
  });

  it("makes the joint model's r, R², R² without each set, unique and shared NaN there", () => {
    const b = result.banded[0];
    const there = [b.r[j], b.r2[j], b.r2Without.a[j], b.r2Without.b[j], b.unique.a[j], b.unique.b[j], b.shared[j]];
    expect(there.every(Number.isNaN)).toBe(true);
    // elsewhere the joint model has its scores
    expect(Array.from(b.r).filter((v, k) => k !== j && k !== j2 && Number.isFinite(v))).toHaveLength(voxels - 2);
    expect(Array.from(b.r2Without.a).filter(Number.isNaN)).toHaveLength(2);
  });

  it('leaves the voxel out of the NIfTI maps (NaN, as outside the mask)', async () => {
    const map = (await readNifti(join(result.out, 'maps', 'a.nii.gz'))).data;
    expect(map[flatIndex]).toBeNaN();
    expect(Array.from(result.mask.indices).filter((i) => Number.isNaN(map[i]))).toEqual([flatIndex, flatIndex2]);
    const joint = (await readNifti(join(result.out, 'maps', 'a+b_r2.nii.gz'))).data;
    expect(joint[flatIndex]).toBeNaN();
  });

  it("leaves it out of regions.csv's means and medians and counts it in constant_voxels", () => {
    const csv = readFileSync(join(result.out, 'regions.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('feature_set,atlas,region,label,voxels,mean_r,median_r,mean_r_over_ceiling,voxels_over_ceiling,mean_r_over_mean_sqrt_nc,constant_voxels');
    const a = result.featureSets.find((f) => f.name === 'a')!;
    const others = Array.from(a.r).filter((_, k) => k !== j && k !== j2);
    for (const name of ['a', 'b', 'a+b']) {
      const row = csv.find((l) => l.startsWith(`${name},mask,all,`))!.split(',');
      expect(row[4], name).toBe(String(voxels));
      expect(row[10], name).toBe('2');
    }
    const mask = csv.find((l) => l.startsWith('a,mask,all,'))!.split(',');
    expect(Number(mask[5])).toBeCloseTo(others.reduce((s, v) => s + v, 0) / others.length, 5);
    const sorted = others.sort((x, y) => x - y);
    const h = sorted.length >> 1;
    expect(Number(mask[6])).toBeCloseTo(sorted.length % 2 ? sorted[h] : (sorted[h - 1] + sorted[h]) / 2, 5);
    // the stream the voxel is in counts it; the rows of a stream without it count none
    const streamRows = a.regions.filter((r) => r.atlas === 'streams');
    expect(streamRows.map((r) => r.constantVoxels).reduce((s, v) => s + v, 0)).toBe(2);
    expect(streamRows.every((r) => Number.isFinite(r.meanR) || r.voxels === r.constantVoxels)).toBe(true);
  });

  it('warns, naming how many voxels and that they are NaN and left out; encoding.json and the report count them', () => {
    const expected = constantVoxelsWarning(2, voxels);
    expect(expected).toBe(
      `2 of the mask's ${voxels} voxels have the same betas on every test image (constant up to float32 rounding): their held-out r and R² are NaN ` +
        "(no variance to explain), no value in the maps, and left out of regions.csv's means and medians (counted in its constant_voxels column)",
    );
    expect(warned).toContain(expected);
    expect(result.warnings).toContain(expected);
    const summary = JSON.parse(readFileSync(join(result.out, 'encoding.json'), 'utf8')) as EncodingSummary;
    expect(summary.constantVoxels).toBe(2);
    const html = readFileSync(join(result.out, 'report.html'), 'utf8');
    expect(html).toContain(`<th>constant voxels</th><td>2 of ${voxels}: the same betas on every test image`);
    // no line without any, nor for a folder from before they were counted
    expect([constantVoxelsFact({ voxels: 9, constantVoxels: 0 }), constantVoxelsFact({ voxels: 9 })]).toEqual([[], []]);
  });

  // every alpha scored alike where the training betas are constant, and the tie's largest alpha was drawn in the
  // log10-alpha maps as a choice and counted in their region means; the band weights too (review s45)
  it('has no alpha (nor band weights) where the training betas are constant, in the fits and the maps', async () => {
    const a = result.featureSets.find((f) => f.name === 'a')!;
    const b = result.banded[0];
    expect([a.bestAlphas[j2], b.bestAlphas[j2]]).toEqual([NaN, NaN]);
    expect(Array.from({ length: b.bandWeights.cols }, (_, k) => b.bandWeights.data[j2 * b.bandWeights.cols + k]).every(Number.isNaN)).toBe(true);
    // (the voxel constant only on test images was fitted: its alpha stands)
    expect(Number.isFinite(a.bestAlphas[j])).toBe(true);
    for (const file of ['a_log10-alpha.nii.gz', 'a+b_log10-alpha.nii.gz', 'a+b_gamma-a.nii.gz']) {
      const map = (await readNifti(join(result.out, 'maps', file))).data;
      expect(Array.from(result.mask.indices).filter((i) => Number.isNaN(map[i])), file).toEqual([flatIndex2]);
    }
    expect(Array.from(a.bestAlphas).filter(Number.isNaN)).toHaveLength(1);
  });

  it('warns again when the run is resumed with every stage done', async () => {
    const again: string[] = [];
    const r = await encode(cfg, { onWarning: (w) => again.push(w) });
    expect(r.stages.every((s) => s.status === 'skipped')).toBe(true);
    expect(again).toEqual([constantVoxelsWarning(2, voxels)]);
  });

  it('is a new recipe of the fit, banded and maps stages: a folder fitted before refits', () => {
    expect([stageRecipe('fit.a'), stageRecipe('banded.a+b'), stageRecipe('maps')]).toEqual([2, 3, 4]);
  });
});

/** A feature set's rows for the training and test images of an extraction, as the fit stage aligns them. */
async function alignedRows(c: EncodeConfig, name: string, betas: NsdExtraction): Promise<{ train: Matrix; test: Matrix }> {
  const table = await readTable(c, tableSpecs(c).find((t) => t.name === name)!);
  return { train: alignFeatures(table, betas.trainImageIds, 'training', 1), test: alignFeatures(table, betas.testImageIds, 'test', 1) };
}
