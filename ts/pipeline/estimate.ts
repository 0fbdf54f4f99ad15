/**
 * `--dry-run`'s estimate of each stage, from short measured probes on this machine with this config: one
 * session extracted, one batch of features, ridge fits at the real shape on a few targets, one batch decoded,
 * img2img at the real batch size for 1 and 5 steps, the metrics on a few images, one chart. Each probe's time
 * is scaled by the work the stage will do (sessions, images, targets, U-Net calls). Nothing is written to the
 * run folder. Every probe but the model's load takes the job's signal: a cancelled estimate stops the run in flight
 * (each probe is run three times, its warm-up and the best of two), starts no other, and names the stage it was
 * estimating.
 */

import { Evaluation } from '../eval/evaluate.js';
import { extractNsd } from '../nsd/extract.js';
import { NsdStimuli } from '../nsd/stimuli.js';
import { Diffusion } from '../sd/Diffusion.js';
import { rgbPngBytes } from '../sd/png.js';
import { unetDeclaredSizes } from '../sd/onnxSignature.js';
import { guided } from '../sd/samplingOptions.js';
import type { ReconstructConfig } from './config.js';
import type { PreflightResult } from './preflight.js';
import { decoderCharts, type DecoderSummary } from './decoderCharts.js';
import { diffusionLoadOptions } from './lazyDiffusion.js';
import type { StageName } from './runFolder.js';
import { cancelledEstimating } from './stageRunner.js';
import { IMG2IMG_UPSTREAM } from './img2imgProgress.js';
import { extractOptions, img2imgKeptSamples } from './stages.js';
import { batchedEstimate, designShape, fastest, noise, randomImages, ridgeEstimate, SKIPPED, timed, twoPoint, type StageEstimate } from './probe.js';

/**
 * Where an img2img stage's kept samples come from, for the dry run's count: an interrupted run's record, and (a stage
 * rerun for a damaged sample) the samples its last run left intact, its marker says.
 */
function keptFrom(kept: number, intact: number): string {
  const partial = 'from an interrupted run, stages/img2img.partial/';
  const marker = "intact from the stage's last run, stages/img2img.json";
  if (intact === 0) return `${kept} kept ${partial}`;
  if (intact === kept) return `${kept} kept ${marker}`;
  return `${kept} kept: ${kept - intact} ${partial}, ${intact} ${marker}`;
}

export type { StageEstimate } from './probe.js';

/** The work the run will do, from the design (no betas read). */
async function runShape(c: ReconstructConfig, pre: PreflightResult) {
  const d = await designShape(c.nsd);
  const testImages = c.nsd.testImages === null ? pre.testIds.length : Math.min(pre.testIds.length, c.nsd.testImages);
  const trainRows = (t: 'z' | 'c') => (c.decoders[t].averageTrain ? d.trainImages : d.trainTrials);
  return { sessions: d.sessions, trainRows, featureImages: d.trainImages + pre.testIds.length, testImages };
}

/**
 * Estimates every stage; stages in `skip` cost nothing. Loads the model once (its load time is charged to the first
 * stage that needs it). A probe the signal stops ends in a CancelledError naming the stage it was estimating.
 */
export async function estimateStages(
  c: ReconstructConfig,
  pre: PreflightResult,
  skip: ReadonlyMap<StageName, boolean>,
  signal?: AbortSignal,
): Promise<Record<StageName, StageEstimate>> {
  const at: { stage: StageName } = { stage: 'extract' };
  try {
    return await probeStages(c, pre, skip, at, signal);
  } catch (e) {
    throw cancelledEstimating(e, at.stage, { signal, what: 'reconstruct' });
  }
}

/** `estimateStages`' probes; `at.stage` is the stage whose estimate is being made. */
async function probeStages(
  c: ReconstructConfig,
  pre: PreflightResult,
  skip: ReadonlyMap<StageName, boolean>,
  at: { stage: StageName },
  signal?: AbortSignal,
): Promise<Record<StageName, StageEstimate>> {
  const shape = await runShape(c, pre);
  const est = {} as Record<StageName, StageEstimate>;
  const skipped = SKIPPED;
  const nTest = shape.testImages;
  const g = c.img2img;

  at.stage = 'extract';
  if (skip.get('extract')) est.extract = skipped;
  else {
    const probeSession = shape.sessions[0];
    const [, s] = await timed(async () => {
      for (const t of ['z', 'c'] as const) await extractNsd({ ...extractOptions(c, t), sessions: [probeSession], cacheDir: undefined, signal });
    });
    est.extract = { seconds: s * shape.sessions.length, basis: `session ${probeSession} of both regions read in ${s.toFixed(2)} s × ${shape.sessions.length} sessions (uncached)` };
  }

  // The model is needed by every probe below that runs the SD components.
  const modelStages = (['features', 'zonly', 'img2img'] as const).filter((s) => !skip.get(s));
  const needsModel = modelStages.length > 0;
  let loadSeconds = 0;
  let sd: Diffusion | null = null;
  let loadCharged = false;
  let cDim = 77 * 768;
  const chargeLoad = () => {
    if (loadCharged) return 0;
    loadCharged = true;
    return loadSeconds;
  };
  try {
    if (needsModel) {
      at.stage = modelStages[0];
      [sd, loadSeconds] = await timed(() =>
        // (as the run loads it: its memory setting changes the timings, its scheduler whether the folder loads)
        Diffusion.load(c.model.dir, diffusionLoadOptions(c)),
      );
    }
    // (without the model loaded, the width its files declare: the demo world's c is 77 × 64, not SD 1.x's 77 × 768)
    const declared = sd ? null : await unetDeclaredSizes(c.model.dir).then((u) => u.condDim, () => null);
    const D = sd && sd.info.condDim > 0 ? sd.info.condDim : (declared ?? 768);
    const zDim = 4 * (c.features.zSize / 8) ** 2;
    cDim = 77 * D;

    at.stage = 'features';
    if (skip.get('features')) est.features = skipped;
    else {
      const k = Math.min(c.features.batchSize, shape.featureImages);
      const stimuli = await NsdStimuli.open(c.nsd.root);
      let s: number;
      try {
        const ids = pre.testIds.slice(0, k);
        const probe = async () => {
          const px = c.features.zSize ** 2 * 3;
          const rgb = new Uint8Array(ids.length * px);
          ids.forEach((id, i) => rgb.set(stimuli.image(id, c.features.zSize).data, i * px));
          await sd!.encodeImages({ data: rgb, count: ids.length, height: c.features.zSize, width: c.features.zSize }, { mode: c.features.zMode, signal });
          await sd!.encodeText(ids.flatMap((id) => pre.captions.get(id)), { signal });
        };
        await probe(); // warm-up
        s = await fastest(probe);
      } finally {
        stimuli.close();
      }
      const load = chargeLoad();
      est.features = batchedEstimate({ load, perBatch: s, k, n: shape.featureImages, what: 'VAE + captions' });
    }

    at.stage = 'decoders';
    if (skip.get('decoders')) est.decoders = skipped;
    else {
      let seconds = 0;
      const parts: string[] = [];
      for (const t of ['z', 'c'] as const) {
        const d = c.decoders[t];
        const r = await ridgeEstimate(shape.trainRows(t), pre.voxels[t], t === 'z' ? zDim : cDim, d.alphas, d.folds, signal);
        seconds += r.seconds;
        parts.push(`${t}: ${r.basis} (${r.seconds.toFixed(1)} s)`);
      }
      est.decoders = { seconds, basis: parts.join('; ') };
    }

    at.stage = 'zonly';
    if (skip.get('zonly')) est.zonly = skipped;
    else {
      const k = Math.min(c.features.batchSize, nTest);
      const h = c.features.zSize / 8;
      const probe = async () => {
        const imgs = await sd!.decode({ data: noise(k * zDim, 3, 0.5), shape: [k, 4, h, h] }, { signal });
        const side = g.size;
        for (let i = 0; i < 2 * k; i++) {
          rgbPngBytes(new Uint8Array(side * side * 3).fill(imgs.data[i % imgs.data.length]), side, side);
        }
      };
      await probe();
      const s = await fastest(probe);
      const load = chargeLoad();
      est.zonly = batchedEstimate({ load, perBatch: s, k, n: nTest, what: 'latents decoded, 2 PNGs each written' });
    }

    at.stage = 'img2img';
    if (skip.get('img2img')) est.img2img = skipped;
    else {
      const k = Math.min(Math.max(g.batchSize, 1), nTest);
      const cond = { data: noise(k * cDim, 9, 0.3), shape: [k, 77, D] };
      const imgs = randomImages(k, g.size, 13);
      // one batch: re-encode, `steps` denoising steps at the run's guidance and scheduler, decode
      const probeOptions = (steps: number) => ({ strength: 1, steps, guidance: g.guidance, scheduler: g.scheduler, karras: g.karras, eta: g.eta });
      const probe = (steps: number) => async () => {
        const z0 = await sd!.encodeImages(imgs, { mode: g.reencode, signal });
        const r = await sd!.img2img({ z: z0, c: cond, ...probeOptions(steps), seeds: g.seed, batchSize: g.batchSize, signal });
        await sd!.decode(r.latents, { signal });
      };
      await probe(1)(); // warm-up: the sessions' first runs allocate
      const a = await fastest(probe(1));
      const b = await fastest(probe(5));
      // the time of one U-Net call (the probes' calls differ by more than 4 where a step makes several: Heun, PNDM's
      // warm-up), and of encode/decode; the run's calls are its own plan's (unetEvaluationsPerImage counts the same)
      const calls = (steps: number) => sd!.plan(probeOptions(steps)).runs.length;
      const { per: perCall, fixed } = twoPoint(calls(1), a, calls(5), b);
      const runCalls = sd!.plan({ scheduler: g.scheduler, karras: g.karras, steps: g.steps, strength: g.strength, eta: g.eta, img2imgRule: g.rule }).runs.length;
      // the samples an interrupted run made are kept when the stages before img2img do not run (their outputs stay)
      const upstreamRuns = IMG2IMG_UPSTREAM.some((s) => !skip.get(s as StageName));
      const { kept, intact, total } = upstreamRuns ? { kept: 0, intact: 0, total: 0 } : await img2imgKeptSamples(c);
      const samples = kept > 0 ? total - kept : g.seeds * nTest;
      const load = chargeLoad();
      // a resumed stage's time is that of the samples to compute, and how many those are is said apart: '× 36 samples
      // left of 2 seed(s) × 24 images' read as one product
      const count =
        kept > 0
          ? `× ${samples} samples to compute ÷ ${k} per batch (${samples} = ${g.seeds} seed(s) × ${total / g.seeds} images − ${keptFrom(kept, intact)})`
          : `× ${g.seeds} seed(s) × ${nTest} images ÷ ${k} per batch`;
      est.img2img = {
        // (a last, partial batch costs its share: a U-Net run's cost is per image)
        seconds: load + (samples / k) * (fixed + runCalls * perCall),
        basis: `a batch of ${k} at ${g.size} px: ${perCall.toFixed(3)} s per U-Net call${guided(g.guidance) ? ' (with guidance)' : ''} + ${fixed.toFixed(3)} s encode/decode, × ${runCalls} U-Net calls ${count}`,
      };
    }
  } finally {
    sd?.dispose();
  }

  at.stage = 'evaluate';
  if (skip.get('evaluate')) est.evaluate = skipped;
  else {
    const k = Math.min(nTest, 8);
    const e = c.evaluation;
    const gt = randomImages(k, e.size, 17);
    const rec = randomImages(k, e.size, 19);
    const opts = { size: e.size, networks: e.networks, pixelIdentification: e.pixelIdentification, threads: c.model.threads, signal };
    // the first set (z-only) runs the networks on the ground truth too; the seeds' sets use its features (Evaluation)
    const kept = new Evaluation(gt, opts);
    await kept.evaluate(rec);
    const later = await fastest(() => kept.evaluate(rec));
    const first = e.networks.length > 0 ? await fastest(() => new Evaluation(gt, opts).evaluate(rec)) : later;
    const batches = nTest / k;
    est.evaluate = {
      seconds: (first + g.seeds * later) * batches,
      basis:
        `${first.toFixed(2)} s per batch of ${k} images for the z-only set (metrics, the networks on the ground truth too) + ` +
        `${later.toFixed(2)} s for each of ${g.seeds} seed(s), × ${Number.isInteger(batches) ? batches : batches.toFixed(1)} batches (${nTest} images)`,
    };
  }

  at.stage = 'report';
  if (skip.get('report')) est.report = skipped;
  else {
    // the report's work is its charts: the c decoder's three, on data of c's size, counted twice (z and c)
    const grid = c.decoders.c.alphas;
    const d: DecoderSummary = {
      roi: c.decoders.c.roi, trainRows: 1, voxels: pre.voxels.c, targets: cDim, meanCvScore: 0, testFeatureCorrelation: 0, score: c.decoders.c.score,
      alphas: grid, alphaCounts: grid.map(() => cDim / grid.length),
      cvCurve: grid.map((alpha, i) => ({ alpha, mean: i, q10: i - 1, median: i, q90: i + 1, resolved: true })),
    };
    const probe = () => decoderCharts('c', d, noise(cDim, 23, 0.3));
    await probe();
    const s = await fastest(probe);
    est.report = { seconds: 2 * s, basis: `the c decoder's charts (${cDim.toLocaleString('en')} targets) rendered in ${s.toFixed(2)} s, × 2 decoders` };
  }
  return est;
}
