import { InvalidArgumentError, ShapeError } from '../errors.js';
import type { Matrix } from '../matrix.js';

/**
 * NSD's noise ceiling from ncsnr (Allen et al. 2022; NSD data manual): the share of variance explainable when
 * each test response is the mean of its image's trials. With n_i trials averaged for test image i the noise
 * variance left in the test set is the mean over images of 1/n_i (the manual's (A/3 + B/2 + C/1)/(A + B + C)),
 * so NC = ncsnr² / (ncsnr² + mean_i(1/n_i)); 1/mean(n) would understate the noise and overstate the ceiling
 * when images have different repetitions. `trials` holds n_i per test image. Returned as a fraction (0..1);
 * √NC is the ceiling of Pearson r.
 */
export function noiseCeilingFromNcsnr(ncsnr: Float32Array, trials: ArrayLike<number>): Float32Array {
  const inv = meanInverseTrials(trials);
  const out = new Float32Array(ncsnr.length);
  for (let j = 0; j < ncsnr.length; j++) {
    const s2 = ncsnr[j] * ncsnr[j];
    out[j] = Number.isFinite(s2) ? s2 / (s2 + inv) : NaN;
  }
  return out;
}

/** Mean over test images of 1/n, n the trials averaged for the image (each a whole number >= 1). */
export function meanInverseTrials(trials: ArrayLike<number>): number {
  if (typeof trials !== 'object' || trials === null || typeof trials.length !== 'number' || trials.length === 0) {
    throw new InvalidArgumentError(`noise ceiling: expected the trials averaged for each test image (a non-empty list), got ${String(trials)}`);
  }
  let s = 0;
  for (let i = 0; i < trials.length; i++) {
    const n = trials[i];
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`noise ceiling: trials averaged for test image ${i} must be a whole number >= 1, got ${n}`);
    s += 1 / n;
  }
  return s / trials.length;
}

/** The trials averaged per test image from an extraction's testRepetitions (trials → images with that many). */
export function trialsPerTestImage(testRepetitions: Record<string, number>): number[] {
  const out: number[] = [];
  for (const [n, images] of Object.entries(testRepetitions)) {
    // ({3: 2.5} gave three images, {3: -1} none, {'2.5': 1} an image of 2.5 trials)
    if (!/^[1-9]\d*$/.test(n)) throw new InvalidArgumentError(`trialsPerTestImage: expected whole trial counts >= 1 as keys, got '${n}'`);
    if (typeof images !== 'number' || !Number.isInteger(images) || images < 0) {
      throw new InvalidArgumentError(`trialsPerTestImage: expected a whole number of images >= 0 for ${n} trials, got ${String(images)}`);
    }
    for (let i = 0; i < images; i++) out.push(Number(n));
  }
  return out;
}

/**
 * ncsnr estimated from repeated single trials, as NSD defines it: noise SD = √(mean over images of the
 * across-repetition variance, ddof 1), signal SD = √max(0, total variance − noise variance), ncsnr = signal/noise.
 * `trials` rows are single trials with 73k ids `ids`; images seen once do not contribute to the noise.
 */
export function estimateNcsnr(trials: Matrix, ids: ArrayLike<number>): Float32Array {
  if (ids.length !== trials.rows) throw new ShapeError(`estimateNcsnr: ${ids.length} image ids for ${trials.rows} trials`);
  const V = trials.cols;
  const rowsOf = new Map<number, number[]>();
  for (let i = 0; i < ids.length; i++) {
    const list = rowsOf.get(ids[i]);
    if (list) list.push(i);
    else rowsOf.set(ids[i], [i]);
  }
  const noiseVar = new Float64Array(V);
  let groups = 0;
  const m = new Float64Array(V);
  for (const rows of rowsOf.values()) {
    if (rows.length < 2) continue;
    groups++;
    m.fill(0);
    for (const r of rows) for (let j = 0; j < V; j++) m[j] += trials.data[r * V + j] / rows.length;
    for (const r of rows) {
      for (let j = 0; j < V; j++) {
        const d = trials.data[r * V + j] - m[j];
        noiseVar[j] += (d * d) / (rows.length - 1);
      }
    }
  }
  if (groups === 0) throw new InvalidArgumentError('estimateNcsnr: no image was seen more than once, so trial noise cannot be estimated');
  const tot = new Float64Array(V), tot2 = new Float64Array(V);
  for (let i = 0; i < trials.rows; i++) {
    for (let j = 0; j < V; j++) {
      const v = trials.data[i * V + j];
      tot[j] += v;
      tot2[j] += v * v;
    }
  }
  const out = new Float32Array(V);
  const n = trials.rows;
  for (let j = 0; j < V; j++) {
    const nv = noiseVar[j] / groups;
    const total = (tot2[j] - (tot[j] * tot[j]) / n) / (n - 1);
    out[j] = nv > 0 ? Math.sqrt(Math.max(0, total - nv)) / Math.sqrt(nv) : NaN;
  }
  return out;
}
