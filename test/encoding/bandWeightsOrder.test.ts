/**
 * band_weights.npy and the γ maps take column k as the joint model's k-th set (its `sets`), but the model orders its
 * bands as the spaces object's keys: a set named with digits only ('9') came first whatever its place, so the signal
 * set's γ was written under the noise set's name (review s35-r3: γ of 'lat' 0.064 where its unique R² was 0.63).
 */
import { describe, expect, it } from 'vitest';

import { weightsInSetOrder } from '../../ts/encoding/bandWeights.js';
import { BandedRidgeCV } from '../../ts/ridge/BandedRidgeCV.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

describe("a joint model's band weights", () => {
  it("come in the sets' order, a set named with digits included", async () => {
    const n = 160, p = 6, t = 4;
    const r = rng(5);
    const mat = (rows: number, cols: number) => ({ data: Float32Array.from({ length: rows * cols }, r), rows, cols });
    const lat = mat(n, p), noise = mat(n, p), beta = mat(p, t);
    const y = mat(n, t);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < t; j++) {
        let s = 0;
        for (let k = 0; k < p; k++) s += lat.data[i * p + k] * beta.data[k * t + j];
        y.data[i * t + j] = 4 * s + 0.2 * y.data[i * t + j];
      }
    const model = await new BandedRidgeCV({ alphas: [1e-2, 1e-1, 1, 10], nIter: 12, folds: 4 }).fit({ lat, '9': noise }, y);
    // (the cause: the object's integer-like key first)
    expect(model.bandNames).toEqual(['9', 'lat']);
    const w = weightsInSetOrder(model, ['lat', '9']);
    expect([w.rows, w.cols]).toEqual([t, 2]);
    const raw = model.bandWeights();
    for (let j = 0; j < t; j++) {
      expect(w.data[j * 2]).toBe(raw.data[j * 2 + 1]);
      expect(w.data[j * 2 + 1]).toBe(raw.data[j * 2]);
      // the signal set carries the weight
      expect(w.data[j * 2]).toBeGreaterThan(0.5);
    }
    // in the model's own order it is the same matrix
    expect(weightsInSetOrder(model, ['9', 'lat'])).toEqual(raw);
  });
});
