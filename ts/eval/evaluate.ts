/**
 * The metrics table of a set of reconstructions: PixCorr and SSIM (native), two-way identification and
 * correlation distances on the features of any ONNX image networks, as in the NSD tables.
 */
import { checkControl } from '../callbackOptions.js';
import { CancelledError } from '../errors.js';
import type { RgbImages } from '../sd/tensor.js';
import { FeatureNetwork, type FeatureNetworkSpec } from './featureNetwork.js';
import { correlationDistance, twoWayIdentification } from './identification.js';
import { checkPair } from './images.js';
import { pixCorr, ssim } from './pixel.js';

export interface EvaluateOptions {
  /** Side for PixCorr/SSIM (default 425). */
  size?: number;
  networks?: FeatureNetworkSpec[];
  /** Also compute two-way identification on the raw pixels (used by the demo's acceptance test). Default true. */
  pixelIdentification?: boolean;
  /**
   * Aborting it stops the evaluation: a native metric between images (or rows), a feature network between its
   * calls. The call then rejects with a CancelledError (its cause the signal's reason).
   */
  signal?: AbortSignal;
}

export interface MetricValue {
  name: string;
  value: number;
  /** 'higher' or 'lower' is better. */
  better: 'higher' | 'lower';
  /** Per-image values (for the report and the per-image CSV). */
  perImage: Float64Array;
}

export interface EvaluationResult {
  images: number;
  metrics: MetricValue[];
}

/** Rows of RGB pixels as float features (for 2WI by pixel correlation). */
export function pixelFeatures(images: RgbImages): { data: Float32Array; rows: number; cols: number } {
  return { data: Float32Array.from(images.data), rows: images.count, cols: images.height * images.width * 3 };
}

/** Evaluates reconstructions against ground truth (paired by index). Networks are opened once per call. */
export async function evaluateReconstructions(gt: RgbImages, rec: RgbImages, options: EvaluateOptions = {}): Promise<EvaluationResult> {
  checkControl(options, 'evaluate', []);
  checkPair(gt, rec, 'evaluate');
  const { signal } = options;
  // (the features networks run in onnxruntime-node, which takes no signal: checked between their calls)
  const checkAbort = (): void => {
    if (signal?.aborted) throw new CancelledError('evaluate: cancelled', { cause: signal.reason });
  };
  const metrics: MetricValue[] = [];
  const size = options.size ?? 425;
  const pc = await pixCorr(gt, rec, { size, signal });
  metrics.push({ name: 'PixCorr', value: pc.mean, better: 'higher', perImage: pc.values });
  const ss = await ssim(gt, rec, { size, signal });
  metrics.push({ name: 'SSIM', value: ss.mean, better: 'higher', perImage: ss.values });
  if ((options.pixelIdentification ?? true) && gt.count >= 2) {
    const wi = await twoWayIdentification(pixelFeatures(gt), pixelFeatures(rec), { signal });
    metrics.push({ name: 'Pixels(2WI)', value: wi.accuracy, better: 'higher', perImage: wi.perImage });
  }
  for (const spec of options.networks ?? []) {
    checkAbort();
    const net = await FeatureNetwork.open(spec);
    try {
      const fg = await net.features(gt);
      checkAbort();
      const fr = await net.features(rec);
      checkAbort();
      if (spec.metric === 'identification') {
        const wi = await twoWayIdentification(fg, fr, { signal });
        metrics.push({ name: spec.name, value: wi.accuracy, better: 'higher', perImage: wi.perImage });
      } else {
        const d = await correlationDistance(fg, fr, { signal });
        metrics.push({ name: spec.name, value: d.mean, better: 'lower', perImage: d.perImage });
      }
    } finally {
      await net.dispose();
    }
  }
  return { images: gt.count, metrics };
}
