import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CancelledError, InvalidArgumentError, ShapeError } from '../errors.js';
import { readNifti, readNiftiMasked, writeNiftiMap, niftiGrid } from '../io/nifti.js';
import { assertSameGrid, type VoxelMask } from '../io/voxelMask.js';
import type { Matrix } from '../matrix.js';
import { extractNsd, type ZscoreMode } from '../nsd/extract.js';
import type { NsdExtraction } from '../nsd/output.js';
import { loadNsdCaptions } from '../nsd/captions.js';
import { betasDir, brainmaskPath } from '../nsd/paths.js';
import { loadRegionMask } from '../nsd/roi.js';
import { NsdStimuli } from '../nsd/stimuli.js';
import { parseAlphas } from '../ridge/alphas.js';
import { DEFAULT_ALPHAS, RidgeCV } from '../ridge/RidgeCV.js';
import { BandedRidgeCV } from './BandedRidgeCV.js';
import { computeFeatures, featureSetNames, validateFeatureSpec, type FeatureSetSpec, type FeatureTable } from './features.js';
import { columnPearson, columnR2, mean } from './metrics.js';
import { writeMosaic, type MosaicOptions } from './mosaic.js';
import { estimateNcsnr, noiseCeilingFromNcsnr } from './noiseCeiling.js';
import { loadRegionLabels, regionCsv, regionTable, type RegionRow } from './regions.js';
import { reportHtml, type ReportEntry } from './report.js';
import { partitionVariance } from './variancePartition.js';

/** `brainlatent encode --config enc.json`: what to fit and where to write it. */
export interface EncodeConfig {
  /** Output folder (maps/, mosaics/, regions.csv, report.html, encoding.json). */
  out: string;
  nsd: {
    root: string;
    subject: number;
    /** Voxels to model: nsdgeneral (default), streams, a mask .nii.gz on the subject's grid, … */
    roi?: string;
    sessions?: number[] | string;
    format?: 'auto' | 'nifti' | 'hdf5';
    /** Default 'session' (NSD practice). */
    zscore?: ZscoreMode;
    /** Average repetitions of each training image. Default true (one row per image). */
    averageTrain?: boolean;
    divisor?: number;
    cacheDir?: string;
    /** Caption file instead of COCO's (see loadNsdCaptions). */
    captions?: string;
  };
  /** SD 1.x ONNX folder for z, c, zc and U-Net features. */
  model?: string;
  /** Side the stimuli are resized to before the VAE. Default 512. */
  imageSize?: number;
  featureSets: FeatureSetSpec[];
  ridge?: {
    alphas?: number[] | string;
    folds?: number;
    score?: 'r2' | 'pearson';
    route?: 'auto' | 'primal' | 'kernel';
    cvMethod?: 'auto' | 'per-fold' | 'exact';
    memoryBudget?: number;
  };
  /** Joint models over several feature sets, with variance partitioning. */
  banded?: { name: string; sets: string[]; nIter?: number; seed?: number; alphas?: number[] | string; partition?: boolean }[];
  /** Atlases for the region table. Default ['streams', 'prf-visualrois']. */
  regions?: string[];
  /** 'auto' (ncsnr.nii.gz beside the betas when present), 'none', 'estimate' (from the test repetitions) or a path. */
  noiseCeiling?: string;
  mosaic?: MosaicOptions;
  featureBatch?: number;
}

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

/** Checks a config before any work, with messages naming the field. */
export function validateEncodeConfig(c: EncodeConfig): void {
  const bad = (m: string) => {
    throw new InvalidArgumentError(`encode config: ${m}`);
  };
  if (!c || typeof c !== 'object') bad('expected an object');
  if (typeof c.out !== 'string' || !c.out) bad('out (the output folder) is required');
  if (!c.nsd || typeof c.nsd.root !== 'string') bad('nsd.root (the NSD folder) is required');
  if (!(Number.isInteger(c.nsd.subject) && c.nsd.subject >= 1 && c.nsd.subject <= 8)) bad(`nsd.subject must be 1..8, got ${c.nsd.subject}`);
  if (!Array.isArray(c.featureSets) || c.featureSets.length === 0) bad('featureSets must list at least one feature set');
  const names = new Set<string>();
  for (const s of c.featureSets) {
    validateFeatureSpec(s, 'encode config');
    for (const n of featureSetNames(s)) {
      if (names.has(n)) bad(`feature set name '${n}' is used twice`);
      names.add(n);
    }
  }
  if (c.imageSize !== undefined && !(Number.isInteger(c.imageSize) && c.imageSize >= 8 && c.imageSize % 8 === 0)) bad(`imageSize must be a multiple of 8, got ${c.imageSize}`);
  for (const b of c.banded ?? []) {
    if (!b.name || !Array.isArray(b.sets) || b.sets.length < 1) bad(`banded entries need a name and sets, got ${JSON.stringify(b)}`);
    for (const s of b.sets) if (!names.has(s)) bad(`banded '${b.name}' names feature set '${s}', which is not defined (defined: ${[...names].join(', ')})`);
  }
}

const slug = (s: string) => s.replace(/[^A-Za-z0-9_.-]+/g, '_');

/**
 * Voxel-wise encoding models: features of every stimulus → every voxel of the mask, ridge with per-voxel
 * alphas by grouped CV on the training images, held-out Pearson r on the test images, region table, NIfTI
 * maps, mosaics and a report; banded ridge with variance partitioning for joint sets.
 */
export async function encode(config: EncodeConfig, control: { onProgress?: (p: EncodeProgress) => void; signal?: AbortSignal } = {}): Promise<EncodeResult> {
  validateEncodeConfig(config);
  const c = config;
  const progress = (stage: EncodeProgress['stage'], fraction: number, detail: string) => control.onProgress?.({ stage, fraction, detail });
  const checkAbort = () => {
    if (control.signal?.aborted) throw new CancelledError('encode: aborted');
  };
  const roi = c.nsd.roi ?? 'nsdgeneral';
  const region = await loadRegionMask(c.nsd.root, c.nsd.subject, roi);
  progress('betas', 0, `extracting betas for ${roi}`);
  const betas = await extractNsd({
    root: c.nsd.root,
    subject: c.nsd.subject,
    roi,
    sessions: c.nsd.sessions,
    format: c.nsd.format,
    zscore: c.nsd.zscore ?? 'session',
    averageTrain: c.nsd.averageTrain ?? true,
    averageTest: true,
    divisor: c.nsd.divisor,
    cacheDir: c.nsd.cacheDir,
    onProgress: (e) => progress('betas', e.done / e.total, `session ${e.session}`),
  });
  checkAbort();
  const mask = region.mask;
  const V = mask.indices.length;

  // Features for every image with betas.
  const ids = Int32Array.from(new Set([...betas.trainImageIds, ...betas.testImageIds])).sort();
  const needsImages = c.featureSets.some((s) => s.kind !== 'file');
  let tables: FeatureTable[];
  if (needsImages) {
    const stimuli = await NsdStimuli.open(c.nsd.root);
    const captions = await loadNsdCaptions(c.nsd.root, c.nsd.captions);
    const size = c.imageSize ?? 512;
    try {
      tables = await computeFeatures(
        c.featureSets,
        ids,
        { image: (id) => stimuli.image(id, size), captions: (id) => captions.get(id) },
        { model: c.model, batch: c.featureBatch, signal: control.signal, onProgress: (p) => progress('features', p.done / p.total, p.set) },
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

  const { labels, missing } = await loadRegionLabels(c.nsd.root, c.nsd.subject, c.regions ?? ['streams', 'prf-visualrois'], mask);
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

  const alphas = c.ridge?.alphas === undefined ? [...DEFAULT_ALPHAS] : typeof c.ridge.alphas === 'string' ? parseAlphas(c.ridge.alphas) : c.ridge.alphas;
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
      folds: c.ridge?.folds ?? 5,
      groups: betas.trainImageIds,
      score: c.ridge?.score ?? 'r2',
      route: c.ridge?.route ?? 'auto',
      cvMethod: c.ridge?.cvMethod ?? 'auto',
      standardize: true,
      memoryBudget: c.ridge?.memoryBudget,
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
  for (const b of c.banded ?? []) {
    checkAbort();
    progress('banded', 0, b.name);
    const pick = (role: 'train' | 'test') => Object.fromEntries(b.sets.map((s) => [s, aligned.get(s)![role]]));
    const ba = b.alphas === undefined ? alphas : typeof b.alphas === 'string' ? parseAlphas(b.alphas) : b.alphas;
    const opts = { alphas: ba, nIter: b.nIter ?? 100, seed: b.seed ?? 0, groups: betas.trainImageIds, folds: c.ridge?.folds ?? 5, standardize: true };
    const maps: Record<string, string> = {};
    const unique: Record<string, Float32Array> = {};
    let shared: Float32Array = new Float32Array(V);
    let r: Float32Array;
    let bandWeights: Matrix;
    if (b.sets.length >= 2 && b.partition !== false) {
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
      description: `banded ridge over ${b.sets.join(' + ')} (${b.nIter ?? 100} candidates)`,
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
    'z-scoring': c.nsd.zscore ?? 'session',
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
  const mode = c.noiseCeiling ?? 'auto';
  if (mode === 'none') return null;
  const reps = betas.manifest.counts.testRepetitions;
  let n = 0, k = 0;
  for (const [r, count] of Object.entries(reps)) {
    n += Number(r) * count;
    k += count;
  }
  const trialsAveraged = k ? n / k : 1;
  if (mode === 'estimate') {
    const single = await extractNsd({
      root: c.nsd.root, subject: c.nsd.subject, roi: c.nsd.roi ?? 'nsdgeneral', sessions: c.nsd.sessions, format: c.nsd.format,
      zscore: c.nsd.zscore ?? 'session', averageTest: false, divisor: c.nsd.divisor, cacheDir: c.nsd.cacheDir,
    });
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
