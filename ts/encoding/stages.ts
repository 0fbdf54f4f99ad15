/**
 * encode()'s stages, each with one job, reading its inputs from the run folder and writing its outputs there,
 * so that each can run on its own (a job of a batch's graph) once the stages it depends on have finished:
 *
 *   extract → ceiling                     NSD betas (cached), the noise ceiling
 *   extract → embed → features.<set>      z and c of every image; z_c and U-Net tables from them
 *   extract, features → fit.<table>       RidgeCV per table: held-out r, R², alphas per voxel
 *   extract, features → banded.<name>     banded ridge and variance partitioning
 *   ceiling, fits, banded → maps          NIfTI maps (data/maps.json lists them), regions.csv
 *   maps → report                         encoding.json, mosaics, report.html (+ report_files/)
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';

import type { BandedSpec, EncodeConfig } from '../config/encode.js';
import { FormatError, InvalidArgumentError, MissingFileError, OutOfMemoryError, ShapeError } from '../errors.js';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomicWrite.js';
import { readIntVectorNpy, readMatrixNpy, readNpy, writeNpy } from '../io/npy.js';
import { readNiftiMasked, writeNiftiMap } from '../io/nifti.js';
import type { VoxelMask } from '../io/voxelMask.js';
import type { Matrix } from '../matrix.js';
import { loadNsdCaptions } from '../nsd/captions.js';
import { cacheUpkeepSummary, extractStageCacheUpkeep } from '../nsd/cache.js';
import { extractNsd, type NsdExtractOptions } from '../nsd/extract.js';
import type { NsdExtraction } from '../nsd/output.js';
import { ncsnrPath } from '../nsd/paths.js';
import { loadRegionMask } from '../nsd/roi.js';
import { NsdStimuli } from '../nsd/stimuli.js';
import { extractionContentKey } from '../pipeline/extractionKey.js';
import { imageSetKey, readStageMarker } from '../pipeline/runFolder.js';
import type { StageDef, StageResult, StageRunContext } from '../pipeline/stageRunner.js';
import { inConfigUnits } from '../ridge/memoryPlan.js';
import { RidgeCV } from '../ridge/RidgeCV.js';
import { Diffusion } from '../sd/Diffusion.js';
import { BandedRidgeCV } from '../ridge/BandedRidgeCV.js';
import type { BandedRidgeModel } from '../ridge/BandedRidgeModel.js';
import { weightsInSetOrder } from './bandWeights.js';
import { alphaGridNote, log10Alphas } from './alphaMaps.js';
import { describeFeatures, embedImages, readFeatureFile, unetLayerFeatures, zcFeatures, type Embeddings, type FeatureTable } from './features.js';
import { constantColumns, heldOutScores, mean, undefinedWhere } from './metrics.js';
import { bandedMapKey, mapFile, type EncodingSummary, type MapRecord } from './mapFiles.js';
import { estimateNcsnr, noiseCeilingFromNcsnr, trialsPerTestImage } from './noiseCeiling.js';
import { constantVoxelsWarning, loadRegionLabels, regionCsv, regionTable, type RegionRow } from './regions.js';
import { ENCODE_REPORT_RERUN, mapRecordsOf, writeEncodingReport } from './report.js';
import { missingDependenciesSummary } from '../report/optionalParts.js';
import { encodeBandedOptions, encodeFitOptions } from './ridgeMemory.js';
import { encodePaths, tableSpecs, type TableSpec } from './runPaths.js';
import { encodeStageInputs } from './stageInputs.js';
import { PARTITION_CONVENTION, partitionVariance } from './variancePartition.js';

/** The NSD extraction encode makes (the batch's shared extraction uses the same, so encode finds it cached). */
export function encodeExtractOptions(c: EncodeConfig): Omit<NsdExtractOptions, 'onProgress'> {
  return {
    root: c.nsd.root,
    subject: c.nsd.subject,
    roi: c.nsd.roi,
    sessions: c.nsd.sessions ?? undefined,
    format: c.nsd.format,
    zscore: c.nsd.zscore,
    ...(c.nsd.zscoreDdof === undefined ? {} : { ddof: c.nsd.zscoreDdof }),
    averageTrain: c.nsd.averageTrain,
    averageTest: true,
    divisor: c.nsd.divisor,
    cacheDir: c.nsd.cacheDir ?? join(c.out, 'cache'),
    // (the config's field, which a message about the cache names where it says to point it elsewhere)
    cacheLabel: 'nsd.cacheDir',
  };
}

// ---- what the stages read -------------------------------------------------------------------------------

// (with the stage's signal, Ctrl-C stops the session being read rather than waiting for the whole extraction: every
// stage's, a cache hit's read is short but a missing entry reads every session; `ctx`: the extract stage's progress)
const betasOf = (c: EncodeConfig, signal: AbortSignal | undefined, ctx?: StageRunContext) =>
  extractNsd({ ...encodeExtractOptions(c), signal, onProgress: ctx ? (e) => ctx.progress(e.done / e.total, `session ${e.session}`, { done: e.done, total: e.total, unit: 'sessions' }) : undefined });

// Every output is written under a temporary name and renamed into place (a kill leaves the old file or the new one).
const writeJson = (path: string, value: unknown): Promise<void> => writeJsonAtomic(path, value);

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
  const betas = await betasOf(c, ctx.signal, ctx);
  const ids = { train: Array.from(betas.trainImageIds), test: Array.from(betas.testImageIds) };
  await writeJson(p.ids, ids);
  // old entries of the cache go (replaced ones; in the run folder's own cache, those its config no longer reads)
  const upkeep = await extractStageCacheUpkeep(c.nsd.cacheDir === null ? join(c.out, 'cache') : null, [betas]);
  return {
    outputs: [relative(c.out, p.ids)],
    // what the stages after it read, by content: the same betas in a file with new times rerun none of them (the
    // ceiling's 'estimate' reads the single trials of the same files, which this does not cover: it declares the
    // files as its inputs, encodeStageInputs)
    outputKey: extractionContentKey([betas], [JSON.stringify(ids)]),
    summary: { voxels: betas.train.cols, trainRows: betas.train.rows, testImages: betas.test.rows, fromCache: betas.fromCache, sessions: betas.manifest.inputs.sessions, ...cacheUpkeepSummary(upkeep) },
  };
}

async function noiseCeiling(c: EncodeConfig, betas: NsdExtraction, mask: VoxelMask, ctx: StageRunContext): Promise<Float32Array | null> {
  const mode = c.noiseCeiling;
  if (mode === 'none') return null;
  // every test image is scored, each the mean of its own trials: the ceiling's noise term averages 1/n over them
  const trials = trialsPerTestImage(betas.manifest.counts.testRepetitions);
  if (mode === 'estimate') {
    const { averageTrain: _a, cacheDir: _c, ...rest } = encodeExtractOptions(c);
    // (every session read again, uncached: the signal stops the read in flight, and each session read is reported, as
    // the extract stage's are: the stage is this read)
    const single = await extractNsd({
      ...rest,
      averageTest: false,
      signal: ctx.signal,
      onProgress: (e) => ctx.progress(e.done / e.total, `single trials: session ${e.session}`, { done: e.done, total: e.total, unit: 'sessions' }),
    });
    return noiseCeilingFromNcsnr(estimateNcsnr(single.test, single.testImageIds), trials);
  }
  const path = mode === 'auto' ? ncsnrPath(c.nsd.root, c.nsd.subject) : mode;
  if (!existsSync(path)) {
    if (mode === 'auto') return null;
    throw new MissingFileError(`noiseCeiling: ${path} does not exist`);
  }
  const { betas: m } = await readNiftiMasked(path, mask);
  return noiseCeilingFromNcsnr(m.data.subarray(0, mask.indices.length), trials);
}

/** The noise ceiling per voxel (none written when there is none). */
async function ceilingStage(c: EncodeConfig, ctx: StageRunContext): Promise<StageResult> {
  const p = encodePaths(c.out);
  const betas = await betasOf(c, ctx.signal);
  const { mask } = await loadRegionMask(c.nsd.root, c.nsd.subject, c.nsd.roi);
  const nc = await noiseCeiling(c, betas, mask, ctx);
  // (its key is its values': 'estimate' reruns on any new time of the betas files, whose single trials it reads,
  // and the same ceiling then leaves maps and report as they are)
  if (!nc) {
    // (a ceiling an earlier run wrote, its ncsnr gone since: the maps stage would read it as this run's)
    await rm(p.noiseCeiling, { force: true });
    return { outputs: [], outputKey: 'none', summary: { noiseCeiling: 'none' } };
  }
  await mkdir(dirname(p.noiseCeiling), { recursive: true });
  await writeNpy(p.noiseCeiling, nc, [nc.length]);
  const outputKey = createHash('sha256').update(new Uint8Array(nc.buffer, nc.byteOffset, nc.byteLength)).digest('hex').slice(0, 32);
  return { outputs: [relative(c.out, p.noiseCeiling)], outputKey, summary: { noiseCeiling: c.noiseCeiling, mean: mean(nc) } };
}

/** The images the embed stage embeds: every image with betas (training and test), ascending; all it reads of the extraction. */
async function embeddedImages(c: EncodeConfig): Promise<Int32Array> {
  const idsOf = await readJson<{ train: number[]; test: number[] }>(encodePaths(c.out).ids);
  return Int32Array.from(new Set([...idsOf.train, ...idsOf.test])).sort();
}

/** z and c of every image with betas, the inputs of every model feature set. */
async function embedStage(c: EncodeConfig, ctx: StageRunContext): Promise<StageResult> {
  const p = encodePaths(c.out);
  const ids = await embeddedImages(c);
  const stimuli = await NsdStimuli.open(c.nsd.root);
  const captions = await loadNsdCaptions(c.nsd.root, c.nsd.captions ?? undefined);
  const diffusion = await Diffusion.load(c.model!, { components: ['text_encoder', 'vae_encoder'] });
  let e: Embeddings;
  try {
    e = await embedImages(diffusion, ids, { image: (id) => stimuli.image(id, c.imageSize), captions: (id) => captions.get(id) }, {
      batch: c.featureBatch,
      signal: ctx.signal,
      onProgress: (done, total) => ctx.progress(done / total, undefined, { done, total, unit: 'images' }),
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
  const opts = { batch: c.featureBatch, signal: ctx.signal, onProgress: (done: number, total: number) => ctx.progress(done / total, undefined, { done, total, unit: 'images' }) };
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
  const betas = await betasOf(c, ctx.signal);
  const { table, train, test } = await alignedTable(c, t, betas);
  // (the options the preflight planned this fit's memory with)
  const model = await new RidgeCV(encodeFitOptions(c, betas.trainImageIds))
    .fit(train, betas.train, { signal: ctx.signal, onProgress: (e) => ctx.progress(e.fraction, e.stage) })
    .catch((e: unknown) => {
      // the engine counts in GiB and names its own option; the config's is ridge.memoryBudget, in bytes
      throw e instanceof OutOfMemoryError ? inConfigUnits(e, c.ridge.memoryBudget) : e;
    });
  // (NaN where the test betas are constant: nothing to explain there; the maps stage counts and warns)
  const { r, r2 } = heldOutScores(model.predict(test), betas.test);
  await mkdir(dirname(p.r), { recursive: true });
  await writeNpy(p.r, r, [r.length]);
  await writeNpy(p.r2, r2, [r2.length]);
  await writeNpy(p.alphas, unfittedNaN(model.bestAlphas, betas.train), [model.bestAlphas.length]);
  const info: FitInfo = { name: t.name, description: table.description, features: table.x.cols, route: `${model.info?.route ?? ''}/${model.info?.cvMethod ?? ''}`, meanR: mean(r) };
  await writeJson(p.info, info);
  return { outputs: [p.r, p.r2, p.alphas, p.info].map((f) => relative(c.out, f)), summary: { ...info } };
}

/**
 * The chosen alphas with NaN at the voxels whose training betas are constant: every alpha scores alike there and the
 * tie went to the largest, which the log10-alpha maps drew as a choice and counted in their region means (review s45).
 */
function unfittedNaN(alphas: Float32Array, train: Matrix, flat = constantColumns(train, 'training betas')): Float32Array {
  return undefinedWhere(Float32Array.from(alphas), flat);
}

export interface BandedInfo {
  name: string;
  sets: string[];
  description: string;
  features: number;
  meanR: number;
  /** Variance partitioning was done (unique_<i>.npy and r2_without_<i>.npy per set, shared.npy). */
  partition: boolean;
  meanUnique: Record<string, number>;
}

/** Banded ridge over several tables; with two or more, variance partitioning by held-out R². */
async function bandedStage(c: EncodeConfig, b: BandedSpec, ctx: StageRunContext): Promise<StageResult> {
  const p = encodePaths(c.out).banded(b.name);
  const betas = await betasOf(c, ctx.signal);
  const tables = new Map(tableSpecs(c).map((t) => [t.name, t]));
  const aligned = new Map<string, { train: Matrix; test: Matrix }>();
  for (const s of b.sets) aligned.set(s, await alignedTable(c, tables.get(s)!, betas));
  const pick = (role: 'train' | 'test') => Object.fromEntries(b.sets.map((s) => [s, aligned.get(s)![role]]));
  const opts = encodeBandedOptions(c, b, betas.trainImageIds);
  // the engine counts in GiB and names its own option; the config's is ridge.memoryBudget, in bytes
  const inBudgetUnits = (e: unknown): never => {
    throw e instanceof OutOfMemoryError ? inConfigUnits(e, c.ridge.memoryBudget) : e;
  };
  const outputs: string[] = [];
  const meanUnique: Record<string, number> = {};
  let r: Float32Array;
  let r2: Float32Array;
  let model: BandedRidgeModel;
  await mkdir(dirname(p.r), { recursive: true });
  const partition = b.sets.length >= 2 && b.partition;
  if (partition) {
    const vp = await partitionVariance(pick('train'), betas.train, pick('test'), betas.test, opts, {
      signal: ctx.signal,
      onProgress: (e) => ctx.progress(e.fraction, e.stage),
    }).catch(inBudgetUnits);
    r = vp.jointR;
    r2 = vp.joint;
    model = vp.model;
    for (const [i, n] of vp.bandNames.entries()) {
      const k = b.sets.indexOf(n);
      await writeNpy(p.unique(k), vp.unique[i], [vp.unique[i].length]);
      await writeNpy(p.r2Without(k), vp.without[i], [vp.without[i].length]);
      outputs.push(p.unique(k), p.r2Without(k));
      meanUnique[n] = mean(vp.unique[i]);
    }
    await writeNpy(p.shared, vp.shared, [vp.shared.length]);
    outputs.push(p.shared);
  } else {
    model = await new BandedRidgeCV(opts).fit(pick('train'), betas.train, { signal: ctx.signal }).catch(inBudgetUnits);
    ({ r, r2 } = heldOutScores(model.predict(pick('test')), betas.test));
  }
  const weights = weightsInSetOrder(model, b.sets);
  const flat = constantColumns(betas.train, 'training betas');
  flat.forEach((f, j) => f && weights.data.fill(NaN, j * weights.cols, (j + 1) * weights.cols));
  await writeNpy(p.r, r, [r.length]);
  await writeNpy(p.r2, r2, [r2.length]);
  await writeNpy(p.alphas, unfittedNaN(model.bestAlpha, betas.train, flat), [model.bestAlpha.length]);
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
  outputs.push(p.r, p.r2, p.alphas, p.weights, p.info);
  return { outputs: outputs.map((f) => relative(c.out, f)), summary: { ...info } };
}

/** What the maps and the report show: every fitted table and banded model, with its region rows. */
export interface EncodeOutputs {
  mask: VoxelMask;
  ceiling: Float32Array | null;
  /** alphaGrid: the alphas searched (ridge.alphas; a banded model's own alphas when it has them). */
  fits: { table: TableSpec; info: FitInfo; r: Float32Array; r2: Float32Array; bestAlphas: Float32Array; alphaGrid: number[]; regions: RegionRow[] }[];
  /** r2Without: held-out R² of the model without each set, as measured (with partitioning; else empty). */
  banded: {
    spec: BandedSpec; info: BandedInfo; r: Float32Array; r2: Float32Array; r2Without: Record<string, Float32Array>; bestAlphas: Float32Array; alphaGrid: number[];
    weights: Matrix; unique: Record<string, Float32Array>; shared: Float32Array; regions: RegionRow[];
  }[];
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
    fits.push({ table: t, info: await readJson<FitInfo>(f.info), r, r2: await readVector(f.r2, `R² of ${t.name}`), bestAlphas: await readVector(f.alphas, `alphas of ${t.name}`), alphaGrid: c.ridge.alphas, regions: regionTable(t.name, r, labels, ceiling) });
  }
  const banded: EncodeOutputs['banded'] = [];
  for (const b of c.banded) {
    const f = p.banded(b.name);
    const info = await readJson<BandedInfo>(f.info);
    const r = await readVector(f.r, `held-out r of ${b.name}`);
    const unique: Record<string, Float32Array> = {};
    const r2Without: Record<string, Float32Array> = {};
    if (info.partition) {
      for (const [k, s] of b.sets.entries()) {
        unique[s] = await readVector(f.unique(k), `unique R² of ${s} in ${b.name}`);
        r2Without[s] = await readVector(f.r2Without(k), `held-out R² of ${b.name} without ${s}`);
      }
    }
    const shared = info.partition ? await readVector(f.shared, `shared R² in ${b.name}`) : new Float32Array(mask.indices.length);
    const r2 = await readVector(f.r2, `held-out R² of ${b.name}`);
    const bestAlphas = await readVector(f.alphas, `alphas of ${b.name}`);
    // (NaN rows: voxels whose training betas are constant, where nothing was fitted)
    const weights = await readMatrixNpy(f.weights, `band weights of ${b.name}`, { finite: false });
    banded.push({ spec: b, info, r, r2, r2Without, bestAlphas, alphaGrid: b.alphas ?? c.ridge.alphas, weights, unique, shared, regions: regionTable(b.name, r, labels, ceiling) });
  }
  return { mask, ceiling, fits, banded, missingAtlases: missing };
}

/** A map of the run: what it shows (its record, with its file names) and its values, one per voxel of the mask. */
export interface MapEntry {
  record: MapRecord;
  values: Float32Array;
  /** The NIfTI header's description (79 characters at most). */
  descrip: string;
}

const entry = (record: Omit<MapRecord, 'file' | 'mosaic'>, values: Float32Array, descrip: string): MapEntry => ({
  record: { ...record, ...mapFile(record) },
  values,
  descrip: descrip.slice(0, 79),
});

/**
 * Every map of a run's results: the noise ceiling; per table its held-out r and r/√NC; per joint model the
 * unique and shared variance of each set and its r. Names by mapFile (joint models keep their '+').
 */
export function mapEntries(o: EncodeOutputs): MapEntry[] {
  const out: MapEntry[] = [];
  const nc = o.ceiling;
  if (nc) {
    const description = "Noise ceiling: the fraction of the test betas' variance that is signal, NC = ncsnr² / (ncsnr² + mean(1/n)), n the trials averaged for each test image";
    out.push(entry({ kind: 'noise-ceiling', label: 'noise ceiling', description }, nc, 'noise ceiling (fraction of variance)'));
  }
  for (const f of o.fits) {
    const name = f.table.name;
    out.push(entry({ kind: 'r', featureSet: name, label: name, description: `Held-out r of ${name} (${f.info.description})` }, f.r, `held-out r ${name}`));
    if (nc) {
      const norm = f.r.map((v, j) => (nc[j] > 0.01 ? v / Math.sqrt(nc[j]) : NaN));
      const description = `Held-out r of ${name} divided by the square root of the noise ceiling: the share of the explainable correlation reached`;
      out.push(entry({ kind: 'r-over-sqrt-nc', featureSet: name, label: `${name} r/√NC`, description }, norm, `held-out r / sqrt(noise ceiling) ${name}`));
    }
    const alphaNote = `log10 of the ridge alpha of ${name} chosen per voxel by cross-validation on the training images (${alphaGridNote(f.bestAlphas, f.alphaGrid)})`;
    out.push(entry({ kind: 'alpha', featureSet: name, label: `${name}: alpha`, description: alphaNote }, log10Alphas(f.bestAlphas), `log10 alpha ${name}`));
  }
  for (const b of o.banded) {
    const name = b.spec.name;
    if (b.info.partition) {
      for (const s of b.spec.sets) {
        const description = `Variance of the test betas that only ${s} explains in the joint model ${name}`;
        out.push(entry({ kind: 'unique', banded: name, space: s, label: `${name}: unique R² of ${s}`, description }, b.unique[s], `unique R2 of ${s} in ${name}`));
      }
      const description = `Variance of the test betas that ${b.spec.sets.join(' and ')} explain together (either alone would do) in the joint model ${name}`;
      out.push(entry({ kind: 'shared', banded: name, label: `${name}: shared R²`, description }, b.shared, `shared R2 in ${name}`));
    }
    const description = `Held-out r of the joint model ${name}: banded ridge over ${b.spec.sets.join(' + ')}`;
    out.push(entry({ kind: 'banded-r', banded: name, label: name, description }, b.r, `held-out r of banded ${name}`));
    out.push(...bandedFitEntries(b));
  }
  return out;
}

/**
 * What a joint model's fit chose and scored, per voxel: its held-out R² (and that of the model without each set,
 * when partitioned), as measured; log10 of its alpha; the weight γ of each set. With these its r can be reproduced.
 */
function bandedFitEntries(b: EncodeOutputs['banded'][number]): MapEntry[] {
  const name = b.spec.name;
  const out: MapEntry[] = [];
  const r2 = `Held-out R² of the joint model ${name} on the test images, as measured (not floored: the partition floors it at 0)`;
  out.push(entry({ kind: 'banded-r2', banded: name, label: `${name}: R²`, description: r2 }, b.r2, `held-out R2 of banded ${name}`));
  for (const s of b.spec.sets) {
    if (!b.r2Without[s]) continue;
    const description = `Held-out R² of the joint model ${name} refitted without ${s}, as measured (unique R² of ${s} = max(joint R², 0) − max(this, 0))`;
    out.push(entry({ kind: 'banded-r2-without', banded: name, space: s, label: `${name}: R² without ${s}`, description }, b.r2Without[s], `held-out R2 of ${name} without ${s}`));
  }
  const alpha = `log10 of the alpha of the joint model ${name} chosen per voxel by cross-validation, shared by its sets (set i's penalty is alpha/γᵢ; ${alphaGridNote(b.bestAlphas, b.alphaGrid)})`;
  out.push(entry({ kind: 'banded-alpha', banded: name, label: `${name}: alpha`, description: alpha }, log10Alphas(b.bestAlphas), `log10 alpha of banded ${name}`));
  // (one set alone has γ = 1 everywhere)
  for (const [k, s] of b.spec.sets.length > 1 ? b.spec.sets.entries() : []) {
    const gamma = b.bestAlphas.map((_, j) => b.weights.data[j * b.weights.cols + k]);
    const description = `Weight γ of ${s} in the joint model ${name} chosen per voxel (the weights sum to 1; ${s}'s penalty is alpha/γ)`;
    out.push(entry({ kind: 'band-weight', banded: name, space: s, label: `${name}: γ of ${s}`, description }, gamma, `band weight of ${s} in ${name}`));
  }
  return out;
}

/** The maps of a banded model by key (r, r2, r2-without-<set>, alpha, gamma-<set>, shared, unique-<set>), as encoding.json and EncodeResult list them. */
export function bandedMaps(b: { spec: BandedSpec; info: BandedInfo }): Record<string, string> {
  const maps: Record<string, string> = {};
  const add = (kind: MapRecord['kind'], space?: string) => (maps[bandedMapKey({ kind, space })] = mapFile({ kind, banded: b.spec.name, space }).file);
  if (b.info.partition) {
    for (const s of b.spec.sets) add('unique', s);
    add('shared');
  }
  add('banded-r');
  add('banded-r2');
  if (b.info.partition) for (const s of b.spec.sets) add('banded-r2-without', s);
  add('banded-alpha');
  if (b.spec.sets.length > 1) for (const s of b.spec.sets) add('band-weight', s);
  return maps;
}

/** NIfTI maps on the subject's grid of every result, their list (data/maps.json) and the region table. */
async function mapsStage(c: EncodeConfig, ctx: StageRunContext): Promise<StageResult> {
  const p = encodePaths(c.out);
  const o = await readEncodeOutputs(c);
  const region = await loadRegionMask(c.nsd.root, c.nsd.subject, c.nsd.roi);
  const entries = mapEntries(o);
  await mkdir(join(c.out, 'maps'), { recursive: true });
  for (const [i, m] of entries.entries()) {
    await writeNiftiMap(join(c.out, m.record.file), region.header, o.mask, m.values, m.descrip);
    ctx.progress((i + 1) / (entries.length + 1), m.record.label);
  }
  const records = entries.map((m) => m.record);
  // the maps an earlier run listed that this one does not write (its noise ceiling gone, a feature set removed), and
  // their figures: the report stage draws only the maps it is given, so a dropped map's mosaic stayed (reviewer s24-R4)
  // (removed before the new list is written: the other way round, a kill between the two left them listed nowhere,
  // and never removed)
  const earlier = existsSync(p.maps) ? await readJson<MapRecord[]>(p.maps).catch(() => []) : [];
  const kept = new Set(records.flatMap((r) => [r.file, r.mosaic]));
  const stale = earlier.flatMap((old) => [old?.file, old?.mosaic]).filter((f): f is string => typeof f === 'string' && !kept.has(f) && !f.includes('..'));
  for (const f of stale) await rm(join(c.out, f), { force: true });
  await writeJson(p.maps, records);
  await writeFileAtomic(p.regions, regionCsv([...o.fits.flatMap((f) => f.regions), ...o.banded.flatMap((b) => b.regions)]));
  // (in its summary, so that a run that skips this stage still warns: encode reads the stages' `warnings`)
  const constant = constantVoxelCount(o);
  const warnings = constant ? [constantVoxelsWarning(constant, o.mask.indices.length)] : [];
  return { outputs: [...records.map((r) => r.file), relative(c.out, p.maps), relative(c.out, p.regions)], summary: { maps: records.length, constantVoxels: constant, ...(warnings.length ? { warnings } : {}) } };
}

/**
 * The mask's voxels whose measured test betas are constant: those whose held-out r is NaN (heldOutScores), the same
 * voxels in every fit of the run (one set of test betas); 0 for a folder fitted before r was NaN there.
 */
export function constantVoxelCount(o: Pick<EncodeOutputs, 'fits' | 'banded'>): number {
  const r = o.fits[0]?.r ?? o.banded[0]?.r;
  return r ? r.reduce((n, v) => n + (Number.isNaN(v) ? 1 : 0), 0) : 0;
}

/**
 * The maps' records as the maps stage listed them; a folder whose maps were written before that list was kept
 * has them in its encoding.json (version 1, old names such as maps/z_c.nii.gz), read as they are.
 */
export async function readMapRecords(c: EncodeConfig): Promise<MapRecord[]> {
  const p = encodePaths(c.out);
  if (existsSync(p.maps)) return readJson<MapRecord[]>(p.maps);
  if (existsSync(p.summary)) {
    const summary = await readJson<Parameters<typeof mapRecordsOf>[0]>(p.summary);
    // (versions 1 and 2 are read here; a newer layout's was read as version 2's)
    const version = (summary as { version?: unknown }).version;
    if (version !== 1 && version !== 2) {
      // (--force would replace a newer brainlatent's outputs with this one's: not the advice for those)
      const advice = typeof version === 'number' && version > 2 ? 'written by a newer brainlatent: upgrade brainlatent to read it, or use the one that wrote it' : 'run the maps stage again: encode --force';
      throw new FormatError(`${p.summary}: version ${JSON.stringify(version)}; this brainlatent reads encoding.json of version 1 or 2 (${advice})`, {
        path: p.summary,
        field: 'version',
      });
    }
    return mapRecordsOf(summary);
  }
  throw new InvalidArgumentError(`encode report: ${p.maps} does not exist; run the maps stage again (encode --force)`);
}

/** encoding.json (every map, the partition convention), the static figures and report.html with its viewer. */
async function reportStage(c: EncodeConfig): Promise<StageResult> {
  const p = encodePaths(c.out);
  const o = await readEncodeOutputs(c);
  const ids = await readJson<{ train: number[]; test: number[] }>(p.ids);
  const sessions = (await readStageMarker(c, 'extract'))?.summary?.sessions as number[] | undefined;
  const maps = await readMapRecords(c);
  const fileOf = (kind: 'r' | 'banded-r', name: string) => maps.find((m) => m.kind === kind && (m.featureSet ?? m.banded) === name) ?? { ...mapFile(kind === 'r' ? { kind, featureSet: name } : { kind, banded: name }) };
  const summary: EncodingSummary = {
    format: 'brainlatent-encoding',
    version: 2,
    createdAt: new Date().toISOString(),
    config: c,
    subject: c.nsd.subject,
    roi: c.nsd.roi,
    voxels: o.mask.indices.length,
    constantVoxels: constantVoxelCount(o),
    trainImages: new Set(ids.train).size,
    trainRows: ids.train.length,
    testImages: ids.test.length,
    ...(sessions ? { sessions } : {}),
    voxelOrder: 'mask order: flat NIfTI indices, x fastest (see maps/*.nii.gz for the volumes)',
    noiseCeiling: o.ceiling !== null,
    atlasesMissing: o.missingAtlases,
    partitionConvention: PARTITION_CONVENTION,
    maps,
    featureSets: [
      ...o.fits.map((f) => ({ name: f.table.name, description: f.info.description, features: f.info.features, route: f.info.route, meanR: f.info.meanR, map: fileOf('r', f.table.name).file, mosaic: fileOf('r', f.table.name).mosaic })),
      ...o.banded.map((b) => ({ name: b.spec.name, description: b.info.description, features: b.info.features, route: 'banded', meanR: b.info.meanR, map: fileOf('banded-r', b.spec.name).file, mosaic: fileOf('banded-r', b.spec.name).mosaic })),
    ],
    banded: o.banded.map((b) => ({ name: b.spec.name, sets: b.spec.sets, maps: bandedMaps(b), meanUnique: b.info.meanUnique })),
  };
  await writeJson(p.summary, summary);
  const report = await writeEncodingReport(c.out, summary);
  // without NiiVue: recorded, so that the run warns and, once it is installed, redoes this stage
  const missing = missingDependenciesSummary('report.html', 'its brain viewer', report.missing, ENCODE_REPORT_RERUN);
  return { outputs: [relative(c.out, p.summary), ...report.files], ...(report.missing ? { summary: missing } : {}) };
}

/** encode()'s stages for a config, in dependency order. */
export function encodeStages(c: EncodeConfig): StageDef[] {
  const tables = tableSpecs(c);
  const stageOf = new Map(tables.map((t) => [t.name, t.stage]));
  const stages: StageDef[] = [
    {
      id: 'extract', deps: [], describe: `NSD betas of subject ${c.nsd.subject} in '${c.nsd.roi}' (cached in ${c.nsd.cacheDir ?? join(c.out, 'cache')})`,
      // its marker records the extraction's content: the stages after it are keyed on that, not on when it ran
      keysOutputs: true,
      run: (ctx) => extractStage(c, ctx),
    },
    { id: 'ceiling', deps: ['extract'], describe: `noise ceiling (${c.noiseCeiling})`, keysOutputs: true, run: (ctx) => ceilingStage(c, ctx) },
  ];
  if (tables.some((t) => t.stage !== null)) {
    // new betas of the same trials leave z and c as they are: the extraction reruns, embed only for other images
    stages.push({
      id: 'embed', deps: ['extract'], describe: `z and c of every image (${c.imageSize} px, ${c.featureBatch} per call)`,
      depKey: async () => imageSetKey(await embeddedImages(c)),
      run: (ctx) => embedStage(c, ctx),
    });
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
  stages.push({ id: 'maps', deps: ['ceiling', ...results], describe: 'NIfTI maps and regions.csv', run: (ctx) => mapsStage(c, ctx) });
  stages.push({ id: 'report', deps: ['maps'], describe: 'encoding.json, the static figures (mosaics/) and report.html', run: () => reportStage(c) });
  const ids = new Set<string>();
  for (const s of stages) {
    if (ids.has(s.id)) throw new InvalidArgumentError(`encode: two stages are named '${s.id}'; rename the feature set or banded model`);
    ids.add(s.id);
  }
  // the files each reads from outside the run folder: a changed one reruns it
  return stages.map((s) => ({ ...s, inputs: encodeStageInputs(c, s.id) }));
}
