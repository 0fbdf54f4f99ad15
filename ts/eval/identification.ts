/**
 * Two-way identification and correlation distance on feature vectors (method.md §6.3): with r_ij the
 * Pearson correlation of ground-truth features g_i and reconstruction features p_j,
 *   2WI = (1/N) Σ_j #{i ≠ j : r_ij < r_jj} / (N − 1)      (strict "<", as BD and MindEye; chance 0.5)
 * and the correlation distance is the mean of 1 − r_jj (EffNet-B and SwAV columns).
 *
 * A constant row (a uniform-grey image's pixels, a feature vector of one value) has no Pearson correlation: its
 * r is NaN, as PixCorr's of a uniform image. Its comparisons are left out, never counted as lost: a constant
 * ground truth i drops the comparisons "r_ij < r_jj" of every reconstruction j, and an image j whose own r_jj is
 * undefined (its ground truth or its reconstruction constant) has no score (NaN), like PixCorr's, and is left
 * out of the mean. The results count what was left out (imagesLeftOut, comparisonsLeftOut).
 */
import { checkControl } from '../callbackOptions.js';
import { InvalidArgumentError, ShapeError } from '../errors.js';
import { assertFiniteMatrix } from '../io/finite.js';
import { assertMatrix, type Matrix } from '../matrix.js';
import { abortedBeforeStart, nativeJob } from '../native/call.js';
import { describeNumber } from '../ridge/alphas.js';
import { checkOptionsObject } from '../ridge/options.js';
import type { RgbImages } from '../sd/tensor.js';
import { checkPair } from './images.js';

/**
 * The two feature matrices of a metric, checked once: well-formed, finite (a NaN correlates as NaN, which no
 * comparison counts and no mean survives: NonFiniteError naming the argument, row and column), of one width,
 * and (`paired`) of one row per image each.
 */
function checkFeatures(gt: Matrix, rec: Matrix, what: string, paired: boolean): void {
  assertMatrix(gt, `${what}: gt (ground-truth features)`);
  assertMatrix(rec, `${what}: rec (reconstruction features)`);
  if (paired && gt.rows !== rec.rows) throw new ShapeError(`${what}: ${gt.rows} ground-truth rows but ${rec.rows} reconstruction rows`);
  if (gt.cols !== rec.cols) throw new ShapeError(`${what}: features differ in width: ${gt.rows}×${gt.cols} vs ${rec.rows}×${rec.cols}`);
  assertFiniteMatrix(gt, `${what}: gt (ground-truth features)`);
  assertFiniteMatrix(rec, `${what}: rec (reconstruction features)`);
}

/** What the identification metrics take beside the features. */
export interface IdentificationOptions {
  /** Aborting it stops the correlations between rows (or GEMM slices): the call rejects with a CancelledError. */
  signal?: AbortSignal;
}

/**
 * The options of an identification call: `signal` only (a misspelt key was ignored, and with it the abort), and an
 * aborted signal refused before the features' finiteness scan (0.1–0.2 s at 4,000 × 8,192).
 */
function checkIdentificationOptions(options: IdentificationOptions, what: string): void {
  checkControl(options, what, []);
  checkOptionsObject(options, ['signal'], what);
  if (options.signal?.aborted) throw abortedBeforeStart(what, options.signal);
}

/** The correlations of checked features, natively (float64 means and norms, SGEMM over slices of columns). */
function correlate(gt: Matrix, rec: Matrix, what: string, options: IdentificationOptions): Promise<Float32Array> {
  return nativeJob(what, (b, token) => b.metricsCorrelation(gt.data, gt.rows, rec.data, rec.rows, gt.cols, token), options.signal);
}

/**
 * N × N Pearson correlations r[i·N + j] = corr(gt row i, rec row j), natively (float64 means and norms, SGEMM over slices of columns);
 * NaN where a row is constant. NaN or ±Inf in the features is refused (NonFiniteError).
 */
export async function correlationMatrix(gt: Matrix, rec: Matrix, options: IdentificationOptions = {}): Promise<Float32Array> {
  checkIdentificationOptions(options, 'correlationMatrix');
  checkFeatures(gt, rec, 'correlationMatrix', false);
  return correlate(gt, rec, 'correlationMatrix', options);
}

/** Two-way identification: per-reconstruction scores, their mean, and what had no correlation to count. */
export interface TwoWayResult {
  /**
   * Per reconstruction j: the share of the counted comparisons it wins. NaN where none was counted (its own r_jj
   * undefined: its ground truth or its reconstruction constant; or every other ground truth constant).
   */
  perImage: Float64Array;
  /** Mean of perImage over the images that have a score; NaN when none has. */
  accuracy: number;
  /** Images without a score (perImage NaN), left out of accuracy. */
  imagesLeftOut: number;
  /** Comparisons (i ≠ j) of the N·(N − 1) left out because r_ij or r_jj is undefined (NaN: a constant row). */
  comparisonsLeftOut: number;
}

/** The correlation distance of each image pair, their mean, and the pairs that had no correlation. */
export interface CorrelationDistanceResult {
  /** 1 − r(g_j, p_j) per image; NaN where a row is constant (no correlation). */
  perImage: Float64Array;
  /** Mean over the images that have a distance; NaN when none has. */
  mean: number;
  /** Images without a distance (perImage NaN), left out of the mean. */
  imagesLeftOut: number;
}

/** The mean of the defined (non-NaN) values and how many were NaN. */
export function meanOfDefined(values: Float64Array): { mean: number; undefinedCount: number } {
  let sum = 0;
  let n = 0;
  for (const v of values) {
    if (Number.isNaN(v)) continue;
    sum += v;
    n++;
  }
  return { mean: n ? sum / n : Number.NaN, undefinedCount: values.length - n };
}

/**
 * 2WI from a correlation matrix (rows: ground truth, columns: reconstructions). NaN entries (a constant row's)
 * are comparisons left out, never losses (see the module's comment).
 */
export function twoWayFromCorrelations(r: ArrayLike<number>, n: number): TwoWayResult {
  // (NaN or 2.5 read as "expected NaN×NaN correlations")
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`twoWayFromCorrelations n: expected an integer >= 0 (the images), got ${describeNumber(n)}`);
  if (r.length !== n * n) throw new ShapeError(`twoWayFromCorrelations: expected ${n}×${n} correlations, got ${r.length}`);
  if (n < 2) throw new ShapeError(`two-way identification needs at least 2 images, got ${n}`);
  const perImage = new Float64Array(n);
  let counted = 0;
  for (let j = 0; j < n; j++) {
    const own = r[j * n + j];
    let wins = 0;
    let compared = 0;
    if (!Number.isNaN(own)) {
      for (let i = 0; i < n; i++) {
        const other = r[i * n + j];
        if (i === j || Number.isNaN(other)) continue;
        compared++;
        if (other < own) wins++;
      }
    }
    perImage[j] = compared ? wins / compared : Number.NaN;
    counted += compared;
  }
  const { mean, undefinedCount } = meanOfDefined(perImage);
  return { perImage, accuracy: mean, imagesLeftOut: undefinedCount, comparisonsLeftOut: n * (n - 1) - counted };
}

/**
 * Two-way identification accuracy of reconstructions by their features (NaN or ±Inf refused: NonFiniteError).
 * A constant row's comparisons are left out and counted (TwoWayResult).
 */
export async function twoWayIdentification(gt: Matrix, rec: Matrix, options: IdentificationOptions = {}): Promise<TwoWayResult> {
  checkIdentificationOptions(options, 'twoWayIdentification');
  checkFeatures(gt, rec, 'twoWayIdentification', true);
  return twoWayFromCorrelations(await correlate(gt, rec, 'twoWayIdentification', options), gt.rows);
}

/**
 * Two-way identification on the images' pixels (the rows of RGB bytes of each pair), as twoWayIdentification on
 * their values as floats, without those float copies: the engine centres and scales both sides a slice of columns
 * at a time (64 MiB). At NSD's 1,000 test images of 425² pixels: 7.2 s and 1.16 GB of peak RSS, 1.08 GB of it the
 * two batches (one whole normalised side: 15.8 s and 3.29 GB).
 */
export async function pixelTwoWayIdentification(gt: RgbImages, rec: RgbImages, options: IdentificationOptions = {}): Promise<TwoWayResult> {
  checkIdentificationOptions(options, 'pixelTwoWayIdentification');
  checkPair(gt, rec, 'pixelTwoWayIdentification');
  if (gt.height !== rec.height || gt.width !== rec.width) {
    throw new ShapeError(`pixelTwoWayIdentification: images differ in size: ${gt.width}×${gt.height} vs ${rec.width}×${rec.height}`);
  }
  const dim = gt.height * gt.width * 3;
  const r = await nativeJob('pixelTwoWayIdentification', (b, token) => b.metricsPixelCorrelation(gt.data, gt.count, rec.data, rec.count, dim, token), options.signal);
  return twoWayFromCorrelations(r, gt.count);
}

/**
 * Mean correlation distance 1 − r(g_j, p_j) (scipy.spatial.distance.correlation), lower is better (NaN or ±Inf
 * refused: NonFiniteError). A pair with a constant row has no distance (NaN) and is left out of the mean, counted.
 */
export async function correlationDistance(gt: Matrix, rec: Matrix, options: IdentificationOptions = {}): Promise<CorrelationDistanceResult> {
  checkIdentificationOptions(options, 'correlationDistance');
  checkFeatures(gt, rec, 'correlationDistance', true);
  const r = await correlate(gt, rec, 'correlationDistance', options);
  const n = gt.rows;
  const perImage = Float64Array.from({ length: n }, (_, j) => 1 - r[j * n + j]);
  const { mean, undefinedCount } = meanOfDefined(perImage);
  return { perImage, mean, imagesLeftOut: undefinedCount };
}
