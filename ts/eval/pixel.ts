/**
 * The low-level metrics of the NSD protocol (method.md §6.2), native and parallel: PixCorr (Pearson r of
 * the flattened RGB images) and SSIM (skimage structural_similarity on grayscale, Gaussian weights σ = 1.5,
 * population covariance, data_range 1). Both images are first resized to `size` (425 in BD and MindEye).
 * Both report progress in image pairs and stop at an aborted `signal` within one pair per engine thread.
 */
import { checkControl } from '../callbackOptions.js';
import { InvalidArgumentError } from '../errors.js';
import { abortedBeforeStart, nativeJob } from '../native/call.js';
import { describeNumber } from '../ridge/alphas.js';
import { checkInteger, checkOptionsObject } from '../ridge/options.js';
import type { RgbImages } from '../sd/tensor.js';
import { checkPair, resizeImages } from './images.js';

export interface PixelMetricOptions {
  /**
   * Side both batches are resized to before comparing (default 425, the published protocol): an integer from 1
   * to MAX_METRIC_SIZE (4096, as the run config's evaluation.size); for SSIM at least its Gaussian window's side
   * (SSIM_MIN_SIZE, 11, at sigma 1.5; 5 at 0.5).
   */
  size?: number;
  /** Told the image pairs done so far and in all, about a hundred times at most, in increasing order. */
  onProgress?: (done: number, total: number) => void;
  /** Aborting it stops the metric between image pairs: the call rejects with a CancelledError (its cause the signal's reason). */
  signal?: AbortSignal;
}

const PIXEL_KEYS = ['size', 'onProgress', 'signal'] as const;

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

/** The smallest side SSIM takes: its Gaussian window at sigma 1.5 is 11 px (the run config's evaluation.size minimum). */
export const SSIM_MIN_SIZE = 11;

/**
 * The largest SSIM sigma. The window is 2·⌊3.5·sigma + 0.5⌋ + 1 px and must fit in the images: 100 is a 701-px
 * window, well past the published 1.5 (425-px images) and inside MAX_METRIC_SIZE (1e9 ran out of memory building it).
 */
export const MAX_SSIM_SIGMA = 100;

/** The side of SSIM's Gaussian window at `sigma` (truncated at 3.5 SD, as the engine and scipy.ndimage). */
function ssimWindow(sigma: number): number {
  return 2 * Math.floor(3.5 * sigma + 0.5) + 1;
}

/** The side to resize to: `size`, checked (naming `what`) against min..MAX_METRIC_SIZE, or the published 425. */
export function metricSize(size: unknown, what: string, min = 1): number {
  return size === undefined ? 425 : checkInteger(size, 'size', what, min, MAX_METRIC_SIZE);
}

function prepare(gt: RgbImages, rec: RgbImages, what: string, s: number): [RgbImages, RgbImages] {
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
  checkOptionsObject(options, PIXEL_KEYS, 'pixCorr');
  // (an aborted signal before the resize: it took 350 ms for three 64-px images)
  if (options.signal?.aborted) throw abortedBeforeStart('pixCorr', options.signal);
  const [a, b] = prepare(gt, rec, 'pixCorr', metricSize(options.size, 'pixCorr'));
  const progress = increasing(options.onProgress);
  return summarise(
    await nativeJob('pixCorr', (n, token) => n.metricsPixcorr(a.data, b.data, a.count, a.height, a.width, 3, progress, token), options.signal),
  );
}

/** SSIM per image pair. */
export async function ssim(gt: RgbImages, rec: RgbImages, options: PixelMetricOptions & { sigma?: number } = {}): Promise<PerImageMetric> {
  checkControl(options, 'ssim', ['onProgress']);
  checkOptionsObject(options, [...PIXEL_KEYS, 'sigma'], 'ssim');
  // (an aborted signal before the resize: it took 350 ms for three 64-px images)
  if (options.signal?.aborted) throw abortedBeforeStart('ssim', options.signal);
  const sigma = options.sigma ?? 1.5;
  if (typeof sigma !== 'number' || !(sigma > 0 && sigma <= MAX_SSIM_SIGMA)) {
    throw new InvalidArgumentError(`ssim sigma: expected a number in (0, ${MAX_SSIM_SIGMA}] (the Gaussian window's SD; 1.5 in the published protocol), got ${describeNumber(sigma)}`);
  }
  // (the window is the minimum, not SSIM_MIN_SIZE: a smaller sigma takes smaller images, 5 px at 0.5)
  const size = metricSize(options.size, 'ssim');
  // (the engine refused it only after the resize, naming neither option)
  if (ssimWindow(sigma) > size) {
    throw new InvalidArgumentError(`ssim size: ${size} is smaller than the ${ssimWindow(sigma)}-px Gaussian window of sigma ${sigma}: use a size of at least ${ssimWindow(sigma)} or a smaller sigma`);
  }
  const [a, b] = prepare(gt, rec, 'ssim', size);
  const progress = increasing(options.onProgress);
  const native = { sigma };
  return summarise(
    await nativeJob('ssim', (n, token) => n.metricsSsim(a.data, b.data, a.count, a.height, a.width, 3, native, progress, token), options.signal),
  );
}
