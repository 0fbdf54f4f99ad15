import type { Matrix } from '../matrix.js';
import type { BandedRidgeModel } from '../ridge/BandedRidgeModel.js';

/**
 * The model's band weights γ (voxels × sets) with their columns in `sets` order, as band_weights.npy and the γ maps
 * read them: the model orders its bands as the spaces' object keys came, and an object puts integer-like keys ('9',
 * '2024') first, whatever the order they were set in.
 */
export function weightsInSetOrder(model: BandedRidgeModel, sets: readonly string[]): Matrix {
  const w = model.bandWeights();
  const from = sets.map((s) => model.bandNames.indexOf(s));
  if (from.includes(-1)) throw new Error(`band weights: the model's bands (${model.bandNames.join(', ')}) are not the sets ${sets.join(', ')}`);
  if (from.every((f, k) => f === k)) return w;
  const data = new Float32Array(w.rows * sets.length);
  for (let j = 0; j < w.rows; j++) for (const [k, f] of from.entries()) data[j * sets.length + k] = w.data[j * w.cols + f];
  return { data, rows: w.rows, cols: sets.length };
}
