/**
 * encode()'s stages, each with one job, reading its inputs from the run folder and writing its outputs there,
 * so that each can run on its own (a job of a batch's graph) once the stages it depends on have finished:
 *
 *   extract → ceiling                     NSD betas (cached), the noise ceiling
 *   extract → embed → features.<set>      z and c of every image; z_c and U-Net tables from them
 *   extract, features → fit.<table>       RidgeCV per table: held-out r, R², alphas per voxel
 *   extract, features → banded.<name>     banded ridge and variance partitioning
 *   ceiling, fits, banded → maps          NIfTI maps, mosaics, regions.csv
 *   maps → report                         report.html, encoding.json
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';

import type { BandedSpec, EncodeConfig } from '../config/encode.js';
import { InvalidArgumentError, ShapeError } from '../errors.js';
import { readIntVectorNpy, readMatrixNpy, readNpy, writeNpy } from '../io/npy.js';
import { niftiGrid, readNifti, readNiftiMasked, writeNiftiMap } from '../io/nifti.js';
import { assertSameGrid, type VoxelMask } from '../io/voxelMask.js';
import type { Matrix } from '../matrix.js';
import { loadNsdCaptions } from '../nsd/captions.js';
import { extractNsd, type NsdExtractOptions } from '../nsd/extract.js';
import type { NsdExtraction } from '../nsd/output.js';
import { betasDir, brainmaskPath } from '../nsd/paths.js';
import { loadRegionMask } from '../nsd/roi.js';
import { NsdStimuli } from '../nsd/stimuli.js';
import type { StageDef, StageResult, StageRunContext } from '../pipeline/stageRunner.js';
import { RidgeCV } from '../ridge/RidgeCV.js';
import { Diffusion } from '../sd/Diffusion.js';
import { BandedRidgeCV } from './BandedRidgeCV.js';
import { describeFeatures, embedImages, readFeatureFile, unetLayerFeatures, zcFeatures, type Embeddings, type FeatureTable } from './features.js';
import { columnPearson, columnR2, mean } from './metrics.js';
import { writeMosaic } from './mosaic.js';
import { estimateNcsnr, noiseCeilingFromNcsnr } from './noiseCeiling.js';
import { loadRegionLabels, regionCsv, regionTable, type RegionRow } from './regions.js';
import { reportHtml, type ReportEntry } from './report.js';
import { encodePaths, tableSpecs, type TableSpec } from './runPaths.js';
import { partitionVariance } from './variancePartition.js';

/** The NSD extraction encode makes (the batch's shared extraction uses the same, so encode finds it cached). */
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

// ---- what the stages read -------------------------------------------------------------------------------

const betasOf = (c: EncodeConfig, ctx?: StageRunContext) =>
  extractNsd({ ...encodeExtractOptions(c), onProgress: ctx ? (e) => ctx.progress(e.done / e.total, `session ${e.session}`) : undefined });

async function writeJson(path: string, value: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, JSON.stringify(value, null, 2));
}

/** A per-voxel vector a stage wrote. */
async function readVector(path: string, what: string): Promise<Float32Array> {
  const a = await readNpy(path);
  if (a.dtype !== 'float32' || a.shape.length !== 1) throw new ShapeError(`${what} (${path}): expected a float32 vector, got ${a.dtype} of shape (${a.shape.join(', ')})`);
  return a.data as Float32Array;
}

const readJson = async <T>(path: string): Promise<T> => JSON.parse(await readFile(path, 'utf8')) as T;

async function readEmbeddings(c: EncodeConfig): Promise<Embeddings> {
  const p = encodePaths(c.out);
  const shapes = await readJson<{ z: number[]; c: number[] }>(p.embedShapes);
  return {
    ids: await readIntVectorNpy(p.embedIds, 'embedded image ids'),
    z: await readMatrixNpy(p.embedZ, 'z'),
    c: await readMatrixNpy(p.embedC, 'c'),
    zShape: shapes.z,
    cShape: shapes.c,
  };
}

/** A feature table as the stage that made it left it (or the user's file). */
export async function readTable(c: EncodeConfig, t: TableSpec): Promise<FeatureTable> {
  const p = encodePaths(c.out);
  if (t.spec.kind === 'file') return readFeatureFile(t.spec);
  const ids = await readIntVectorNpy(p.embedIds, 'embedded image ids');
  const file = t.spec.kind === 'z' ? p.embedZ : t.spec.kind === 'c' ? p.embedC : p.table(t.key);
  const x = await readMatrixNpy(file, `feature set '${t.name}'`);
  return { name: t.name, ids, x, description: describeFeatures(t.spec, t.layer, t.timestep), layer: t.layer, timestep: t.timestep };
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

/** The training and test rows of a table, aligned with the betas. */
async function alignedTable(c: EncodeConfig, t: TableSpec, betas: NsdExtraction): Promise<{ table: FeatureTable; train: Matrix; test: Matrix }> {
  const table = await readTable(c, t);
  return { table, train: alignFeatures(table, betas.trainImageIds, 'training', c.nsd.subject), test: alignFeatures(table, betas.testImageIds, 'test', c.nsd.subject) };
}

// ---- the stages -----------------------------------------------------------------------------------------

/** NSD betas for the mask (cached by the adapter) and the 73k ids of their rows. */
async function extractStage(c: EncodeConfig, ctx: StageRunContext): Promise<StageResult> {
  const p = encodePaths(c.out);
  const betas = await betasOf(c, ctx);
  await writeJson(p.ids, { train: Array.from(betas.trainImageIds), test: Array.from(betas.testImageIds) });
  return {
    outputs: [relative(c.out, p.ids)],
    summary: { voxels: betas.train.cols, trainRows: betas.train.rows, testImages: betas.test.rows, fromCache: betas.fromCache },
  };
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

/** The noise ceiling per voxel (none written when there is none). */
async function ceilingStage(c: EncodeConfig): Promise<StageResult> {
  const p = encodePaths(c.out);
  const betas = await betasOf(c);
  const { mask } = await loadRegionMask(c.nsd.root, c.nsd.subject, c.nsd.roi);
  const nc = await noiseCeiling(c, betas, mask);
  if (!nc) return { outputs: [], summary: { noiseCeiling: 'none' } };
  await mkdir(dirname(p.noiseCeiling), { recursive: true });
  await writeNpy(p.noiseCeiling, nc, [nc.length]);
  return { outputs: [relative(c.out, p.noiseCeiling)], summary: { noiseCeiling: c.noiseCeiling, mean: mean(nc) } };
}

/** z and c of every image with betas, the inputs of every model feature set. */
async function embedStage(c: EncodeConfig, ctx: StageRunContext): Promise<StageResult> {
  const p = encodePaths(c.out);
  const idsOf = await readJson<{ train: number[]; test: number[] }>(p.ids);
  const ids = Int32Array.from(new Set([...idsOf.train, ...idsOf.test])).sort();
  const stimuli = await NsdStimuli.open(c.nsd.root);
  const captions = await loadNsdCaptions(c.nsd.root, c.nsd.captions ?? undefined);
  const diffusion = await Diffusion.load(c.model!, { components: ['text_encoder', 'vae_encoder'] });
  let e: Embeddings;
  try {
    e = await embedImages(diffusion, ids, { image: (id) => stimuli.image(id, c.imageSize), captions: (id) => captions.get(id) }, {
      batch: c.featureBatch,
      signal: ctx.signal,
      onProgress: (done, total) => ctx.progress(done / total, `${done}/${total} images`),
    });
  } finally {
    diffusion.dispose();
    stimuli.close();
  }
  await mkdir(dirname(p.embedZ), { recursive: true });
  await writeNpy(p.embedZ, e.z.data, [e.z.rows, e.z.cols]);
  await writeNpy(p.embedC, e.c.data, [e.c.rows, e.c.cols]);
  await writeNpy(p.embedIds, e.ids, [e.ids.length]);
  await writeJson(p.embedShapes, { z: e.zShape, c: e.cShape });
  return { outputs: [p.embedZ, p.embedC, p.embedIds, p.embedShapes].map((f) => relative(c.out, f)), summary: { images: ids.length, z: e.zShape, c: e.cShape } };
}

/** The tables of one z_c or U-Net feature set, computed from z and c. */
async function featuresStage(c: EncodeConfig, set: string, ctx: StageRunContext): Promise<StageResult> {
  const p = encodePaths(c.out);
  const spec = c.featureSets.find((s) => s.name === set)!;
  const e = await readEmbeddings(c);
  const opts = { batch: c.featureBatch, signal: ctx.signal, onProgress: (done: number, total: number) => ctx.progress(done / total, `${done}/${total} images`) };
  let tables: FeatureTable[];
  if (spec.kind === 'zc') {
    const diffusion = await Diffusion.load(c.model!, { components: ['text_encoder', 'vae_encoder', 'unet'] });
    try {
      tables = [await zcFeatures(diffusion, spec, e, opts)];
    } finally {
      diffusion.dispose();
    }
  } else if (spec.kind === 'unet') tables = await unetLayerFeatures(c.model!, spec, e, opts);
  else throw new InvalidArgumentError(`features.${set}: feature set '${set}' is of kind '${spec.kind}', computed elsewhere`);
  const keys = new Map(tableSpecs(c).map((t) => [t.name, t.key]));
  const outputs: string[] = [];
  for (const t of tables) {
    const file = p.table(keys.get(t.name)!);
    await mkdir(dirname(file), { recursive: true });
    await writeNpy(file, t.x.data, [t.x.rows, t.x.cols]);
    outputs.push(relative(c.out, file));
  }
  return { outputs, summary: { tables: tables.map((t) => ({ name: t.name, features: t.x.cols })) } };
}

export interface FitInfo {
  name: string;
  description: string;
  features: number;
  route: string;
  meanR: number;
}

/** RidgeCV from one table to every voxel: per-voxel alpha by CV grouped by image, held-out r and R². */
async function fitStage(c: EncodeConfig, t: TableSpec, ctx: StageRunContext): Promise<StageResult> {
  const p = encodePaths(c.out).fit(t.key);
  const betas = await betasOf(c);
  const { table, train, test } = await alignedTable(c, t, betas);
  const model = await new RidgeCV({
    alphas: c.ridge.alphas,
    folds: c.ridge.folds,
    groups: betas.trainImageIds,
    score: c.ridge.score,
    route: c.ridge.route,
    cvMethod: c.ridge.cvMethod,
    standardize: true,
    memoryBudget: c.ridge.memoryBudget,
  }).fit(train, betas.train, { signal: ctx.signal, onProgress: (e) => ctx.progress(e.fraction, e.stage) });
  const pred = model.predict(test);
  const r = columnPearson(pred, betas.test);
  const r2 = columnR2(pred, betas.test);
  await mkdir(dirname(p.r), { recursive: true });
  await writeNpy(p.r, r, [r.length]);
  await writeNpy(p.r2, r2, [r2.length]);
  await writeNpy(p.alphas, model.bestAlphas, [model.bestAlphas.length]);
  const info: FitInfo = { name: t.name, description: table.description, features: table.x.cols, route: `${model.info?.route ?? ''}/${model.info?.cvMethod ?? ''}`, meanR: mean(r) };
  await writeJson(p.info, info);
  return { outputs: [p.r, p.r2, p.alphas, p.info].map((f) => relative(c.out, f)), summary: { ...info } };
}

export interface BandedInfo {
  name: string;
  sets: string[];
  description: string;
  features: number;
  meanR: number;
  /** Variance partitioning was done (unique_<i>.npy per set, shared.npy). */
  partition: boolean;
  meanUnique: Record<string, number>;
}

/** Banded ridge over several tables; with two or more, variance partitioning by held-out R². */
async function bandedStage(c: EncodeConfig, b: BandedSpec, ctx: StageRunContext): Promise<StageResult> {
  const p = encodePaths(c.out).banded(b.name);
  const betas = await betasOf(c);
  const tables = new Map(tableSpecs(c).map((t) => [t.name, t]));
  const aligned = new Map<string, { train: Matrix; test: Matrix }>();
  for (const s of b.sets) aligned.set(s, await alignedTable(c, tables.get(s)!, betas));
  const pick = (role: 'train' | 'test') => Object.fromEntries(b.sets.map((s) => [s, aligned.get(s)![role]]));
  const opts = { alphas: b.alphas ?? c.ridge.alphas, nIter: b.nIter, seed: b.seed, groups: betas.trainImageIds, folds: c.ridge.folds, standardize: true };
  const outputs: string[] = [];
  const meanUnique: Record<string, number> = {};
  let r: Float32Array;
  let weights: Matrix;
  await mkdir(dirname(p.r), { recursive: true });
  const partition = b.sets.length >= 2 && b.partition;
  if (partition) {
    const vp = await partitionVariance(pick('train'), betas.train, pick('test'), betas.test, opts, {
      signal: ctx.signal,
      onProgress: (e) => ctx.progress(e.fraction, e.stage),
    });
    r = vp.jointR;
    weights = vp.model.bandWeights();
    for (const [i, n] of vp.bandNames.entries()) {
      const k = b.sets.indexOf(n);
      await writeNpy(p.unique(k), vp.unique[i], [vp.unique[i].length]);
      outputs.push(p.unique(k));
      meanUnique[n] = mean(vp.unique[i]);
    }
    await writeNpy(p.shared, vp.shared, [vp.shared.length]);
    outputs.push(p.shared);
  } else {
    const m = await new BandedRidgeCV(opts).fit(pick('train'), betas.train, { signal: ctx.signal });
    r = columnPearson(m.predict(pick('test')), betas.test);
    weights = m.bandWeights();
  }
  await writeNpy(p.r, r, [r.length]);
  await writeNpy(p.weights, weights.data, [weights.rows, weights.cols]);
  const info: BandedInfo = {
    name: b.name,
    sets: b.sets,
    description: `banded ridge over ${b.sets.join(' + ')} (${b.nIter} candidates)`,
    features: b.sets.reduce((s, n) => s + aligned.get(n)!.train.cols, 0),
    meanR: mean(r),
    partition,
    meanUnique,
  };
  await writeJson(p.info, info);
  outputs.push(p.r, p.weights, p.info);
  return { outputs: outputs.map((f) => relative(c.out, f)), summary: { ...info } };
}

/** What the maps and the report show: every fitted table and banded model, with its region rows. */
export interface EncodeOutputs {
  mask: VoxelMask;
  ceiling: Float32Array | null;
  fits: { table: TableSpec; info: FitInfo; r: Float32Array; r2: Float32Array; bestAlphas: Float32Array; regions: RegionRow[] }[];
  banded: { spec: BandedSpec; info: BandedInfo; r: Float32Array; weights: Matrix; unique: Record<string, Float32Array>; shared: Float32Array; regions: RegionRow[] }[];
  missingAtlases: string[];
}

/** Reads every fit and banded model of a finished run (or one whose fit and banded stages have finished). */
export async function readEncodeOutputs(c: EncodeConfig): Promise<EncodeOutputs> {
  const p = encodePaths(c.out);
  const { mask } = await loadRegionMask(c.nsd.root, c.nsd.subject, c.nsd.roi);
  const ceiling = existsSync(p.noiseCeiling) ? await readVector(p.noiseCeiling, 'noise ceiling') : null;
  const { labels, missing } = await loadRegionLabels(c.nsd.root, c.nsd.subject, c.regions, mask);
  const fits: EncodeOutputs['fits'] = [];
  for (const t of tableSpecs(c)) {
    const f = p.fit(t.key);
    const r = await readVector(f.r, `held-out r of ${t.name}`);
    fits.push({ table: t, info: await readJson<FitInfo>(f.info), r, r2: await readVector(f.r2, `R² of ${t.name}`), bestAlphas: await readVector(f.alphas, `alphas of ${t.name}`), regions: regionTable(t.name, r, labels, ceiling) });
  }
  const banded: EncodeOutputs['banded'] = [];
  for (const b of c.banded) {
    const f = p.banded(b.name);
    const info = await readJson<BandedInfo>(f.info);
    const r = await readVector(f.r, `held-out r of ${b.name}`);
    const unique: Record<string, Float32Array> = {};
    if (info.partition) for (const [k, s] of b.sets.entries()) unique[s] = await readVector(f.unique(k), `unique R² of ${s} in ${b.name}`);
    const shared = info.partition ? await readVector(f.shared, `shared R² in ${b.name}`) : new Float32Array(mask.indices.length);
    banded.push({ spec: b, info, r, weights: await readMatrixNpy(f.weights, `band weights of ${b.name}`), unique, shared, regions: regionTable(b.name, r, labels, ceiling) });
  }
  return { mask, ceiling, fits, banded, missingAtlases: missing };
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

/** The maps of a banded model: its r, and the unique and shared variance of each set. */
export function bandedMaps(b: { spec: BandedSpec; info: BandedInfo }): { name: string; map: string; key: string; description: string }[] {
  const p = encodePaths('');
  const list = b.info.partition
    ? [
        ...b.spec.sets.map((s) => ({ name: `${b.spec.name}_unique-${s}`, key: `unique-${s}`, description: `unique R2 of ${s} in ${b.spec.name}` })),
        { name: `${b.spec.name}_shared`, key: 'shared', description: `shared R2 in ${b.spec.name}` },
      ]
    : [];
  return [...list, { name: b.spec.name, key: 'r', description: `held-out r of banded ${b.spec.name}` }].map((m) => ({ ...m, map: p.map(m.name) }));
}

/** NIfTI maps on the subject's grid and mosaics of every result, and the region table. */
async function mapsStage(c: EncodeConfig, ctx: StageRunContext): Promise<StageResult> {
  const p = encodePaths(c.out);
  const o = await readEncodeOutputs(c);
  const region = await loadRegionMask(c.nsd.root, c.nsd.subject, c.nsd.roi);
  const background = await brainBackground(c.nsd.root, c.nsd.subject, o.mask);
  const outputs: string[] = [];
  const writeMap = async (name: string, values: Float32Array, description: string) => {
    const map = p.map(name), mosaic = p.mosaic(name);
    await mkdir(dirname(join(c.out, map)), { recursive: true });
    await mkdir(dirname(join(c.out, mosaic)), { recursive: true });
    await writeNiftiMap(join(c.out, map), region.header, o.mask, values, description.slice(0, 79));
    const vol = new Float32Array(o.mask.grid[0] * o.mask.grid[1] * o.mask.grid[2]).fill(NaN);
    o.mask.indices.forEach((i, j) => (vol[i] = values[j]));
    await writeMosaic(join(c.out, mosaic), o.mask.grid, vol, background, c.mosaic);
    outputs.push(map, mosaic);
  };
  const total = 1 + o.fits.length + o.banded.length;
  if (o.ceiling) await writeMap('noise-ceiling', o.ceiling, 'noise ceiling (fraction of variance)');
  for (const [i, f] of o.fits.entries()) {
    await writeMap(f.table.name, f.r, `held-out r ${f.table.name}`);
    ctx.progress((1 + i) / total, f.table.name);
  }
  for (const [i, b] of o.banded.entries()) {
    const values: Record<string, Float32Array> = { ...Object.fromEntries(Object.entries(b.unique).map(([s, v]) => [`unique-${s}`, v])), shared: b.shared, r: b.r };
    for (const m of bandedMaps(b)) await writeMap(m.name, values[m.key], m.description);
    ctx.progress((1 + o.fits.length + i) / total, b.spec.name);
  }
  await writeFile(p.regions, regionCsv([...o.fits.flatMap((f) => f.regions), ...o.banded.flatMap((b) => b.regions)]));
  outputs.push(relative(c.out, p.regions));
  return { outputs, summary: { maps: outputs.length - 1 } };
}

/** report.html (the region table, then each result's mosaic beside its regions) and encoding.json. */
async function reportStage(c: EncodeConfig): Promise<StageResult> {
  const p = encodePaths(c.out);
  const o = await readEncodeOutputs(c);
  const ids = await readJson<{ train: number[]; test: number[] }>(p.ids);
  const V = o.mask.indices.length;
  const entries: ReportEntry[] = [
    ...o.fits.map((f) => ({ name: f.table.name, description: f.info.description, mosaic: p.mosaic(f.table.name), map: p.map(f.table.name), meanR: f.info.meanR, rows: f.regions })),
    ...o.banded.map((b) => ({ name: b.spec.name, description: b.info.description, mosaic: p.mosaic(b.spec.name), map: p.map(b.spec.name), meanR: b.info.meanR, rows: b.regions })),
  ];
  const meta: Record<string, string> = {
    subject: String(c.nsd.subject),
    mask: `${c.nsd.roi} (${V} voxels)`,
    'training images': String(ids.train.length),
    'test images': `${ids.test.length} (betas averaged over repetitions)`,
    'z-scoring': c.nsd.zscore,
    alphas: c.ridge.alphas.map((a) => a.toPrecision(3)).join(', '),
    'noise ceiling': o.ceiling ? 'yes' : 'none',
  };
  if (o.missingAtlases.length) meta['atlases not found'] = o.missingAtlases.join(', ');
  await writeFile(p.report, reportHtml(`Encoding models, subject ${c.nsd.subject}`, meta, entries));
  const summary = {
    format: 'brainlatent-encoding',
    version: 1,
    createdAt: new Date().toISOString(),
    config: c,
    voxels: V,
    trainImages: ids.train.length,
    testImages: ids.test.length,
    voxelOrder: 'mask order: flat NIfTI indices, x fastest (see maps/*.nii.gz for the volumes)',
    featureSets: [
      ...o.fits.map((f) => ({ name: f.table.name, description: f.info.description, features: f.info.features, route: f.info.route, meanR: f.info.meanR, map: p.map(f.table.name), mosaic: p.mosaic(f.table.name) })),
      ...o.banded.map((b) => ({ name: b.spec.name, description: b.info.description, features: b.info.features, route: 'banded', meanR: b.info.meanR, map: p.map(b.spec.name), mosaic: p.mosaic(b.spec.name) })),
    ],
    banded: o.banded.map((b) => ({ name: b.spec.name, sets: b.spec.sets, maps: Object.fromEntries(bandedMaps(b).map((m) => [m.key, m.map])), meanUnique: b.info.meanUnique })),
  };
  await writeJson(p.summary, summary);
  return { outputs: [p.report, p.summary].map((f) => relative(c.out, f)) };
}

/** encode()'s stages for a config, in dependency order. */
export function encodeStages(c: EncodeConfig): StageDef[] {
  const tables = tableSpecs(c);
  const stageOf = new Map(tables.map((t) => [t.name, t.stage]));
  const stages: StageDef[] = [
    { id: 'extract', deps: [], describe: `NSD betas of subject ${c.nsd.subject} in '${c.nsd.roi}' (cached in ${c.nsd.cacheDir ?? join(c.out, 'cache')})`, run: (ctx) => extractStage(c, ctx) },
    { id: 'ceiling', deps: ['extract'], describe: `noise ceiling (${c.noiseCeiling})`, run: () => ceilingStage(c) },
  ];
  if (tables.some((t) => t.stage !== null)) {
    stages.push({ id: 'embed', deps: ['extract'], describe: `z and c of every image (${c.imageSize} px, ${c.featureBatch} per call)`, run: (ctx) => embedStage(c, ctx) });
  }
  for (const s of c.featureSets) {
    if (s.kind !== 'zc' && s.kind !== 'unet') continue;
    const what = s.kind === 'zc' ? `z_c at strength ${s.strength}` : `U-Net ${s.layers.length} layer(s) × ${s.timesteps.length} timestep(s)`;
    stages.push({ id: `features.${s.name}`, deps: ['embed'], describe: `feature set '${s.name}': ${what}`, run: (ctx) => featuresStage(c, s.name, ctx) });
  }
  for (const t of tables) {
    stages.push({ id: `fit.${t.key}`, deps: ['extract', ...(t.stage ? [t.stage] : [])], describe: `RidgeCV of '${t.name}'`, run: (ctx) => fitStage(c, t, ctx) });
  }
  for (const b of c.banded) {
    const deps = [...new Set(b.sets.map((s) => stageOf.get(s)).filter((s): s is string => !!s))];
    stages.push({ id: `banded.${b.name}`, deps: ['extract', ...deps], describe: `banded ridge '${b.name}' over ${b.sets.join(' + ')}`, run: (ctx) => bandedStage(c, b, ctx) });
  }
  const results = stages.filter((s) => s.id.startsWith('fit.') || s.id.startsWith('banded.')).map((s) => s.id);
  stages.push({ id: 'maps', deps: ['ceiling', ...results], describe: 'NIfTI maps, mosaics and regions.csv', run: (ctx) => mapsStage(c, ctx) });
  stages.push({ id: 'report', deps: ['maps'], describe: 'report.html and encoding.json', run: () => reportStage(c) });
  const ids = new Set<string>();
  for (const s of stages) {
    if (ids.has(s.id)) throw new InvalidArgumentError(`encode: two stages are named '${s.id}'; rename the feature set or banded model`);
    ids.add(s.id);
  }
  return stages;
}
