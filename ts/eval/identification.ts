/**
 * Two-way identification and correlation distance on feature vectors (method.md §6.3): with r_ij the
 * Pearson correlation of ground-truth features g_i and reconstruction features p_j,
 *   2WI = (1/N) Σ_j #{i ≠ j : r_ij < r_jj} / (N − 1)      (strict "<", as BD and MindEye; chance 0.5)
 * and the correlation distance is the mean of 1 − r_jj (EffNet-B and SwAV columns).
 */
import { checkControl } from '../callbackOptions.js';
import { ShapeError } from '../errors.js';
import { assertFiniteMatrix } from '../io/finite.js';
import { assertMatrix, type Matrix } from '../matrix.js';
import { nativeJob } from '../native/call.js';

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

/** The correlations of checked features, natively (float64 normalisation, one GEMM). */
function correlate(gt: Matrix, rec: Matrix, what: string, options: IdentificationOptions): Promise<Float32Array> {
  return nativeJob(what, (b, token) => b.metricsCorrelation(gt.data, gt.rows, rec.data, rec.rows, gt.cols, token), options.signal);
}

/**
 * N × N Pearson correlations r[i·N + j] = corr(gt row i, rec row j), natively (float64 normalisation, one GEMM);
 * NaN where a row is constant. NaN or ±Inf in the features is refused (NonFiniteError).
 */
export async function correlationMatrix(gt: Matrix, rec: Matrix, options: IdentificationOptions = {}): Promise<Float32Array> {
  checkControl(options, 'correlationMatrix', []);
  checkFeatures(gt, rec, 'correlationMatrix', false);
  return correlate(gt, rec, 'correlationMatrix', options);
}

/** 2WI from a correlation matrix (rows: ground truth, columns: reconstructions). Per-reconstruction scores and their mean. */
export function twoWayFromCorrelations(r: ArrayLike<number>, n: number): { perImage: Float64Array; accuracy: number } {
  if (r.length !== n * n) throw new ShapeError(`twoWayFromCorrelations: expected ${n}×${n} correlations, got ${r.length}`);
  if (n < 2) throw new ShapeError(`two-way identification needs at least 2 images, got ${n}`);
  const perImage = new Float64Array(n);
  let sum = 0;
  for (let j = 0; j < n; j++) {
    const own = r[j * n + j];
    let wins = 0;
    for (let i = 0; i < n; i++) if (i !== j && r[i * n + j] < own) wins++;
    perImage[j] = wins / (n - 1);
    sum += perImage[j];
  }
  return { perImage, accuracy: sum / n };
}

/** Two-way identification accuracy of reconstructions by their features (NaN or ±Inf refused: NonFiniteError). */
export async function twoWayIdentification(
  gt: Matrix,
  rec: Matrix,
  options: IdentificationOptions = {},
): Promise<{ perImage: Float64Array; accuracy: number }> {
  checkControl(options, 'twoWayIdentification', []);
  checkFeatures(gt, rec, 'twoWayIdentification', true);
  return twoWayFromCorrelations(await correlate(gt, rec, 'twoWayIdentification', options), gt.rows);
}

/** Mean correlation distance 1 − r(g_j, p_j) (scipy.spatial.distance.correlation), lower is better (NaN or ±Inf refused: NonFiniteError). */
export async function correlationDistance(
  gt: Matrix,
  rec: Matrix,
  options: IdentificationOptions = {},
): Promise<{ perImage: Float64Array; mean: number }> {
  checkControl(options, 'correlationDistance', []);
  checkFeatures(gt, rec, 'correlationDistance', true);
  const r = await correlate(gt, rec, 'correlationDistance', options);
  const n = gt.rows;
  const perImage = Float64Array.from({ length: n }, (_, j) => 1 - r[j * n + j]);
  return { perImage, mean: perImage.reduce((a, b) => a + b, 0) / n };
}
