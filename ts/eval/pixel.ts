/**
 * The low-level metrics of the NSD protocol (method.md §6.2), native and parallel: PixCorr (Pearson r of
 * the flattened RGB images) and SSIM (skimage structural_similarity on grayscale, Gaussian weights σ = 1.5,
 * population covariance, data_range 1). Both images are first resized to `size` (425 in BD and MindEye).
 */
import { nativeJob } from '../native/call.js';
import type { RgbImages } from '../sd/tensor.js';
import { checkPair, resizeImages } from './images.js';

export interface PixelMetricOptions {
  /** Side both batches are resized to before comparing (default 425, the published protocol). */
  size?: number;
}

export interface PerImageMetric {
  /** One value per image pair. */
  values: Float64Array;
  /** Mean over images (NaN entries, e.g. a constant image's PixCorr, are skipped). */
  mean: number;
}

export function summarise(values: Float64Array): PerImageMetric {
  let s = 0;
  let n = 0;
  for (const v of values) {
    if (Number.isFinite(v)) {
      s += v;
      n++;
    }
  }
  return { values, mean: n ? s / n : Number.NaN };
}

function prepare(gt: RgbImages, rec: RgbImages, what: string, size?: number): [RgbImages, RgbImages] {
  checkPair(gt, rec, what);
  const s = size ?? 425;
  return [resizeImages(gt, s), resizeImages(rec, s)];
}

/** PixCorr per image pair. */
export async function pixCorr(gt: RgbImages, rec: RgbImages, options: PixelMetricOptions = {}): Promise<PerImageMetric> {
  const [a, b] = prepare(gt, rec, 'pixCorr', options.size);
  return summarise(await nativeJob('pixCorr', (n) => n.metricsPixcorr(a.data, b.data, a.count, a.height, a.width, 3)));
}

/** SSIM per image pair. */
export async function ssim(gt: RgbImages, rec: RgbImages, options: PixelMetricOptions & { sigma?: number } = {}): Promise<PerImageMetric> {
  const [a, b] = prepare(gt, rec, 'ssim', options.size);
  return summarise(await nativeJob('ssim', (n) => n.metricsSsim(a.data, b.data, a.count, a.height, a.width, 3, { sigma: options.sigma ?? 1.5 })));
}
