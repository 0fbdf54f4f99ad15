import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CancelledError, InvalidArgumentError, ShapeError } from '../errors.js';
import { readNifti, readNiftiMasked, writeNiftiMap, niftiGrid } from '../io/nifti.js';
import { assertSameGrid, type VoxelMask } from '../io/voxelMask.js';
import type { Matrix } from '../matrix.js';
import { extractNsd, type NsdExtractOptions } from '../nsd/extract.js';
import type { NsdExtraction } from '../nsd/output.js';
import { loadNsdCaptions } from '../nsd/captions.js';
import { betasDir, brainmaskPath } from '../nsd/paths.js';
import { loadRegionMask } from '../nsd/roi.js';
import { NsdStimuli } from '../nsd/stimuli.js';
import { RidgeCV } from '../ridge/RidgeCV.js';
import { resolveEncodeConfig, type EncodeConfig, type EncodeConfigInput } from '../config/encode.js';
import { BandedRidgeCV } from './BandedRidgeCV.js';
import { computeFeatures, type FeatureTable } from './features.js';
import { columnPearson, columnR2, mean } from './metrics.js';
import { writeMosaic, type MosaicOptions } from './mosaic.js';
import { estimateNcsnr, noiseCeilingFromNcsnr } from './noiseCeiling.js';
import { loadRegionLabels, regionCsv, regionTable, type RegionRow } from './regions.js';
import { reportHtml, type ReportEntry } from './report.js';
import { partitionVariance } from './variancePartition.js';

export type { EncodeConfig, EncodeConfigInput } from '../config/encode.js';

export interface EncodeProgress {
  stage: 'betas' | 'features' | 'fit' | 'banded' | 'outputs';
  fraction: number;
  detail: string;
}

export interface FeatureSetResult {
  name: string;
  description: string;
  features: number;
  /** Held-out Pearson r per voxel. */
  r: Float32Array;
  /** Held-out R² per voxel. */
  r2: Float32Array;
  bestAlphas: Float32Array;
  route: string;
  meanR: number;
  map: string;
  mosaic: string;
  regions: RegionRow[];
}

export interface BandedResult {
  name: string;
  sets: string[];
  r: Float32Array;
  /** Unique held-out R² per set (variance partitioning), and the shared part. */
  unique: Record<string, Float32Array>;
  shared: Float32Array;
  /** Chosen band weights γ per voxel, voxels × sets. */
  bandWeights: Matrix;
  maps: Record<string, string>;
}

export interface EncodeResult {
  out: string;
  voxels: number;
  trainImages: number;
  testImages: number;
  mask: VoxelMask;
  noiseCeiling: Float32Array | null;
  featureSets: FeatureSetResult[];
  banded: BandedResult[];
  files: string[];
}

/** The NSD extraction encode() makes (the batch's shared extraction uses the same, so encode finds it cached). */
export function encodeExtractOptions(c: EncodeConfig): Omit<NsdExtractOptions, 'onProgress'> {
  return {
    root: c.nsd.root,
    subject: c.nsd.subject,
    roi: c.nsd.roi,
    sessions: c.nsd.sessions ?? undefined,
    format: c.nsd.format,
    zscore: c.nsd.zscore,
    averageTrain: c.nsd.averageTrain,
    averageTest: true,
    divisor: c.nsd.divisor,
    cacheDir: c.nsd.cacheDir ?? join(c.out, 'cache'),
  };
}

const slug = (s: string) => s.replace(/[^A-Za-z0-9_.-]+/g, '_');

/**
 * Voxel-wise encoding models: features of every stimulus → every voxel of the mask, ridge with per-voxel
 * alphas by grouped CV on the training images, held-out Pearson r on the test images, region table, NIfTI
 * maps, mosaics and a report; banded ridge with variance partitioning for joint sets.
 */
export async function encode(input: EncodeConfigInput | EncodeConfig, control: { onProgress?: (p: EncodeProgress) => void; signal?: AbortSignal } = {}): Promise<EncodeResult> {
  const c = resolveEncodeConfig(input);
  const progress = (stage: EncodeProgress['stage'], fraction: number, detail: string) => control.onProgress?.({ stage, fraction, detail });
  const checkAbort = () => {
    if (control.signal?.aborted) throw new CancelledError('encode: aborted');
  };
  const roi = c.nsd.roi;
  const region = await loadRegionMask(c.nsd.root, c.nsd.subject, roi);
  progress('betas', 0, `extracting betas for ${roi}`);
  const betas = await extractNsd({ ...encodeExtractOptions(c), onProgress: (e) => progress('betas', e.done / e.total, `session ${e.session}`) });
  checkAbort();
  const mask = region.mask;
  const V = mask.indices.length;

  // Features for every image with betas.
  const ids = Int32Array.from(new Set([...betas.trainImageIds, ...betas.testImageIds])).sort();
  const needsImages = c.featureSets.some((s) => s.kind !== 'file');
  let tables: FeatureTable[];
  if (needsImages) {
    const stimuli = await NsdStimuli.open(c.nsd.root);
    const captions = await loadNsdCaptions(c.nsd.root, c.nsd.captions ?? undefined);
    const size = c.imageSize;
    try {
      tables = await computeFeatures(
        c.featureSets,
        ids,
        { image: (id) => stimuli.image(id, size), captions: (id) => captions.get(id) },
        { model: c.model ?? undefined, batch: c.featureBatch, signal: control.signal, onProgress: (p) => progress('features', p.done / p.total, p.set) },
      );
    } finally {
      stimuli.close();
    }
  } else {
    tables = await computeFeatures(c.featureSets, ids, { image: () => { throw new Error('unreachable'); }, captions: () => [] });
  }
  checkAbort();

  // Noise ceiling.
  const ceiling = await noiseCeiling(c, betas, mask);

  const { labels, missing } = await loadRegionLabels(c.nsd.root, c.nsd.subject, c.regions, mask);
  await mkdir(join(c.out, 'maps'), { recursive: true });
  await mkdir(join(c.out, 'mosaics'), { recursive: true });
  const background = await brainBackground(c.nsd.root, c.nsd.subject, mask);
  const files: string[] = [];
  const writeMap = async (name: string, values: Float32Array, description: string) => {
    const map = join('maps', `${slug(name)}.nii.gz`);
    const mosaic = join('mosaics', `${slug(name)}.png`);
    await writeNiftiMap(join(c.out, map), region.header, mask, values, description.slice(0, 79));
    const vol = new Float32Array(mask.grid[0] * mask.grid[1] * mask.grid[2]).fill(NaN);
    mask.indices.forEach((i, j) => (vol[i] = values[j]));
    await writeMosaic(join(c.out, mosaic), mask.grid, vol, background, c.mosaic);
    files.push(map, mosaic);
    return { map, mosaic };
  };
  if (ceiling) await writeMap('noise-ceiling', ceiling, 'noise ceiling (fraction of variance)');

  const alphas = c.ridge.alphas;
  const results: FeatureSetResult[] = [];
  const aligned = new Map<string, { train: Matrix; test: Matrix }>();
  for (let k = 0; k < tables.length; k++) {
    checkAbort();
    const t = tables[k];
    const train = alignFeatures(t, betas.trainImageIds, 'training', c.nsd.subject);
    const test = alignFeatures(t, betas.testImageIds, 'test', c.nsd.subject);
    aligned.set(t.name, { train, test });
    progress('fit', k / tables.length, t.name);
    const model = await new RidgeCV({
      alphas,
      folds: c.ridge.folds,
      groups: betas.trainImageIds,
      score: c.ridge.score,
      route: c.ridge.route,
      cvMethod: c.ridge.cvMethod,
      standardize: true,
      memoryBudget: c.ridge.memoryBudget,
    }).fit(train, betas.train, { signal: control.signal });
    const pred = model.predict(test);
    const r = columnPearson(pred, betas.test);
    const r2 = columnR2(pred, betas.test);
    const { map, mosaic } = await writeMap(t.name, r, `held-out r ${t.name}`);
    results.push({
      name: t.name,
      description: t.description,
      features: t.x.cols,
      r,
      r2,
      bestAlphas: model.bestAlphas,
      route: `${model.info?.route ?? ''}/${model.info?.cvMethod ?? ''}`,
      meanR: mean(r),
      map,
      mosaic,
      regions: regionTable(t.name, r, labels, ceiling),
    });
  }

  const banded: BandedResult[] = [];
  for (const b of c.banded) {
    checkAbort();
    progress('banded', 0, b.name);
    const pick = (role: 'train' | 'test') => Object.fromEntries(b.sets.map((s) => [s, aligned.get(s)![role]]));
    const opts = { alphas: b.alphas ?? alphas, nIter: b.nIter, seed: b.seed, groups: betas.trainImageIds, folds: c.ridge.folds, standardize: true };
    const maps: Record<string, string> = {};
    const unique: Record<string, Float32Array> = {};
    let shared: Float32Array = new Float32Array(V);
    let r: Float32Array;
    let bandWeights: Matrix;
    if (b.sets.length >= 2 && b.partition) {
      const vp = await partitionVariance(pick('train'), betas.train, pick('test'), betas.test, opts, {
        signal: control.signal,
        onProgress: (p) => progress('banded', p.fraction, `${b.name}: ${p.stage}`),
      });
      r = vp.jointR;
      bandWeights = vp.model.bandWeights();
      vp.bandNames.forEach((n, i) => (unique[n] = vp.unique[i]));
      shared = vp.shared;
      for (const n of vp.bandNames) maps[`unique-${n}`] = (await writeMap(`${b.name}_unique-${n}`, unique[n], `unique R2 of ${n} in ${b.name}`)).map;
      maps.shared = (await writeMap(`${b.name}_shared`, shared, `shared R2 in ${b.name}`)).map;
    } else {
      const m = await new BandedRidgeCV(opts).fit(pick('train'), betas.train, { signal: control.signal });
      r = columnPearson(m.predict(pick('test')), betas.test);
      bandWeights = m.bandWeights();
    }
    const rm = await writeMap(b.name, r, `held-out r of banded ${b.name}`);
    maps.r = rm.map;
    results.push({
      name: b.name,
      description: `banded ridge over ${b.sets.join(' + ')} (${b.nIter} candidates)`,
      features: b.sets.reduce((s, n) => s + aligned.get(n)!.train.cols, 0),
      r,
      r2: new Float32Array(0),
      bestAlphas: new Float32Array(0),
      route: 'banded',
      meanR: mean(r),
      map: rm.map,
      mosaic: rm.mosaic,
      regions: regionTable(b.name, r, labels, ceiling),
    });
    banded.push({ name: b.name, sets: b.sets, r, unique, shared, bandWeights, maps });
  }

  progress('outputs', 0, 'region table and report');
  const rows = results.flatMap((f) => f.regions);
  await writeFile(join(c.out, 'regions.csv'), regionCsv(rows));
  const entries: ReportEntry[] = results.map((f) => ({ name: f.name, description: f.description, mosaic: f.mosaic, map: f.map, meanR: f.meanR, rows: f.regions }));
  const meta: Record<string, string> = {
    subject: String(c.nsd.subject),
    mask: `${roi} (${V} voxels)`,
    'training images': String(betas.trainImageIds.length),
    'test images': `${betas.testImageIds.length} (betas averaged over repetitions)`,
    'z-scoring': c.nsd.zscore,
    alphas: alphas.map((a) => a.toPrecision(3)).join(', '),
    'noise ceiling': ceiling ? 'yes' : 'none',
  };
  if (missing.length) meta['atlases not found'] = missing.join(', ');
  await writeFile(join(c.out, 'report.html'), reportHtml(`Encoding models, subject ${c.nsd.subject}`, meta, entries));
  const summary = {
    format: 'brainlatent-encoding',
    version: 1,
    createdAt: new Date().toISOString(),
    config: c,
    voxels: V,
    trainImages: betas.trainImageIds.length,
    testImages: betas.testImageIds.length,
    voxelOrder: 'mask order: flat NIfTI indices, x fastest (see maps/*.nii.gz for the volumes)',
    featureSets: results.map((f) => ({ name: f.name, description: f.description, features: f.features, route: f.route, meanR: f.meanR, map: f.map, mosaic: f.mosaic })),
    banded: banded.map((b) => ({ name: b.name, sets: b.sets, maps: b.maps, meanUnique: Object.fromEntries(Object.entries(b.unique).map(([k, v]) => [k, mean(v)])) })),
  };
  await writeFile(join(c.out, 'encoding.json'), JSON.stringify(summary, null, 2));
  files.push('regions.csv', 'report.html', 'encoding.json');
  progress('outputs', 1, 'done');
  return { out: c.out, voxels: V, trainImages: betas.trainImageIds.length, testImages: betas.testImageIds.length, mask, noiseCeiling: ceiling, featureSets: results, banded, files };
}

/**
 * Rows of a feature table for the given 73k ids, in that order. Every image with betas needs features;
 * a table that covers none of them is reported as features for images that have no betas.
 */
export function alignFeatures(t: FeatureTable, ids: Int32Array, role: 'training' | 'test', subject: number): Matrix {
  const row = new Map<number, number>();
  t.ids.forEach((id, i) => row.set(id, i));
  const missing = Array.from(ids).filter((id) => !row.has(id));
  if (missing.length === ids.length) {
    const have = Array.from(t.ids);
    throw new ShapeError(
      `feature set '${t.name}' (${t.description}) has features for images that have no betas: none of its ${have.length} images ` +
        `(73k ids ${have.slice(0, 5).join(', ')}${have.length > 5 ? ', …' : ''}) is among subject ${subject}'s ${ids.length} ${role} images ` +
        `(${Array.from(ids.slice(0, 5)).join(', ')}${ids.length > 5 ? ', …' : ''})`,
    );
  }
  if (missing.length) {
    throw new ShapeError(
      `feature set '${t.name}' (${t.description}) lacks features for ${missing.length} of subject ${subject}'s ${ids.length} ${role} images ` +
        `with betas (73k ids ${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ', …' : ''})`,
    );
  }
  const p = t.x.cols;
  const data = new Float32Array(ids.length * p);
  ids.forEach((id, i) => data.set(t.x.data.subarray(row.get(id)! * p, (row.get(id)! + 1) * p), i * p));
  return { data, rows: ids.length, cols: p };
}

async function noiseCeiling(c: EncodeConfig, betas: NsdExtraction, mask: VoxelMask): Promise<Float32Array | null> {
  const mode = c.noiseCeiling;
  if (mode === 'none') return null;
  const reps = betas.manifest.counts.testRepetitions;
  let n = 0, k = 0;
  for (const [r, count] of Object.entries(reps)) {
    n += Number(r) * count;
    k += count;
  }
  const trialsAveraged = k ? n / k : 1;
  if (mode === 'estimate') {
    const { averageTrain: _a, cacheDir: _c, ...rest } = encodeExtractOptions(c);
    const single = await extractNsd({ ...rest, averageTest: false });
    return noiseCeilingFromNcsnr(estimateNcsnr(single.test, single.testImageIds), trialsAveraged);
  }
  const path = mode === 'auto' ? join(betasDir(c.nsd.root, c.nsd.subject), 'ncsnr.nii.gz') : mode;
  if (!existsSync(path)) {
    if (mode === 'auto') return null;
    throw new InvalidArgumentError(`noiseCeiling: ${path} does not exist`);
  }
  const { betas: m } = await readNiftiMasked(path, mask);
  return noiseCeilingFromNcsnr(m.data.subarray(0, mask.indices.length), trialsAveraged);
}

/** Brain voxels for the mosaics' grey underlay: 0 inside the brain mask, −1 outside (null without one). */
async function brainBackground(root: string, subject: number, mask: VoxelMask): Promise<Float32Array | null> {
  const path = brainmaskPath(root, subject);
  if (!existsSync(path)) return null;
  const { header, data } = await readNifti(path);
  try {
    assertSameGrid(niftiGrid(header), mask, path);
  } catch {
    return null;
  }
  return data.map((v) => (v > 0 ? 0 : -1));
}
