/** Where a ridge fit's chosen alphas fall on its grid, over the targets that are not constant. */
import type { Matrix } from '../matrix.js';

export interface AlphaDiagnostics {
  score: string;
  alphas: number[];
  /** Targets per grid alpha, over the targets that are not constant in training. */
  alphaCounts: number[];
  /**
   * Targets per grid alpha, over the targets with a positive CV score at some alpha (the population of edgeLow and
   * edgeHigh, and of the report's chart): an alpha chosen for a target the features do not predict means nothing.
   */
  predictableAlphaCounts: number[];
  /**
   * Shares of the targets with a positive CV score at some alpha that chose the grid's smallest and largest alpha (the
   * rule of `ridge fit`: > 5% warns). A target that scores <= 0 at every alpha has nothing the features predict: the
   * most shrinkage is its best, a wider grid would not change that, so it is not counted.
   */
  edgeLow: number;
  edgeHigh: number;
  /** Targets not constant that score <= 0 at every alpha (left out of the edge shares). */
  unpredictableTargets: number;
  /** Quantiles of the CV score over the same targets, per alpha. */
  cvCurve: { alpha: number; mean: number; q10: number; median: number; q90: number; resolved: boolean }[];
  /** Targets constant over the training samples: every alpha scores 0, ties go to the largest alpha, so they are left out. */
  constantTargets: number;
  /** Median CV score at the chosen alpha, over the same targets. */
  medianBestScore: number;
}

/**
 * A fit's chosen alphas on its grid and its CV-score curve, for the edge warning (`ridge fit`, `reconstruct`,
 * `demo`) and the run report. Targets with no finite non-zero score at any alpha are constant over the training
 * samples (the engine scores a constant target 0, NaN at an unresolved alpha, and a tie goes to the largest
 * alpha): nothing to fit, and counted in they would swamp the quantiles and pile up at the grid's top (most of c's
 * padding positions in the demo).
 */
export function alphaDiagnostics(grid: number[], best: Float32Array, cvScores: Matrix, score: string): AlphaDiagnostics {
  const T = cvScores.cols;
  const informative = new Uint8Array(T);
  for (let i = 0; i < cvScores.rows; i++) {
    for (let j = 0; j < T; j++) {
      const v = cvScores.data[i * T + j];
      if (v !== 0 && Number.isFinite(v)) informative[j] = 1;
    }
  }
  const kept = informative.reduce((a, b) => a + b, 0);
  const counts = grid.map(() => 0);
  // (the chosen alphas are a few grid values: each one's index found once)
  const index = new Map<number, number>();
  const at = Int32Array.from(best, (a) => {
    let k = index.get(a);
    if (k === undefined) index.set(a, (k = gridIndex(grid, a)));
    return k;
  });
  at.forEach((k, j) => {
    if (informative[j]) counts[k]++;
  });
  // Typed arrays sorted by their own numeric sort: with Array.from, filter and a comparator this function took
  // 45–90 ms at 10 alphas × 4,096 targets (`ridge fit` at the bench's medium shape, beside the model's write).
  const q = (sorted: Float64Array, f: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(f * (sorted.length - 1) + 0.5))] : NaN);
  const buffer = new Float64Array(T);
  const curve = grid.map((alpha, i) => {
    let n = 0;
    for (let j = 0; j < T; j++) {
      const v = cvScores.data[i * T + j];
      // (+ 0: a −0 is 0, which a typed array's sort would put before +0s where a comparator left them in order)
      if (informative[j] && Number.isFinite(v)) buffer[n++] = v + 0;
    }
    const row = buffer.subarray(0, n).sort();
    // (summed in sorted order, as before)
    let sum = 0;
    for (let j = 0; j < n; j++) sum += row[j];
    return { alpha, mean: n ? sum / n : NaN, q10: q(row, 0.1), median: q(row, 0.5), q90: q(row, 0.9), resolved: n > 0 };
  });
  const bestScores = new Float64Array(T);
  let nBest = 0;
  const predictableCounts = grid.map(() => 0);
  let predictable = 0;
  for (let j = 0; j < T; j++) {
    if (!informative[j]) continue;
    let m = -Infinity;
    for (let i = 0; i < cvScores.rows; i++) if (cvScores.data[i * T + j] > m) m = cvScores.data[i * T + j];
    bestScores[nBest++] = m + 0;
    if (!(m > 0)) continue;
    predictable++;
    predictableCounts[at[j]]++;
  }
  return {
    score,
    alphas: grid,
    alphaCounts: counts,
    predictableAlphaCounts: predictableCounts,
    edgeLow: predictable ? predictableCounts[0] / predictable : 0,
    edgeHigh: predictable ? predictableCounts[grid.length - 1] / predictable : 0,
    unpredictableTargets: kept - predictable,
    cvCurve: curve,
    constantTargets: T - kept,
    medianBestScore: q(bestScores.subarray(0, nBest).sort(), 0.5),
  };
}

/** The grid alpha a chosen alpha is (the engine returns it in float32: the nearest on a log scale). */
function gridIndex(grid: number[], a: number): number {
  let k = 0;
  for (let i = 1; i < grid.length; i++) if (Math.abs(Math.log(a / grid[i])) < Math.abs(Math.log(a / grid[k]))) k = i;
  return k;
}
