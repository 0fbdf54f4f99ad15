/** The pipeline's stages. Each reads its inputs from the run folder and writes its outputs there. */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';

import { CancelledError, OutOfMemoryError, ShapeError } from '../errors.js';
import { averageMetrics, Evaluation, type EvaluationProgress, type MetricValue } from '../eval/evaluate.js';
import { comparisonsLeftOut, leftOutCounts, metricsBetter, metricsCsv, metricValues, perImageValues, type TableRow } from '../eval/table.js';
import { readIntVectorNpy, readMatrixNpy, readNpy, writeNpy } from '../io/npy.js';
import type { Matrix } from '../matrix.js';
import { cacheUpkeepSummary, extractStageCacheUpkeep } from '../nsd/cache.js';
import { extractNsd, type NsdExtractOptions } from '../nsd/extract.js';
import { loadNsdCaptions } from '../nsd/captions.js';
import type { NsdExtraction } from '../nsd/output.js';
import { NsdStimuli } from '../nsd/stimuli.js';
import { columnPearson } from '../encoding/metrics.js';
import { alphaDiagnostics, type AlphaDiagnostics } from '../ridge/alphaDiagnostics.js';
import { alphaEdgeWarning } from '../ridge/alphas.js';
import { inConfigUnits } from '../ridge/memoryPlan.js';
import { RidgeCV } from '../ridge/RidgeCV.js';
import type { Diffusion } from '../sd/Diffusion.js';
import { writePng } from '../sd/png.js';
import { readPngsAt } from '../io/pngReads.js';
import type { RgbImages } from '../sd/tensor.js';
import { configHash, type ReconstructConfig } from './config.js';
import { decoderFitOptions } from './decoderFit.js';
import type { PreflightResult } from './preflight.js';
import { REPORT_RERUN, type DecoderSummary } from './decoderCharts.js';
import { missingDependenciesSummary } from '../report/optionalParts.js';
import { renderReport, type RunMetrics } from './report.js';
import { extractionContentKey } from './extractionKey.js';
import { imageSetKey, paths, readStageMarker, stageRecipe, STAGES, type StageName } from './runFolder.js';
import { selectTestImages } from './testSubset.js';
import { writeFileAtomic } from '../io/atomicWrite.js';
import type { StageCount, StageDef } from './stageRunner.js';
import { img2imgProgress, img2imgUpstreamKey, type Img2ImgProgress } from './img2imgProgress.js';
import { identityChange, inputIdentities } from '../io/fileIdentity.js';
import { outputRecordChange } from './outputRecords.js';
import { reconstructStageInputs } from './stageInputs.js';
import { syntheticInputs } from './syntheticOrigin.js';

export interface StageContext {
  config: ReconstructConfig;
  pre: PreflightResult;
  diffusion: () => Promise<Diffusion>;
  /** Progress within the stage; `count` gives the rate in the stage's unit (images, samples). */
  progress: (fraction: number, message?: string, count?: StageCount) => void;
  signal?: AbortSignal;
}

export interface StageOutput {
  outputs: string[];
  summary?: Record<string, unknown>;
  /** A key of the content of what it made (the extract stage's: extractionContentKey), recorded in its marker. */
  outputKey?: string;
  /** Clean-up once its marker is written (StageResult.afterMarker). */
  afterMarker?: () => Promise<void>;
}

interface ImageIds {
  trainZ: number[];
  trainC: number[];
  test: number[];
}

const rel = (c: ReconstructConfig, p: string) => relative(c.out, p);

function checkAbort(signal?: AbortSignal): void {
  if (signal?.aborted) throw new CancelledError('reconstruct: cancelled', { cause: signal.reason });
}

async function writeJson(p: string, v: unknown): Promise<void> {
  await mkdir(dirname(p), { recursive: true });
  await writeFileAtomic(p, JSON.stringify(v, null, 2));
}

/** The NSD adapter options of the z or c region (the extraction cache key follows from them). */
export function extractOptions(c: ReconstructConfig, t: 'z' | 'c'): NsdExtractOptions {
  const d = c.decoders[t];
  return {
    root: c.nsd.root,
    subject: c.nsd.subject,
    roi: d.roi,
    sessions: c.nsd.sessions ?? undefined,
    format: c.nsd.format,
    zscore: d.zscore,
    ...(d.zscoreDdof === undefined ? {} : { ddof: d.zscoreDdof }),
    averageTrain: d.averageTrain,
    averageTest: true,
    cacheDir: c.nsd.cacheDir ?? join(c.out, 'cache'),
    // (the config's field, which a message about the cache names where it says to point it elsewhere)
    cacheLabel: 'nsd.cacheDir',
  };
}

async function extraction(ctx: StageContext, t: 'z' | 'c'): Promise<NsdExtraction> {
  return extractNsd({
    ...extractOptions(ctx.config, t),
    onProgress: (e) => ctx.progress((t === 'z' ? 0 : 0.5) + (0.5 * e.done) / e.total, `${t}: session ${e.session}`),
    // Ctrl-C stops the read in progress (a session is a gigabyte to decode), not after the whole extraction
    signal: ctx.signal,
  });
}

async function readIds(c: ReconstructConfig): Promise<ImageIds> {
  return JSON.parse(await readFile(paths(c.out).ids, 'utf8')) as ImageIds;
}

/** Extract both regions (cached by the NSD adapter), keep the image ids of every row. */
export async function extractStage(ctx: StageContext): Promise<StageOutput> {
  const c = ctx.config;
  const ez = await extraction(ctx, 'z');
  checkAbort(ctx.signal);
  const ec = await extraction(ctx, 'c');
  const test = Array.from(ez.testImageIds);
  if (test.join() !== Array.from(ec.testImageIds).join()) {
    throw new ShapeError(`the z and c regions' extractions have different test rows (${ez.testImageIds.length} vs ${ec.testImageIds.length})`);
  }
  const limited = selectTestImages(test, c.nsd.testImages);
  const missing = limited.filter((id) => ctx.pre.captions.get(id).length === 0);
  if (missing.length) throw new ShapeError(`test images without captions: 73k ids ${missing.slice(0, 10).join(', ')}`);
  const ids: ImageIds = { trainZ: Array.from(ez.trainImageIds), trainC: Array.from(ec.trainImageIds), test: limited };
  const idsText = JSON.stringify(ids, null, 2);
  await mkdir(dirname(paths(c.out).ids), { recursive: true });
  await writeFileAtomic(paths(c.out).ids, idsText);
  // old entries of the cache go (replaced ones; in the run folder's own cache, those its config no longer reads)
  const upkeep = await extractStageCacheUpkeep(c.nsd.cacheDir === null ? join(c.out, 'cache') : null, [ez, ec]);
  return {
    outputs: [rel(c, paths(c.out).ids)],
    // what the stages after it read, by content: the same betas in a file with new times rerun none of them
    outputKey: extractionContentKey([ez, ec], [idsText]),
    summary: {
      trainRows: { z: ez.train.rows, c: ec.train.rows },
      voxels: { z: ez.train.cols, c: ec.train.cols },
      testImages: limited.length,
      fromCache: { z: ez.fromCache, c: ec.fromCache },
      // the sessions read (both regions read the same ones), for the report
      sessions: ez.manifest.inputs.sessions,
      ...cacheUpkeepSummary(upkeep),
    },
  };
}

/** The images the features stage computes z and c of: every training image of both regions and the test images, ascending. */
const featureImages = (ids: ImageIds): number[] => [...new Set([...ids.trainZ, ...ids.trainC, ...ids.test])].sort((a, b) => a - b);

/**
 * What a stage reads of the stages before it, as a key, for the stages that read less than their outputs
 * (StageDef.depKey): the features stage reads the extraction's image ids, not its betas, so new betas of the same
 * trials leave its outputs as they are (the VAE and the text encoder are not run again over every image).
 */
export const STAGE_DEP_KEYS: Partial<Record<StageName, (c: ReconstructConfig) => Promise<string>>> = {
  features: async (c) => imageSetKey(featureImages(await readIds(c))),
};

/**
 * A reconstruction stage's place among the others: it depends on every stage before it (STAGES' order: one that runs
 * reruns those after it, as their outputs build on one another), and what it reads of them is a key: the images
 * (STAGE_DEP_KEYS), else the keys of their outputs (stageRunner's stageDepKey): the extract stage records its
 * extraction's content, so one run again over betas files with new times but the same numbers reruns nothing after it.
 */
export function reconstructStageDeps(config: ReconstructConfig, stage: StageName): Pick<StageDef, 'id' | 'deps' | 'depKey' | 'keysOutputs'> {
  const depKey = STAGE_DEP_KEYS[stage];
  return {
    id: stage,
    deps: STAGES.slice(0, STAGES.indexOf(stage)),
    ...(depKey ? { depKey: () => depKey(config) } : {}),
    ...(stage === 'extract' ? { keysOutputs: true } : {}),
  };
}

/** z (VAE latent of the resized stimulus) and c (text embedding averaged over the captions) of every image used. */
export async function featuresStage(ctx: StageContext): Promise<StageOutput> {
  const c = ctx.config;
  const all = featureImages(await readIds(c));
  // (read here, not the preflight's: this stage's marker records the captions file as it is now, and a file edited
  // while the extraction ran gave c of the old text under the new file's identity; encode's embed stage does the same)
  const captions = await loadNsdCaptions(c.nsd.root, c.nsd.captions ?? undefined);
  const noCaption = all.filter((id) => captions.get(id).length === 0);
  if (noCaption.length) throw new ShapeError(`${noCaption.length} image(s) have no captions (73k ids ${noCaption.slice(0, 10).join(', ')}); c cannot be computed`);
  const sd = await ctx.diffusion();
  const stimuli = await NsdStimuli.open(c.nsd.root);
  const size = c.features.zSize;
  const px = size * size * 3;
  let zData: Float32Array | null = null;
  let cData: Float32Array | null = null;
  let zDim = 0;
  let cDim = 0;
  const bs = c.features.batchSize;
  try {
    for (let i0 = 0; i0 < all.length; i0 += bs) {
      checkAbort(ctx.signal);
      const part = all.slice(i0, i0 + bs);
      const rgb = new Uint8Array(part.length * px);
      part.forEach((id, k) => stimuli.imageInto(id, size, rgb.subarray(k * px, (k + 1) * px)));
      const z = await sd.encodeImages({ data: rgb, count: part.length, height: size, width: size }, {
        mode: c.features.zMode,
        // (a sample's noise keyed by (seed, 73k id): the same features for an image whatever else the run holds)
        seeds: c.features.seed,
        imageIndices: part,
        signal: ctx.signal,
      });
      zDim = z.data.length / part.length;
      zData ??= new Float32Array(all.length * zDim);
      zData.set(z.data, i0 * zDim);
      const caps = part.map((id) => captions.get(id));
      const enc = await sd.encodeText(caps.flat(), { signal: ctx.signal });
      cDim = enc.data.length / enc.shape[0];
      cData ??= new Float32Array(all.length * cDim);
      let row = 0;
      caps.forEach((list, k) => {
        const dst = cData!.subarray((i0 + k) * cDim, (i0 + k + 1) * cDim);
        for (let q = 0; q < list.length; q++, row++) {
          const src = enc.data.subarray(row * cDim, (row + 1) * cDim);
          for (let j = 0; j < cDim; j++) dst[j] += src[j] / list.length;
        }
      });
      ctx.progress((i0 + part.length) / all.length, undefined, { done: i0 + part.length, total: all.length, unit: 'images' });
    }
  } finally {
    stimuli.close();
  }
  const p = paths(c.out);
  await mkdir(dirname(p.zFeatures), { recursive: true });
  await writeNpy(p.zFeatures, zData!, [all.length, zDim]);
  await writeNpy(p.cFeatures, cData!, [all.length, cDim]);
  await writeNpy(p.featureIds, Int32Array.from(all), [all.length]);
  return { outputs: [p.zFeatures, p.cFeatures, p.featureIds].map((f) => rel(c, f)), summary: { images: all.length, zDim, cDim } };
}

function gatherRows(features: Matrix, rowOf: Map<number, number>, ids: ArrayLike<number>): Matrix {
  const out = new Float32Array(ids.length * features.cols);
  for (let i = 0; i < ids.length; i++) {
    const r = rowOf.get(ids[i]);
    if (r === undefined) throw new ShapeError(`no features for 73k id ${ids[i]}`);
    out.set(features.data.subarray(r * features.cols, (r + 1) * features.cols), i * features.cols);
  }
  return { data: out, rows: ids.length, cols: features.cols };
}

function meanRowCorrelation(a: Matrix, b: Matrix): number {
  let sum = 0;
  for (let i = 0; i < a.rows; i++) {
    const x = a.data.subarray(i * a.cols, (i + 1) * a.cols);
    const y = b.data.subarray(i * b.cols, (i + 1) * b.cols);
    let mx = 0;
    let my = 0;
    for (let k = 0; k < x.length; k++) {
      mx += x[k];
      my += y[k];
    }
    mx /= x.length;
    my /= y.length;
    let sxy = 0;
    let sxx = 0;
    let syy = 0;
    for (let k = 0; k < x.length; k++) {
      sxy += (x[k] - mx) * (y[k] - my);
      sxx += (x[k] - mx) ** 2;
      syy += (y[k] - my) ** 2;
    }
    sum += sxy / Math.sqrt(sxx * syy || 1);
  }
  return sum / a.rows;
}

/** RidgeCV from the early voxels to z and from the ventral voxels to c; predictions for the test images. */
export async function decodersStage(ctx: StageContext): Promise<StageOutput> {
  const c = ctx.config;
  const p = paths(c.out);
  const ids = await readIds(c);
  const featureIds = await readIntVectorNpy(p.featureIds, 'feature image ids');
  const rowOf = new Map(Array.from(featureIds, (id, r) => [id, r] as [number, number]));
  const summary: Record<string, unknown> = {};
  const outputs: string[] = [];
  for (const [k, t] of (['z', 'c'] as const).entries()) {
    checkAbort(ctx.signal);
    const d = c.decoders[t];
    const ex = await extractNsd({ ...extractOptions(c, t), signal: ctx.signal });
    const feats = await readMatrixNpy(t === 'z' ? p.zFeatures : p.cFeatures, `${t} features`);
    const y = gatherRows(feats, rowOf, ex.trainImageIds);
    // (the options the preflight planned this fit's memory with)
    const model = await new RidgeCV(decoderFitOptions(d, ex.trainImageIds))
      .fit(ex.train, y, { onProgress: (e) => ctx.progress((k + e.fraction) / 2, `${t}: ${e.stage}`), signal: ctx.signal })
      .catch((e: unknown) => {
        // the engine counts in GiB and names its own option; the config's is decoders.<t>.memoryBudget, in bytes
        throw e instanceof OutOfMemoryError ? inConfigUnits(e, d.memoryBudget, `decoders.${t}.memoryBudget`) : e;
      });
    await mkdir(dirname(p.decoder(t)), { recursive: true });
    await model.save(p.decoder(t));
    // test rows in the (possibly limited) test order
    const testRow = new Map(Array.from(ex.testImageIds, (id, r) => [id, r] as [number, number]));
    const xTest = gatherRows(ex.test, testRow, ids.test);
    const pred = model.predict(xTest);
    await mkdir(dirname(p.decoded(t)), { recursive: true });
    await writeNpy(p.decoded(t), pred.data, [pred.rows, pred.cols]);
    const truth = gatherRows(feats, rowOf, ids.test);
    const alphas = Array.from(model.bestAlphas);
    const hist: Record<string, number> = {};
    for (const a of alphas) hist[String(a)] = (hist[String(a)] ?? 0) + 1;
    // accuracy per target: r over the test images between decoded and true value of each feature
    // (NaN where the true value is the same for every test image: r is undefined there)
    const targetR = columnPearson(pred, truth);
    constantColumns(truth).forEach((flat, j) => flat && (targetR[j] = NaN));
    await writeNpy(p.targetAccuracy(t), targetR, [targetR.length]);
    const diag = alphaDiagnostics(d.alphas, model.bestAlphas, model.cvScores, d.score);
    const edge = decoderEdgeWarning(t, d.alphas, diag);
    summary[t] = {
      roi: d.roi,
      trainRows: ex.train.rows,
      voxels: ex.train.cols,
      targets: feats.cols,
      meanCvScore: Array.from(model.bestScores).reduce((a, b) => a + b, 0) / model.bestScores.length,
      testFeatureCorrelation: meanRowCorrelation(pred, truth),
      alphaHistogram: hist,
      ...diag,
      unresolvedAlphas: model.info?.unresolvedAlphas ?? 0,
      warnings: edge ? [edge] : [],
    };
    outputs.push(rel(c, p.decoder(t)), rel(c, p.decoded(t)), rel(c, p.targetAccuracy(t)));
  }
  await writeJson(p.decoderSummary, summary);
  outputs.push(rel(c, p.decoderSummary));
  return { outputs, summary };
}

/**
 * The alpha-edge warning of a decoder, over the targets with a positive CV score at some alpha (the report's table and
 * chart count the same), saying how many the features do not predict and so are not counted.
 */
export function decoderEdgeWarning(t: string, grid: number[], diag: AlphaDiagnostics): string | null {
  const predictable = diag.predictableAlphaCounts.reduce((a, b) => a + b, 0);
  const what = diag.constantTargets || diag.unpredictableTargets ? `the ${t} decoder's ${predictable} targets with a positive CV score at some alpha` : `the ${t} decoder's targets`;
  const edge = alphaEdgeWarning(diag.edgeLow, diag.edgeHigh, grid, what);
  if (!edge || !diag.unpredictableTargets) return edge;
  return `${edge} (${diag.unpredictableTargets} more score <= 0 at every alpha: the features predict nothing there, and a wider grid would not change that)`;
}

/** Columns whose values are all equal. */
function constantColumns(m: Matrix): boolean[] {
  const out = Array.from({ length: m.cols }, () => true);
  for (let i = 1; i < m.rows; i++) {
    const o = i * m.cols;
    for (let j = 0; j < m.cols; j++) if (out[j] && m.data[o + j] !== m.data[j]) out[j] = false;
  }
  return out;
}

function latentShape(n: number, dim: number, size: number, what: string): number[] {
  const hw = (size / 8) ** 2;
  if (dim % hw !== 0) throw new ShapeError(`${what}: ${dim} values per image do not fit latents of a ${size}px image (${size / 8}×${size / 8})`);
  return [n, dim / hw, size / 8, size / 8];
}

/** The decoded z alone, decoded by the VAE (the blurry reconstruction), and the originals. */
export async function zonlyStage(ctx: StageContext): Promise<StageOutput> {
  const c = ctx.config;
  const p = paths(c.out);
  const ids = (await readIds(c)).test;
  const z = await readMatrixNpy(p.decoded('z'), 'decoded z');
  const sd = await ctx.diffusion();
  const stimuli = await NsdStimuli.open(c.nsd.root);
  const outputs: string[] = [];
  await mkdir(p.images, { recursive: true });
  try {
    const bs = c.features.batchSize;
    for (let i0 = 0; i0 < ids.length; i0 += bs) {
      checkAbort(ctx.signal);
      const n = Math.min(bs, ids.length - i0);
      const shape = latentShape(n, z.cols, c.features.zSize, 'decoded z');
      // (the signal: a batch's decode is seconds per image at SD's size)
      const imgs = await sd.decode({ data: z.data.slice(i0 * z.cols, (i0 + n) * z.cols), shape }, { signal: ctx.signal });
      for (let k = 0; k < n; k++) {
        const id = ids[i0 + k];
        await writePng(p.zonly(id), imgs, k);
        const org = stimuli.image(id, c.img2img.size);
        await writePng(p.original(id), { data: org.data, count: 1, height: org.height, width: org.width });
        outputs.push(rel(c, p.zonly(id)), rel(c, p.original(id)));
      }
      ctx.progress((i0 + n) / ids.length, undefined, { done: i0 + n, total: ids.length, unit: 'images' });
    }
  } finally {
    stimuli.close();
  }
  return { outputs, summary: { images: ids.length } };
}

/**
 * A part of the img2img stage: the test images [imageStart, imageEnd) (positions in the test list) for the
 * seeds [seedStart, seedEnd) (sample numbers k); imageEnd −1 is the last test image. The noise is keyed by (seed, 73k id) and the sampler's
 * batches start at multiples of img2img.batchSize, so a shard's images are bit-identical to the same images
 * of a run over everything.
 */
export interface Img2ImgShard {
  imageStart: number;
  imageEnd: number;
  seedStart: number;
  seedEnd: number;
}

/** How the stage is split: images per shard (rounded up to a multiple of img2img.batchSize) and seeds per shard. */
export interface Img2ImgSharding {
  images: number;
  seeds: number;
}

/**
 * A shard's images (whole img2img batches) and seeds, as img2imgShards cuts them from `sharding`: widened where
 * they would make more than `most` shards, seeds first (a shard of more seeds makes the same samples), then images.
 */
export function img2imgShardSize(config: ReconstructConfig, testImages: number, sharding: Img2ImgSharding, most = Infinity): Img2ImgSharding {
  const bs = Math.max(config.img2img.batchSize, 1), seeds = config.img2img.seeds;
  let images = Math.max(bs, Math.ceil(sharding.images / bs) * bs);
  const groups = Math.ceil(testImages / images);
  if (groups > most) images = Math.ceil(Math.ceil(testImages / most) / bs) * bs;
  const perSeeds = Math.max(1, Math.floor(sharding.seeds));
  const seedRounds = Math.max(1, Math.floor(most / Math.ceil(testImages / images)));
  return { images, seeds: Math.ceil(seeds / perSeeds) > seedRounds ? Math.ceil(seeds / seedRounds) : perSeeds };
}

/** The shards of the img2img stage for `testImages` images, images varying fastest; at most `most` (img2imgShardSize). */
export function img2imgShards(config: ReconstructConfig, testImages: number, sharding: Img2ImgSharding, most = Infinity): Img2ImgShard[] {
  const { images: per, seeds: seedsPer } = img2imgShardSize(config, testImages, sharding, most);
  const shards: Img2ImgShard[] = [];
  for (let s0 = 0; s0 < config.img2img.seeds; s0 += seedsPer) {
    for (let i0 = 0; i0 < testImages; i0 += per) {
      shards.push({ imageStart: i0, imageEnd: Math.min(testImages, i0 + per), seedStart: s0, seedEnd: Math.min(config.img2img.seeds, s0 + seedsPer) });
    }
  }
  return shards;
}

/** The files a shard writes (run-folder relative). */
export async function img2imgShardOutputs(config: ReconstructConfig, shard: Img2ImgShard): Promise<string[]> {
  const p = paths(config.out);
  const all = (await readIds(config)).test;
  const ids = all.slice(shard.imageStart, shard.imageEnd < 0 ? all.length : shard.imageEnd);
  const out: string[] = [];
  for (let k = shard.seedStart; k < shard.seedEnd; k++) for (const id of ids) out.push(rel(config, p.sample(id, k)));
  return out;
}

/**
 * img2img from the re-encoded z-only image with the decoded c, for one shard of (images × seeds); progress
 * is the shard's own fraction. The whole stage is the shard over every image and seed. `intact`: units (`i0/k`) whose
 * samples the stage's last run left as they are (img2imgIntactUnits), kept as an interrupted run's are.
 */
export async function img2imgShardStage(ctx: StageContext, shard: Img2ImgShard, intact: ReadonlySet<string> = new Set()): Promise<StageOutput> {
  const c = ctx.config;
  const g = c.img2img;
  const p = paths(c.out);
  const allIds = (await readIds(c)).test;
  if (shard.imageStart % Math.max(g.batchSize, 1) !== 0 || shard.seedEnd > g.seeds) {
    throw new ShapeError(`img2img shard images [${shard.imageStart}, ${shard.imageEnd}) seeds [${shard.seedStart}, ${shard.seedEnd}) does not fit ${g.seeds} seeds in batches of ${g.batchSize}`);
  }
  // a shard planned past the test images the extraction found has less (or nothing) to do
  shard = { ...shard, imageEnd: Math.min(shard.imageEnd < 0 ? allIds.length : shard.imageEnd, allIds.length) };
  if (shard.imageStart >= shard.imageEnd) return { outputs: [], summary: img2imgSummary(0, shard.seedEnd - shard.seedStart, { samples: 0, reused: 0, evaluations: 0, seconds: 0 }) };
  const cDec = await readMatrixNpy(p.decoded('c'), 'decoded c');
  const sd = await ctx.diffusion();
  const D = sd.info.condDim > 0 ? sd.info.condDim : cDec.cols / 77;
  if (cDec.cols % D !== 0) throw new ShapeError(`decoded c has ${cDec.cols} values per image, not a multiple of the U-Net's width ${D}`);
  const seq = cDec.cols / D;
  const outputs: string[] = [];
  // blocks start at multiples of 4 × batchSize from the shard's start (itself a multiple of batchSize),
  // so every sampler batch is the same as in a run over all images
  const bs = blockImages(c);
  const seeds = shard.seedEnd - shard.seedStart;
  const total = (shard.imageEnd - shard.imageStart) * seeds;
  let done = 0;
  // what this run computes (samples, U-Net evaluations and time), apart from the samples an interrupted run left
  const work = { samples: 0, reused: 0, evaluations: 0, seconds: 0 };
  // units an interrupted run of this stage (or shard) finished over the same inputs are not computed again
  const finished = await img2imgProgress(c, shardRecordLabel(shard));
  for (let i0 = shard.imageStart; i0 < shard.imageEnd; i0 += bs) {
    checkAbort(ctx.signal);
    const part = allIds.slice(i0, Math.min(i0 + bs, shard.imageEnd));
    const n = part.length;
    // (outputs in (block, seed, image) order, whether computed now or before)
    for (let k = shard.seedStart; k < shard.seedEnd; k++) for (const id of part) outputs.push(rel(c, p.sample(id, k)));
    const seedsToRun: number[] = [];
    for (let k = shard.seedStart; k < shard.seedEnd; k++) {
      if (unitKept(c, finished, i0, k, part) || intact.has(`${i0}/${k}`)) {
        done += n;
        work.reused += n;
        ctx.progress(done / total, `seed ${k} (done before)`, { done, total, unit: 'samples', reused: work.reused });
      } else seedsToRun.push(k);
    }
    if (seedsToRun.length === 0) continue;
    // TN: the z-only image (uint8), resized to the img2img size and re-encoded. Every noise here and
    // below is keyed by the image's 73k id, not its place in the test list, so a subset or another order
    // of the test images gives each image the same result.
    const zonly = await readPngsAt(part.map((id) => p.zonly(id)), g.size, { signal: ctx.signal });
    const z0 = await sd.encodeImages(zonly, { mode: g.reencode, seeds: g.seed, imageIndices: part, signal: ctx.signal });
    const cond = { data: cDec.data.slice(i0 * cDec.cols, (i0 + n) * cDec.cols), shape: [n, seq, D] };
    for (const k of seedsToRun) {
      const r = await sd.img2img({
        z: z0,
        c: cond,
        strength: g.strength,
        steps: g.steps,
        guidance: g.guidance,
        scheduler: g.scheduler,
        karras: g.karras,
        eta: g.eta,
        seeds: g.seed + k,
        imageIndices: part,
        batchSize: g.batchSize,
        img2imgRule: g.rule,
        signal: ctx.signal,
        onStep: (s) => {
          // batchFirst counts from this job's first image (the block's, i0), not from the test list's
          const at = done + s.batchFirst + s.batchImages * (s.step / s.total);
          ctx.progress(at / total, `seed ${k}`, { done: Math.floor(at), total, unit: 'samples', reused: work.reused });
        },
      });
      work.seconds += r.stats.unetSeconds ?? 0;
      work.evaluations += r.stats.unetEvaluations;
      work.samples += n;
      // (an interrupted decode loses this block's samples of seed k, not yet recorded: the next run makes them again)
      const imgs = await sd.decode(r.latents, { signal: ctx.signal });
      for (let q = 0; q < n; q++) await writePng(p.sample(part[q], k), imgs, q);
      await finished.add(i0, k);
      done += n;
      ctx.progress(done / total, `seed ${k}`, { done, total, unit: 'samples', reused: work.reused });
    }
  }
  // (its record of finished units goes once the marker says the whole is done: removed before it, a kill between the
  // two lost every unit, which the next run made again)
  return { outputs, summary: img2imgSummary(shard.imageEnd - shard.imageStart, seeds, work), afterMarker: () => finished.remove() };
}

/** Images per block of the img2img stage (a unit of its record is a block × one seed): 4 sampler batches. */
const blockImages = (c: ReconstructConfig): number => Math.max(c.img2img.batchSize, 1) * 4;

/** The name of a shard's record of finished units (stages/img2img.partial/<label>.json). */
const shardRecordLabel = (shard: Img2ImgShard): string => `i${shard.imageStart}-${shard.imageEnd}_s${shard.seedStart}-${shard.seedEnd}`;

/** Whether unit (block at i0, seed k) of images `part` is kept from an interrupted run: recorded, its PNGs all there. */
const unitKept = (c: ReconstructConfig, finished: Img2ImgProgress, i0: number, k: number, part: readonly number[]): boolean =>
  finished.has(i0, k) && part.every((id) => existsSync(paths(c.out).sample(id, k)));

/**
 * The units (`i0/k`: block at test position i0, seed k) of the whole img2img stage whose samples its last run left as
 * they are, so that a stage rerun for a damaged sample computes only the blocks that hold one (on real SD, minutes
 * rather than hours). Its marker must be of this config and recipe, made from the stages before img2img as they are
 * now (its depKey: img2imgUpstreamKey) and from its input files as they are, and record its outputs (outputFiles);
 * a unit is intact when each of its PNGs is recorded there and is as recorded (outputRecordChange). A batch's merge
 * records the same (batch/runNode.ts), so a reconstruct after a batch keeps its intact blocks too. None when the
 * marker does not hold so (a stage before it ran again, --force emptied the folder, a merge that recorded no depKey:
 * over a shard marker from before shards recorded their upstream key, or by an earlier version; a marker from before
 * the records).
 */
export async function img2imgIntactUnits(c: ReconstructConfig): Promise<Set<string>> {
  const units = new Set<string>();
  const m = await readStageMarker(c, 'img2img');
  const ids = await readIds(c).then((r) => r.test, () => null);
  if (!ids || !m || m.configHash !== configHash(c) || (m.recipe ?? 1) !== stageRecipe('img2img') || m.outputFiles === null || typeof m.outputFiles !== 'object') return units;
  if (m.depKey === undefined || m.depKey !== (await img2imgUpstreamKey(c).catch(() => null))) return units;
  if (!Array.isArray(m.inputs) || identityChange(m.inputs, await inputIdentities(await reconstructStageInputs(c, 'img2img'))) !== null) return units;
  const records = m.outputFiles as Record<string, unknown>;
  const bs = blockImages(c);
  for (let i0 = 0; i0 < ids.length; i0 += bs) {
    const part = ids.slice(i0, i0 + bs);
    for (let k = 0; k < c.img2img.seeds; k++) {
      const files = part.map((id) => rel(c, paths(c.out).sample(id, k)));
      if (!files.every((f) => Object.hasOwn(records, f))) continue;
      if ((await outputRecordChange(c.out, Object.fromEntries(files.map((f) => [f, records[f]])))) === null) units.add(`${i0}/${k}`);
    }
  }
  return units;
}

/**
 * The samples of the whole img2img stage the next run keeps (as img2imgShardStage decides), of `total` (test images ×
 * seeds): those an interrupted run finished (recorded over the same inputs as now, PNGs there), then those the
 * stage's last run left intact (img2imgIntactUnits: a stage rerun for a damaged sample), in `intact`; 0 kept before
 * the extraction has listed the test images. For the dry run's estimate: only the rest is computed.
 */
export async function img2imgKeptSamples(c: ReconstructConfig): Promise<{ kept: number; intact: number; total: number }> {
  const ids = await readIds(c).then((r) => r.test, () => null);
  if (!ids) return { kept: 0, intact: 0, total: 0 };
  const shard: Img2ImgShard = { imageStart: 0, imageEnd: ids.length, seedStart: 0, seedEnd: c.img2img.seeds };
  const finished = await img2imgProgress(c, shardRecordLabel(shard));
  const intactUnits = await img2imgIntactUnits(c);
  const bs = blockImages(c);
  let kept = 0;
  let intact = 0;
  for (let i0 = 0; i0 < ids.length; i0 += bs) {
    const part = ids.slice(i0, i0 + bs);
    for (let k = 0; k < c.img2img.seeds; k++) {
      if (unitKept(c, finished, i0, k, part)) kept += part.length;
      else if (intactUnits.has(`${i0}/${k}`)) {
        kept += part.length;
        intact += part.length;
      }
    }
  }
  return { kept, intact, total: ids.length * c.img2img.seeds };
}

/**
 * An img2img shard's (or the whole stage's) summary: its images and seeds, then what this run of it computed: the
 * samples it made (`samplesRun`) and those it kept, an interrupted run's or, on a rerun for a damaged sample, its last run's intact blocks (`reusedSamples`), and the U-Net evaluations of
 * one latent it ran (images × the engine's U-Net calls, × 2 with guidance) in `unetSeconds` of U-Net time. A rate is
 * unetEvaluations / unetSeconds: both count the same samples.
 */
function img2imgSummary(images: number, seeds: number, w: { samples: number; reused: number; evaluations: number; seconds: number }): Record<string, unknown> {
  return { images, seeds, samplesRun: w.samples, reusedSamples: w.reused, unetEvaluations: w.evaluations, unetSeconds: w.seconds };
}

/** img2img from the re-encoded z-only image with the decoded c, several seeds per image. */
export async function img2imgStage(ctx: StageContext): Promise<StageOutput> {
  const ids = (await readIds(ctx.config)).test;
  // (a stage rerun for a damaged sample keeps the blocks whose samples are as its last run left them)
  const r = await img2imgShardStage(ctx, { imageStart: 0, imageEnd: ids.length, seedStart: 0, seedEnd: ctx.config.img2img.seeds }, await img2imgIntactUnits(ctx.config));
  return { outputs: r.outputs, summary: { ...r.summary, images: ids.length }, ...(r.afterMarker ? { afterMarker: r.afterMarker } : {}) };
}

export interface EvaluationSummary {
  rows: TableRow[];
  perSeed: { seed: number; metrics: MetricValue[] }[];
}

/** The metrics of z-only and final images, the CSV next to the published numbers. */
export async function evaluateStage(ctx: StageContext): Promise<StageOutput> {
  const c = ctx.config;
  const p = paths(c.out);
  const ids = (await readIds(c)).test;
  const e = c.evaluation;
  const stimuli = await NsdStimuli.open(c.nsd.root);
  // (each stimulus into its place in one batch: not every one apart and then a concatenated copy, 2 × 542 MB for NSD's 1,000 at 425 px)
  const gt: RgbImages = { data: new Uint8Array(ids.length * e.size * e.size * 3), count: ids.length, height: e.size, width: e.size };
  try {
    const px = e.size * e.size * 3;
    ids.forEach((id, i) => stimuli.imageInto(id, e.size, gt.data.subarray(i * px, (i + 1) * px)));
  } finally {
    stimuli.close();
  }
  const runs = 1 + c.img2img.seeds;
  // the set being evaluated (0: z-only, 1 + k: seed k), for the progress within it
  let set = 0;
  const setName = () => (set === 0 ? 'z-only' : `seed ${set - 1}`);
  const onProgress = (q: EvaluationProgress) => ctx.progress((set + q.fraction) / runs, `${setName()}: ${q.step}`);
  const opts = { size: e.size, networks: e.networks, pixelIdentification: e.pixelIdentification, threads: c.model.threads, signal: ctx.signal, onProgress };
  // (the ground truth's features computed once, with the z-only images, and kept for every seed)
  const evaluation = new Evaluation(gt, opts);
  const zonly = await evaluation.evaluate(await readPngsAt(ids.map((id) => p.zonly(id)), e.size, { signal: ctx.signal }));
  ctx.progress(1 / runs, 'z-only');
  const perSeed: { seed: number; metrics: MetricValue[] }[] = [];
  for (let k = 0; k < c.img2img.seeds; k++) {
    checkAbort(ctx.signal);
    set = 1 + k;
    const rec = await readPngsAt(ids.map((id) => p.sample(id, k)), e.size, { signal: ctx.signal });
    perSeed.push({ seed: c.img2img.seed + k, metrics: (await evaluation.evaluate(rec)).metrics });
    ctx.progress((2 + k) / runs, `seed ${k}`);
  }
  const final = averageMetrics(perSeed.map((s) => s.metrics));
  const source = `subject ${c.nsd.subject}, ${ids.length} test images`;
  const rows: TableRow[] = [
    { method: 'brainlatent z-only', source, metrics: zonly.metrics },
    { method: `brainlatent final (mean of ${c.img2img.seeds} seed${c.img2img.seeds > 1 ? 's' : ''})`, source, metrics: final },
  ];
  await writeFileAtomic(p.metricsCsv, metricsCsv(rows));
  await writeJson(p.metricsJson, {
    images: ids.length,
    zonly: metricValues(zonly.metrics),
    final: metricValues(final),
    perSeed: perSeed.map((s) => ({ seed: s.seed, ...metricValues(s.metrics) })),
    better: metricsBetter(final),
    leftOut: { zonly: leftOutCounts(zonly.metrics), final: leftOutCounts(final) },
    comparisonsLeftOut: { zonly: comparisonsLeftOut(zonly.metrics), final: comparisonsLeftOut(final) },
    // values per test image (fractions, like the means), in the order of ids
    perImage: { ids, zonly: perImageValues(zonly.metrics), final: perImageValues(final) },
  });
  const names = final.map((m) => m.name);
  const lines = [['id73k', 'imgidx', ...names.map((n) => `zonly:${n}`), ...names.map((n) => `final:${n}`)].join(',')];
  ids.forEach((id, i) => {
    lines.push([id, id - 1, ...zonly.metrics.map((m) => m.perImage[i]), ...final.map((m) => m.perImage[i])].join(','));
  });
  await writeFileAtomic(p.perImageCsv, lines.join('\n') + '\n');
  return {
    outputs: [p.metricsCsv, p.metricsJson, p.perImageCsv].map((f) => rel(c, f)),
    summary: {
      images: ids.length,
      zonly: metricValues(zonly.metrics),
      final: metricValues(final),
      better: metricsBetter(final),
      leftOut: { zonly: leftOutCounts(zonly.metrics), final: leftOutCounts(final) },
      comparisonsLeftOut: { zonly: comparisonsLeftOut(zonly.metrics), final: comparisonsLeftOut(final) },
    },
  };
}

export async function reportStage(ctx: StageContext): Promise<StageOutput> {
  const c = ctx.config;
  const p = paths(c.out);
  const ids = (await readIds(c)).test;
  const metrics = JSON.parse(await readFile(p.metricsJson, 'utf8')) as RunMetrics;
  const decoders = JSON.parse(await readFile(p.decoderSummary, 'utf8')) as Record<string, DecoderSummary>;
  const targetAccuracy: Record<string, Float32Array | null> = {};
  for (const t of ['z', 'c'] as const) targetAccuracy[t] = existsSync(p.targetAccuracy(t)) ? ((await readNpy(p.targetAccuracy(t))).data as Float32Array) : null;
  const { html, missing } = await renderReport({
    config: c,
    ids,
    images: (id) => ({
      original: rel(c, p.original(id)),
      zonly: rel(c, p.zonly(id)),
      samples: Array.from({ length: c.img2img.seeds }, (_, k) => rel(c, p.sample(id, k))),
    }),
    metrics,
    decoders,
    targetAccuracy,
    warnings: Object.values(decoders).flatMap((d) => d.warnings ?? []),
    sessions: (await readStageMarker(c, 'extract'))?.summary?.sessions as number[] | undefined,
    synthetic: await syntheticInputs(c.nsd.root, c.model.dir),
  });
  await writeFileAtomic(p.report, html);
  // without the chart packages: recorded, so that the run warns and, once they are installed, redoes this stage
  return { outputs: [rel(c, p.report)], ...(missing ? { summary: missingDependenciesSummary('report.html', 'its charts', missing, REPORT_RERUN) } : {}) };
}

export const STAGE_RUNNERS: Record<StageName, (ctx: StageContext) => Promise<StageOutput>> = {
  extract: extractStage,
  features: featuresStage,
  decoders: decodersStage,
  zonly: zonlyStage,
  img2img: img2imgStage,
  evaluate: evaluateStage,
  report: reportStage,
};
