/**
 * The maps of the ridge penalty chosen per voxel (a feature set's alpha, a joint model's shared alpha): written as
 * log10 alpha, since the grid is logarithmic, with a note of the grid and of the voxels at its ends, where cross-
 * validation would have gone further (a larger alpha: the features predict next to nothing there).
 */

/** log10 of each alpha (NaN stays NaN). */
export const log10Alphas = (alphas: Float32Array): Float32Array => alphas.map((a) => Math.log10(a));

const fmtAlpha = (a: number): string => a.toExponential(0).replace('e+', 'e');

/**
 * "grid 1e-1 … 1e5 (13 alphas); 20 of 1508 voxels at its largest alpha, 3 at its smallest": the grid, and how many
 * voxels chose one of its ends (where a wider grid could have chosen otherwise).
 */
export function alphaGridNote(chosen: Float32Array, grid: readonly number[]): string {
  if (!grid.length) return '';
  const lo = Math.min(...grid), hi = Math.max(...grid);
  let atLo = 0, atHi = 0, n = 0;
  for (const a of chosen) {
    if (!Number.isFinite(a)) continue;
    n++;
    // the chosen alpha is a float32 copy of a grid value
    if (Math.abs(a - hi) <= 1e-6 * hi) atHi++;
    else if (Math.abs(a - lo) <= 1e-6 * lo) atLo++;
  }
  return `grid ${fmtAlpha(lo)} … ${fmtAlpha(hi)} (${grid.length} alphas); ${atHi} of ${n} voxels at its largest alpha, ${atLo} at its smallest`;
}
