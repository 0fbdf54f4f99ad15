/**
 * `encode --dry-run`'s estimate of each stage, from short probes on this machine with this config (as
 * reconstruct's): one session extracted; the VAE and text encoder, z_c and U-Net features on one batch of the
 * subject's own images; ridge and banded ridge at the real shape on a few targets; one map written and one
 * figure drawn. Each probe's time is scaled by the work the stage will do. Nothing is written to the run folder.
 * The probes that can stop (the session read, the SD runs, the fits) take the job's signal; the model loads cannot.
 */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { BandedSpec, EncodeConfig } from '../config/encode.js';
import { readNiftiMasked, writeNiftiMap } from '../io/nifti.js';
import { readNpyHeader } from '../io/npy.js';
import { makeProcessTemp, removeDeadProcessTemps } from '../io/processTemp.js';
import type { Matrix } from '../matrix.js';
import { loadNsdCaptions } from '../nsd/captions.js';
import { extractNsd } from '../nsd/extract.js';
import { ncsnrPath } from '../nsd/paths.js';
import { loadRegionMask } from '../nsd/roi.js';
import { NsdStimuli } from '../nsd/stimuli.js';
import { batchedEstimate, designShape, fastest, noise, probeRows, ridgeEstimate, SKIPPED, timed, twoPoint, type StageEstimate } from '../pipeline/probe.js';
import { cancelledEstimating, type StageDef } from '../pipeline/stageRunner.js';
import { Diffusion } from '../sd/Diffusion.js';
import { BandedRidgeCV } from '../ridge/BandedRidgeCV.js';
import { embedImages, unetLayerFeatures, zcFeatures, type Embeddings } from './features.js';
import { mosaicPng } from './mosaic.js';
import { voxelToWorld } from './orientation.js';
import { encodePaths, tableSpecs, type TableSpec } from './runPaths.js';
import { encodeExtractOptions } from './stages.js';
import { partitionVariance } from './variancePartition.js';
import { allInOrder } from '../allInOrder.js';

/** The first `k` rows of embeddings, repeated to `n` rows (a probe batch of the real per-image shape). */
function rowsOf(e: Embeddings, n: number): Embeddings {
  const take = (m: Matrix): Matrix => {
    const data = new Float32Array(n * m.cols);
    for (let i = 0; i < n; i++) data.set(m.data.subarray((i % m.rows) * m.cols, ((i % m.rows) + 1) * m.cols), i * m.cols);
    return { data, rows: n, cols: m.cols };
  };
  return { ids: Int32Array.from({ length: n }, (_, i) => e.ids[i % e.ids.length]), z: take(e.z), c: take(e.c), zShape: e.zShape, cShape: e.cShape };
}

/**
 * Estimates every stage of `stages`; skipped ones cost nothing. Feature tables whose stage is skipped have
 * their width read from the run folder; those to be computed get it from their probe. A probe the signal stops
 * ends in a CancelledError naming the stage it was estimating.
 */
export async function estimateEncodeStages(
  c: EncodeConfig,
  stages: StageDef[],
  skip: ReadonlyMap<string, boolean>,
  signal?: AbortSignal,
): Promise<Map<string, StageEstimate>> {
  const at = { stage: 'extract' };
  try {
    return await probeStages(c, stages, skip, at, signal);
  } catch (e) {
    throw cancelledEstimating(e, at.stage, { signal, what: 'encode' });
  }
}

/** `estimateEncodeStages`' probes; `at.stage` is the stage whose estimate is being made. */
async function probeStages(
  c: EncodeConfig,
  stages: StageDef[],
  skip: ReadonlyMap<string, boolean>,
  at: { stage: string },
  signal?: AbortSignal,
): Promise<Map<string, StageEstimate>> {
  const est = new Map<string, StageEstimate>();
  const runs = (id: string) => stages.some((s) => s.id === id) && !skip.get(id);
  const p = encodePaths(c.out);
  const shape = await designShape(c.nsd);
  const region = await loadRegionMask(c.nsd.root, c.nsd.subject, c.nsd.roi);
  const V = region.mask.indices.length;
  const images = shape.trainImages + shape.testImages;
  const trainRows = c.nsd.averageTrain ? shape.trainImages : shape.trainTrials;
  const tables = tableSpecs(c);
  /** Columns of each table (by key), as probes or the run folder tell. */
  const cols = new Map<string, number>();

  // extract: one session read, uncached, × sessions
  let sessionSeconds = 0;
  if (runs('extract') || (runs('ceiling') && c.noiseCeiling === 'estimate')) {
    // (the ceiling's 'estimate' re-reads the sessions: its estimate is this probe's when extract is skipped)
    at.stage = runs('extract') ? 'extract' : 'ceiling';
    const s0 = shape.sessions[0];
    const probe = () => extractNsd({ ...encodeExtractOptions(c), sessions: [s0], cacheDir: undefined, signal });
    await probe(); // warm-up: the first read also compiles the readers
    sessionSeconds = await fastest(probe);
  }
  est.set('extract', runs('extract') ? { seconds: sessionSeconds * shape.sessions.length, basis: `session ${shape.sessions[0]} read in ${sessionSeconds.toFixed(2)} s × ${shape.sessions.length} sessions (uncached)` } : SKIPPED);

  const ncPath = c.noiseCeiling === 'auto' ? ncsnrPath(c.nsd.root, c.nsd.subject) : c.noiseCeiling;
  const hasCeiling = c.noiseCeiling === 'estimate' || (c.noiseCeiling !== 'none' && existsSync(ncPath));
  if (!runs('ceiling')) est.set('ceiling', SKIPPED);
  else if (!hasCeiling) est.set('ceiling', { seconds: 0, basis: c.noiseCeiling === 'none' ? 'no noise ceiling' : `${ncPath} absent: no noise ceiling` });
  else if (c.noiseCeiling === 'estimate') {
    est.set('ceiling', { seconds: sessionSeconds * shape.sessions.length, basis: `single trials re-read: ${sessionSeconds.toFixed(2)} s per session × ${shape.sessions.length} sessions` });
  } else {
    at.stage = 'ceiling';
    const s = await fastest(() => readNiftiMasked(ncPath, region.mask));
    est.set('ceiling', { seconds: s, basis: `${ncPath} read in ${s.toFixed(2)} s` });
  }

  // embed, features.<set>: the real code on a batch of the subject's test images
  const probed = stages.filter((s) => (s.id === 'embed' || s.id.startsWith('features.')) && !skip.get(s.id));
  if (probed.length > 0 && c.model) {
    // (the embedding probe is embed's, or that of the first feature set it feeds)
    at.stage = probed[0].id;
    const k = Math.max(1, Math.min(c.featureBatch, shape.testIds.length));
    const ids = Int32Array.from(shape.testIds.slice(0, k));
    const stimuli = await NsdStimuli.open(c.nsd.root);
    const captions = await loadNsdCaptions(c.nsd.root, c.nsd.captions ?? undefined);
    const source = { image: (id: number) => stimuli.image(id, c.imageSize), captions: (id: number) => captions.get(id) ?? [] };
    let e: Embeddings;
    try {
      const [sd, load] = await timed(() => Diffusion.load(c.model!, { components: ['text_encoder', 'vae_encoder'] }));
      try {
        const probe = () => embedImages(sd, ids, source, { batch: c.featureBatch, signal });
        e = await probe(); // warm-up
        const s = await fastest(probe);
        est.set('embed', runs('embed') ? batchedEstimate({ load, perBatch: s, k, n: images, what: 'VAE + captions' }) : SKIPPED);
      } finally {
        sd.dispose();
      }
    } finally {
      stimuli.close();
    }
    for (const t of tables) if (t.spec.kind === 'z' || t.spec.kind === 'c') cols.set(t.key, t.spec.kind === 'z' ? e.z.cols : e.c.cols);
    let unet: Diffusion | null = null;
    let unetLoad = 0;
    try {
      for (const spec of c.featureSets) {
        const id = `features.${spec.name}`;
        if (spec.kind !== 'zc' && spec.kind !== 'unet') continue;
        at.stage = id;
        if (spec.kind === 'zc') {
          if (!unet) [unet, unetLoad] = await timed(() => Diffusion.load(c.model!, { components: ['text_encoder', 'vae_encoder', 'unet'] }));
          const sd = unet;
          const probe = (n: number) => () => zcFeatures(sd, spec, rowsOf(e, n), { batch: c.featureBatch, signal });
          await probe(k)(); // warm-up
          const s = await fastest(probe(k));
          cols.set(spec.name, e.z.cols);
          est.set(id, runs(id) ? { seconds: unetLoad + (s * images) / k, basis: `model load ${unetLoad.toFixed(1)} s + img2img of a batch of ${k} in ${s.toFixed(2)} s × ${images} images` } : SKIPPED);
        } else {
          // loading and exposing the U-Net is part of each call: a batch and two batches separate it from the per-image cost
          const [first, t1] = await timed(() => unetLayerFeatures(c.model!, spec, rowsOf(e, k), { batch: c.featureBatch, signal }));
          const tk = await fastest(() => unetLayerFeatures(c.model!, spec, rowsOf(e, k), { batch: c.featureBatch, signal }));
          const t2k = await fastest(() => unetLayerFeatures(c.model!, spec, rowsOf(e, 2 * k), { batch: c.featureBatch, signal }));
          const { per, fixed } = twoPoint(k, tk, 2 * k, t2k);
          const keys = new Map(tables.map((t) => [t.name, t.key]));
          for (const t of first) cols.set(keys.get(t.name)!, t.x.cols);
          est.set(id, runs(id) ? { seconds: fixed + per * images, basis: `${first.length} table(s): ${fixed.toFixed(1)} s to load the U-Net (first call ${t1.toFixed(1)} s) + ${per.toFixed(3)} s per image × ${images} images` } : SKIPPED);
        }
      }
    } finally {
      unet?.dispose();
    }
  }
  for (const s of stages) if ((s.id === 'embed' || s.id.startsWith('features.')) && !est.has(s.id)) est.set(s.id, SKIPPED);

  // the widths of tables not probed: the user's files, or what a finished stage left in the run folder
  const widthOf = async (t: TableSpec): Promise<number> => {
    const known = cols.get(t.key);
    if (known !== undefined) return known;
    const file = t.spec.kind === 'file' ? t.spec.path : t.spec.kind === 'z' ? p.embedZ : t.spec.kind === 'c' ? p.embedC : p.table(t.key);
    const h = await readNpyHeader(file);
    const w = h.shape.slice(1).reduce((a, b) => a * b, 1);
    cols.set(t.key, w);
    return w;
  };

  for (const t of tables) {
    const id = `fit.${t.key}`;
    at.stage = id;
    if (!runs(id)) {
      est.set(id, SKIPPED);
      continue;
    }
    est.set(id, await ridgeEstimate(trainRows, await widthOf(t), V, c.ridge.alphas, c.ridge.folds, signal));
  }

  const byName = new Map(tables.map((t) => [t.name, t]));
  for (const b of c.banded) {
    const id = `banded.${b.name}`;
    at.stage = id;
    if (!runs(id)) {
      est.set(id, SKIPPED);
      continue;
    }
    const widths = await allInOrder(b.sets.map((s) => widthOf(byName.get(s)!)));
    est.set(id, await bandedEstimate(c, b, trainRows, widths, V, signal));
  }

  // maps and report: one map written and one figure drawn, × the maps
  // per table r, log10 alpha (and r/√NC); per joint model r, R², log10 alpha, γ per set of two or more (and per set R² without it and unique, and shared)
  const nMaps =
    (hasCeiling ? 1 : 0) + tables.length * (hasCeiling ? 3 : 2) + c.banded.reduce((a, b) => a + 3 + (b.sets.length > 1 ? b.sets.length : 0) + (b.partition && b.sets.length >= 2 ? 2 * b.sets.length + 1 : 0), 0);
  const values = noise(V, 29, 0.3);
  at.stage = 'maps';
  if (runs('maps')) {
    // (named for this process, so a dry run killed here leaves nothing the next one keeps; a temporary folder that
    // cannot be written leaves this one estimate out, not the whole dry run at its last probe; review s44)
    await removeDeadProcessTemps(tmpdir(), PROBE_PREFIX);
    const dir = await makeProcessTemp(tmpdir(), PROBE_PREFIX).catch((e: NodeJS.ErrnoException) => e);
    if (dir instanceof Error) {
      est.set('maps', { seconds: 0, basis: `not probed: the temporary folder ${tmpdir()} (TMPDIR) cannot take a map (${dir.code ?? dir.message}); the run writes its maps in its own folder` });
    } else {
      try {
        const s = await fastest(() => writeNiftiMap(join(dir, 'probe.nii.gz'), region.header, region.mask, values, 'probe'));
        est.set('maps', { seconds: s * nMaps, basis: `a map written in ${s.toFixed(3)} s × ${nMaps} maps` });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
  } else est.set('maps', SKIPPED);
  at.stage = 'report';
  if (runs('report')) {
    const g = region.mask.grid;
    const volume = new Float32Array(g[0] * g[1] * g[2]).fill(NaN);
    region.mask.indices.forEach((i, j) => (volume[i] = values[j]));
    const draw = async () => mosaicPng({ grid: g, affine: voxelToWorld(region.header), volume, underlay: null, title: 'probe', quantity: 'r', colormap: 'diverging' });
    const s = await fastest(draw);
    est.set('report', { seconds: s * nMaps, basis: `a figure drawn in ${s.toFixed(3)} s × ${nMaps} maps` });
  } else est.set('report', SKIPPED);
  return est;
}

/** The dry run's map-writing probe's temporary folder (processTemp.ts names it for its process). */
const PROBE_PREFIX = 'brainlatent-probe';

/** The most candidates γ a banded probe takes, and the time under which a probe of more candidates is worth its cost. */
const MAX_PROBE_CANDIDATES = 32, MORE_PROBE_SECONDS = 1;

/**
 * The candidates of the banded estimate's next probe after one of `c2` that took `seconds` (at the larger target
 * count): twice as many, within nIter and MAX_PROBE_CANDIDATES, while a probe takes under MORE_PROBE_SECONDS; null
 * when the last probe is the one to use.
 */
export function moreProbeCandidates(c2: number, nIter: number, seconds: number): number | null {
  const cap = Math.min(nIter, MAX_PROBE_CANDIDATES);
  return c2 < cap && seconds < MORE_PROBE_SECONDS ? Math.min(2 * c2, cap) : null;
}

/** Banded probes: seconds at (t1, t2) targets with 1 candidate (`one`) and with c2 candidates (`more`). */
export interface BandedProbes { t1: number; t2: number; c2: number; one: number[]; more: number[] }

/**
 * A banded fit's cost model from its probes: per candidate a fixed part + a part per target (from the probes'
 * difference over the extra candidates), and once a fixed part + a part per target (one candidate's probe less
 * that); the time at `targets` targets and `nIter` candidates.
 */
export function bandedCost(p: BandedProbes, targets: number, nIter: number) {
  const fit = (ta: number, tb: number) => (p.t1 === p.t2 ? { per: ta / p.t1, fixed: 0 } : twoPoint(p.t1, ta, p.t2, tb));
  const step = [0, 1].map((i) => (p.c2 > 1 ? Math.max(0, (p.more[i] - p.one[i]) / (p.c2 - 1)) : 0));
  const each = p.c2 > 1 ? fit(step[0], step[1]) : fit(p.one[0], p.one[1]);
  const once = p.c2 > 1 ? fit(Math.max(0, p.one[0] - step[0]), Math.max(0, p.one[1] - step[1])) : { per: 0, fixed: 0 };
  return { each, once, seconds: once.fixed + once.per * targets + nIter * (each.fixed + each.per * targets) };
}

/**
 * A banded model's time: the fit (and, with partitioning, one fit per leave-one-set-out subset) on random data
 * of the real widths, probed at 1 candidate γ and at 3 or more (see below) and at 1 and up to 512 targets. Each
 * candidate costs a fixed part (its kernels' eigendecompositions, per fold) and a part per target (the CV
 * scoring); the refit and partitioning add a part per target once. Scaling one probe linearly in both
 * targets and candidates counted the fixed parts once per target: 16 s for a 3.4 s fit on the demo world.
 * Rows are capped as for ridge and scaled linearly.
 */
async function bandedEstimate(c: EncodeConfig, b: BandedSpec, rows: number, widths: number[], targets: number, signal?: AbortSignal): Promise<StageEstimate> {
  const total = widths.reduce((a, w) => a + w, 0);
  const folds = c.ridge.folds;
  const n = probeRows(rows, total, folds);
  const spaces = (rowsN: number, seed: number) => Object.fromEntries(b.sets.map((s, i) => [s, { data: noise(rowsN * widths[i], seed + i), rows: rowsN, cols: widths[i] }]));
  const train = spaces(n, 31);
  const test = spaces(Math.min(n, 16), 41);
  const partition = b.partition && b.sets.length >= 2;
  // (far apart, so that the differences stand above the timings' noise: 2 candidates at 128 and 256 targets
  // gave per-target costs off by 2× either way from one dry run to the next; one target is the fixed part)
  const t2 = Math.min(targets, 512), t1 = 1;
  const probe = (t: number, candidates: number) => {
    const opts = { alphas: b.alphas ?? c.ridge.alphas, nIter: candidates, seed: b.seed, folds, standardize: true };
    const y = { data: noise(n * t, 51), rows: n, cols: t };
    const ty = { data: noise(test[b.sets[0]].rows * t, 53), rows: test[b.sets[0]].rows, cols: t };
    return () => (partition ? partitionVariance(train, y, test, ty, opts, { signal }) : new BandedRidgeCV(opts).fit(train, y, { signal }));
  };
  // (the best of two of each: timed once, or at 2 candidates, the estimates of the demo world's banded stage
  // ranged 2.9–9.6 s for 3.4–3.9 s; this way 4.0–4.3 s. At NSD widths the probes take minutes: ~17 times one
  // candidate's eigendecompositions at the probe's rows)
  await probe(t2, 1)(); // warm-up, at the larger size: its buffers' first page faults are not the probes'
  const one = [await fastest(probe(t1, 1)), await fastest(probe(t2, 1))];
  // More candidates while a probe of them stays cheap (under MORE_PROBE_SECONDS, up to MAX_PROBE_CANDIDATES): the slope
  // per candidate is extrapolated to nIter of them, multiplying the probes' noise by nIter / c2. At the demo world's
  // widths a candidate costs ~5 ms at 512 targets, and 1 → 3 candidates read 0.19 → 0.74 s on a machine at load 5: an
  // 81 s estimate for a 2.7 s stage (review s43). At NSD's widths 3 candidates already take minutes: no more then.
  let c2 = Math.min(3, b.nIter);
  let more = c2 > 1 ? [await fastest(probe(t1, c2)), await fastest(probe(t2, c2))] : one;
  for (let next = moreProbeCandidates(c2, b.nIter, more[1]); next !== null; next = moreProbeCandidates(c2, b.nIter, more[1])) {
    c2 = next;
    more = [await fastest(probe(t1, c2)), await fastest(probe(t2, c2))];
  }
  const { each, once, seconds: atProbeRows } = bandedCost({ t1, t2, c2, one, more }, targets, b.nIter);
  const seconds = atProbeRows * (rows / n);
  return {
    seconds,
    basis:
      `banded probes${partition ? ' with partitioning' : ''} ${n}×${total} (${b.sets.join(' + ')}) at ${t1} and ${t2} targets, 1 and ${c2} candidates γ ` +
      `(${one.map((x) => x.toFixed(2)).join(', ')} s; ${more.map((x) => x.toFixed(2)).join(', ')} s): per candidate ${each.fixed.toFixed(3)} s + ${(each.per * 1e3).toFixed(2)} ms per target, ` +
      `once ${once.fixed.toFixed(3)} s + ${(once.per * 1e3).toFixed(2)} ms per target; scaled to ${targets} targets × ${b.nIter} candidates${rows > n ? ` × ${rows} rows` : ''}`,
  };
}
