/**
 * The low-level metrics of the NSD protocol (method.md §6.2), native and parallel: PixCorr (Pearson r of
 * the flattened RGB images) and SSIM (skimage structural_similarity on grayscale, Gaussian weights σ = 1.5,
 * population covariance, data_range 1). Both images are first resized to `size` (425 in BD and MindEye).
 * Both report progress in image pairs and stop at an aborted `signal` within one pair per engine thread.
 */
import { checkControl } from '../callbackOptions.js';
import { abortedBeforeStart, nativeJob } from '../native/call.js';
import { checkInteger } from '../ridge/options.js';
import type { RgbImages } from '../sd/tensor.js';
import { checkPair, resizeImages } from './images.js';

export interface PixelMetricOptions {
  /**
   * Side both batches are resized to before comparing (default 425, the published protocol): an integer from 1
   * to MAX_METRIC_SIZE (4096, as the run config's evaluation.size). SSIM needs at least 11 (its Gaussian window).
   */
  size?: number;
  /** Told the image pairs done so far and in all, about a hundred times at most, in increasing order. */
  onProgress?: (done: number, total: number) => void;
  /** Aborting it stops the metric between image pairs: the call rejects with a CancelledError (its cause the signal's reason). */
  signal?: AbortSignal;
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

/** The largest side the pixel metrics resize to (a batch at 100000 was a bare RangeError from the allocation). */
export const MAX_METRIC_SIZE = 4096;

/** The side to resize to: `size`, checked (naming `what`), or the published 425. */
export function metricSize(size: unknown, what: string): number {
  return size === undefined ? 425 : checkInteger(size, 'size', what, 1, MAX_METRIC_SIZE);
}

function prepare(gt: RgbImages, rec: RgbImages, what: string, size?: number): [RgbImages, RgbImages] {
  const s = metricSize(size, what);
  checkPair(gt, rec, what);
  return [resizeImages(gt, s), resizeImages(rec, s)];
}

/** The engine's progress events as the caller's onProgress: counts only ever increase (the engine's threads post concurrently). */
function increasing(onProgress: PixelMetricOptions['onProgress']): ((done: number, total: number) => void) | undefined {
  if (!onProgress) return undefined;
  let last = 0;
  return (done, total) => {
    if (done <= last) return;
    last = done;
    onProgress(done, total);
  };
}

/** PixCorr per image pair. */
export async function pixCorr(gt: RgbImages, rec: RgbImages, options: PixelMetricOptions = {}): Promise<PerImageMetric> {
  checkControl(options, 'pixCorr', ['onProgress']);
  // (an aborted signal before the resize: it took 350 ms for three 64-px images)
  if (options.signal?.aborted) throw abortedBeforeStart('pixCorr', options.signal);
  const [a, b] = prepare(gt, rec, 'pixCorr', options.size);
  const progress = increasing(options.onProgress);
  return summarise(
    await nativeJob('pixCorr', (n, token) => n.metricsPixcorr(a.data, b.data, a.count, a.height, a.width, 3, progress, token), options.signal),
  );
}

/** SSIM per image pair. */
export async function ssim(gt: RgbImages, rec: RgbImages, options: PixelMetricOptions & { sigma?: number } = {}): Promise<PerImageMetric> {
  checkControl(options, 'ssim', ['onProgress']);
  // (an aborted signal before the resize: it took 350 ms for three 64-px images)
  if (options.signal?.aborted) throw abortedBeforeStart('ssim', options.signal);
  const [a, b] = prepare(gt, rec, 'ssim', options.size);
  const progress = increasing(options.onProgress);
  const native = { sigma: options.sigma ?? 1.5 };
  return summarise(
    await nativeJob('ssim', (n, token) => n.metricsSsim(a.data, b.data, a.count, a.height, a.width, 3, native, progress, token), options.signal),
  );
}
