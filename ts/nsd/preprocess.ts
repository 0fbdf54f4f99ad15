import type { Matrix } from '../matrix.js';

/** Per-column mean and standard deviation over rows (ddof = 0 or 1), in float64. */
export function columnStats(m: Matrix, ddof: 0 | 1): { mean: Float64Array; std: Float64Array } {
  const { rows, cols, data } = m;
  const mean = new Float64Array(cols);
  const m2 = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let j = 0; j < cols; j++) mean[j] += data[o + j];
  }
  for (let j = 0; j < cols; j++) mean[j] /= rows || 1;
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let j = 0; j < cols; j++) {
      const d = data[o + j] - mean[j];
      m2[j] += d * d;
    }
  }
  const std = new Float64Array(cols);
  const n = rows - ddof;
  for (let j = 0; j < cols; j++) std[j] = n > 0 ? Math.sqrt(m2[j] / n) : 0;
  return { mean, std };
}

/**
 * In place: (x − mean) / std per column. Columns with zero spread become 0 (there is nothing to scale);
 * returns how many there were.
 */
export function standardize(m: Matrix, mean: Float64Array, std: Float64Array): number {
  const { rows, cols, data } = m;
  let flat = 0;
  const inv = new Float64Array(cols);
  for (let j = 0; j < cols; j++) {
    if (std[j] > 0 && Number.isFinite(std[j])) inv[j] = 1 / std[j];
    else flat++;
  }
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let j = 0; j < cols; j++) data[o + j] = (data[o + j] - mean[j]) * inv[j];
  }
  return flat;
}
