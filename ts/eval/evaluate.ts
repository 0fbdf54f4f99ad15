/**
 * The metrics table of a set of reconstructions: PixCorr and SSIM (native), two-way identification and
 * correlation distances on the features of any ONNX image networks, as in the NSD tables.
 * One rule for a constant image or feature row, which has no correlation: its values are NaN and left out of the
 * mean, and each metric counts the images it left out (`leftOut`; ts/eval/identification.ts for 2WI's comparisons).
 */
import { checkControl } from '../callbackOptions.js';
import { CancelledError, InvalidArgumentError } from '../errors.js';
import { describeNumber } from '../ridge/alphas.js';
import type { RgbImages } from '../sd/tensor.js';
import { checkSpecNumbers, FeatureNetwork, type FeatureNetworkSpec } from './featureNetwork.js';
import { correlationDistance, meanOfDefined, pixelTwoWayIdentification, twoWayIdentification } from './identification.js';
import type { Matrix } from '../matrix.js';
import { checkInteger } from '../ridge/options.js';
import { MAX_ORT_THREADS } from '../sd/optionBounds.js';
import { checkImages, checkPair, resizeImages } from './images.js';
import { metricSize, pixCorr, SSIM_MIN_SIZE, ssim } from './pixel.js';

export interface EvaluateOptions {
  /** Side for PixCorr/SSIM (default 425): an integer from SSIM_MIN_SIZE (11) to MAX_METRIC_SIZE (4096). */
  size?: number;
  networks?: FeatureNetworkSpec[];
  /**
   * Also compute two-way identification on the pixels, at `size` (used by the demo's acceptance test). Default true.
   * Like the networks' two-way identification, it needs 2 images or more: with one it is left out.
   */
  pixelIdentification?: boolean;
  /**
   * Aborting it stops the evaluation: a native metric between images (or rows), a feature network between its
   * calls. The call then rejects with a CancelledError (its cause the signal's reason).
   */
  signal?: AbortSignal;
  /**
   * ONNX Runtime intra-op threads of the feature networks: an integer from 0 to MAX_ORT_THREADS; 0 (the default)
   * is ONNX Runtime's own choice, one per physical core.
   */
  threads?: number;
  /**
   * Called as the evaluation of a set goes: after each metric, and after each ONNX call of a network, with the
   * fraction of the set's steps done (a pixel metric or one network's pass over a set of images, each one step) and
   * the step's name ('SSIM', 'AlexNet(2): ground truth 64 of 982 images').
   */
  onProgress?: (p: EvaluationProgress) => void;
}

export interface EvaluationProgress {
  fraction: number;
  step: string;
}

export interface MetricValue {
  name: string;
  value: number;
  /** 'higher' or 'lower' is better. */
  better: 'higher' | 'lower';
  /** Per-image values (for the report and the per-image CSV); NaN where an image has none. */
  perImage: Float64Array;
  /**
   * Images without a value (NaN in perImage: no correlation, a constant image or feature row), left out of
   * `value`. Set by evaluateReconstructions; absent means none counted.
   */
  leftOut?: number;
  /**
   * Two-way identification only: the comparisons (i ≠ j) of the N·(N − 1) left out, a correlation undefined (a
   * uniform ground truth drops one comparison from every other image's score). The seeds' final: summed over the seeds.
   */
  comparisonsLeftOut?: number;
}

export interface EvaluationResult {
  images: number;
  metrics: MetricValue[];
}

/** A metric with the count of images it left out (NaN per-image values: no correlation), and 2WI's comparisons. */
function metric(name: string, value: number, better: 'higher' | 'lower', perImage: Float64Array, comparisonsLeftOut?: number): MetricValue {
  const leftOut = perImage.reduce((n, v) => n + (Number.isFinite(v) ? 0 : 1), 0);
  return { name, value, better, perImage, leftOut, ...(comparisonsLeftOut === undefined ? {} : { comparisonsLeftOut }) };
}

/** Rows of RGB pixels as float features (for 2WI by pixel correlation). */
export function pixelFeatures(images: RgbImages): { data: Float32Array; rows: number; cols: number } {
  return { data: Float32Array.from(images.data), rows: images.count, cols: images.height * images.width * 3 };
}

/**
 * One ground truth evaluated against several sets of reconstructions (a run's z-only images, then each seed's
 * samples): each network's features of the ground truth are computed at the first set and kept, so that a set after
 * it runs the networks on its reconstructions only (z-only and 5 seeds: 7 passes of each network over the test images,
 * not 12). The ground truth's pixels must not change while the evaluation is used. Networks are opened for each set
 * (one at a time: their sessions are not held together). The kept features are every network's rows of the ground
 * truth: at NSD's 1,000 test images ~560 MB for AlexNet's second conv layer, ~170 MB its fifth, a few MB for pooled
 * outputs (Inception, CLIP); a network's pass held its ground truth's rows beside the reconstructions' already.
 */
export class Evaluation {
  private readonly size: number;
  private readonly truthFeatures = new Map<number, Matrix>();

  constructor(
    readonly groundTruth: RgbImages,
    private readonly options: EvaluateOptions = {},
  ) {
    checkControl(options, 'evaluate', ['onProgress']);
    // (SSIM's minimum up front: a size under 11 ran PixCorr, then failed in ssim without naming evaluate's size)
    this.size = metricSize(options.size, 'evaluate', SSIM_MIN_SIZE);
    checkImages(groundTruth, 'evaluate: ground truth');
    // (the networks' numbers too: FeatureNetwork.open checked them only after PixCorr, SSIM and the pixels' 2WI ran)
    if (options.networks !== undefined && !Array.isArray(options.networks)) {
      throw new InvalidArgumentError(`evaluate networks: expected an array of network specs, got ${describeNumber(options.networks)}`);
    }
    for (const [i, spec] of (options.networks ?? []).entries()) {
      if (spec === null || typeof spec !== 'object') throw new InvalidArgumentError(`evaluate networks[${i}]: expected a network spec object, got ${describeNumber(spec)}`);
      checkSpecNumbers(spec, `evaluate network '${spec.name}'`);
    }
    if (options.threads !== undefined) checkInteger(options.threads, 'threads', 'evaluate', 0, MAX_ORT_THREADS);
  }

  /** The metrics of `rec` (paired with the ground truth by index). */
  async evaluate(rec: RgbImages): Promise<EvaluationResult> {
    const gt = this.groundTruth, size = this.size;
    const { signal } = this.options;
    checkPair(gt, rec, 'evaluate');
    // (the features networks run in onnxruntime-node, which takes no signal: checked between their calls)
    const checkAbort = (): void => {
      if (signal?.aborted) throw new CancelledError('evaluate: cancelled', { cause: signal.reason });
    };
    const pixelWi = (this.options.pixelIdentification ?? true) && gt.count >= 2;
    // (two-way identification compares each image with the others: with one image there is nothing to compare, as
    // for the pixels')
    const networks = [...(this.options.networks ?? []).entries()].filter(([, spec]) => spec.metric !== 'identification' || gt.count >= 2);
    const steps = 2 + (pixelWi ? 1 : 0) + networks.reduce((n, [i]) => n + (this.truthFeatures.has(i) ? 1 : 2), 0);
    let done = 0;
    const report = (step: string, part = 1) => this.options.onProgress?.({ fraction: Math.min(1, (done + part) / steps), step });
    const finished = (step: string) => {
      report(step);
      done++;
    };
    const metrics: MetricValue[] = [];
    // (the pixel metrics' progress in image pairs; a step's last event is its `finished`)
    const pairs = (name: string) => (n: number, total: number) => n < total && report(`${name} ${n} of ${total} images`, n / total);
    const pc = await pixCorr(gt, rec, { size, signal, onProgress: pairs('PixCorr') });
    metrics.push(metric('PixCorr', pc.mean, 'higher', pc.values));
    finished('PixCorr');
    const ss = await ssim(gt, rec, { size, signal, onProgress: pairs('SSIM') });
    metrics.push(metric('SSIM', ss.mean, 'higher', ss.values));
    finished('SSIM');
    if (pixelWi) {
      // at the side PixCorr and SSIM use: ground truth and reconstructions of different sizes are then comparable
      const wi = await pixelTwoWayIdentification(resizeImages(gt, size), resizeImages(rec, size), { signal });
      metrics.push(metric('Pixels(2WI)', wi.accuracy, 'higher', wi.perImage, wi.comparisonsLeftOut));
      finished('Pixels(2WI)');
    }
    for (const [i, spec] of networks) {
      checkAbort();
      const net = await FeatureNetwork.open(spec, { threads: this.options.threads });
      // a network's pass, its progress by ONNX call
      const pass = async (images: RgbImages, what: string) => {
        const f = await net.features(images, { onBatch: (n, total) => report(`${spec.name}: ${what} ${n} of ${total} images`, n / total) });
        done++;
        checkAbort();
        return f;
      };
      let fr: Matrix;
      let fg = this.truthFeatures.get(i);
      try {
        if (!fg) {
          fg = await pass(gt, 'ground truth');
          this.truthFeatures.set(i, fg);
        }
        fr = await pass(rec, 'reconstructions');
      } finally {
        await net.dispose();
      }
      if (spec.metric === 'identification') {
        const wi = await twoWayIdentification(fg, fr, { signal });
        metrics.push(metric(spec.name, wi.accuracy, 'higher', wi.perImage, wi.comparisonsLeftOut));
      } else {
        const d = await correlationDistance(fg, fr, { signal });
        metrics.push(metric(spec.name, d.mean, 'lower', d.perImage));
      }
    }
    return { images: gt.count, metrics };
  }
}

/** Evaluates reconstructions against ground truth (paired by index); several sets against one ground truth: Evaluation. */
export async function evaluateReconstructions(gt: RgbImages, rec: RgbImages, options: EvaluateOptions = {}): Promise<EvaluationResult> {
  return new Evaluation(gt, options).evaluate(rec);
}

/**
 * The seeds' metrics as one: each image's value is its mean over the seeds where it has one (a seed's uniform
 * image has no correlation: NaN, left out as within a seed), NaN where no seed has; `value` is the mean of those
 * per-image values (NaN when none has one) and `leftOut` counts the images without one, so the final value, the
 * per-image values and the count left out agree as they do within a seed. (The mean of the seeds' means weighted
 * an image scored by fewer seeds less, and one seed with no value at all made the final NaN with nothing left out.)
 */
export function averageMetrics(runs: MetricValue[][]): MetricValue[] {
  return runs[0].map((m, j) => {
    const sum = new Float64Array(m.perImage.length);
    const seeds = new Float64Array(m.perImage.length);
    for (const r of runs) {
      r[j].perImage.forEach((v, i) => {
        if (!Number.isFinite(v)) return;
        sum[i] += v;
        seeds[i]++;
      });
    }
    const perImage = sum.map((s, i) => (seeds[i] ? s / seeds[i] : Number.NaN));
    const { mean, undefinedCount } = meanOfDefined(perImage);
    // (2WI) each seed's comparisons left out, summed: a uniform ground truth drops the same ones in every seed
    const comparisons = runs.some((r) => r[j].comparisonsLeftOut !== undefined) ? { comparisonsLeftOut: runs.reduce((a, r) => a + (r[j].comparisonsLeftOut ?? 0), 0) } : {};
    return { ...m, value: mean, perImage, leftOut: undefinedCount, ...comparisons };
  });
}
