import { ShapeError } from '../errors.js';
import type { Matrix } from '../matrix.js';

function sameShape(a: Matrix, b: Matrix, what: string): void {
  if (a.rows !== b.rows || a.cols !== b.cols) {
    throw new ShapeError(`${what}: predictions are ${a.rows}×${a.cols} but the measured data are ${b.rows}×${b.cols}`);
  }
}

/** Pearson r per column (voxel) between predictions and measurements, float64 sums; 0 where either is constant. */
export function columnPearson(pred: Matrix, actual: Matrix): Float32Array {
  sameShape(pred, actual, 'columnPearson');
  const { rows: n, cols: t } = pred;
  const sp = new Float64Array(t), sa = new Float64Array(t), spp = new Float64Array(t), saa = new Float64Array(t), spa = new Float64Array(t);
  for (let i = 0; i < n; i++) {
    const o = i * t;
    for (let j = 0; j < t; j++) {
      const p = pred.data[o + j], a = actual.data[o + j];
      sp[j] += p;
      sa[j] += a;
      spp[j] += p * p;
      saa[j] += a * a;
      spa[j] += p * a;
    }
  }
  const out = new Float32Array(t);
  for (let j = 0; j < t; j++) {
    const cpp = spp[j] - (sp[j] * sp[j]) / n, caa = saa[j] - (sa[j] * sa[j]) / n, cpa = spa[j] - (sp[j] * sa[j]) / n;
    out[j] = cpp > 0 && caa > 0 ? cpa / Math.sqrt(cpp * caa) : 0;
  }
  return out;
}

/** Coefficient of determination per column, 1 − SSE/SST (about the column's own mean); 0 where SST = 0. */
export function columnR2(pred: Matrix, actual: Matrix): Float32Array {
  sameShape(pred, actual, 'columnR2');
  const { rows: n, cols: t } = pred;
  const sa = new Float64Array(t), saa = new Float64Array(t), sse = new Float64Array(t);
  for (let i = 0; i < n; i++) {
    const o = i * t;
    for (let j = 0; j < t; j++) {
      const a = actual.data[o + j], d = pred.data[o + j] - a;
      sa[j] += a;
      saa[j] += a * a;
      sse[j] += d * d;
    }
  }
  const out = new Float32Array(t);
  for (let j = 0; j < t; j++) {
    const sst = saa[j] - (sa[j] * sa[j]) / n;
    out[j] = sst > 0 ? 1 - sse[j] / sst : 0;
  }
  return out;
}

/** Mean of the finite values (NaN when there are none). */
export function mean(values: ArrayLike<number>, indices?: ArrayLike<number>): number {
  let s = 0, c = 0;
  const n = indices ? indices.length : values.length;
  for (let k = 0; k < n; k++) {
    const v = values[indices ? indices[k] : k];
    if (Number.isFinite(v)) {
      s += v;
      c++;
    }
  }
  return c ? s / c : NaN;
}

/** Median of values sorted ascending, as np.median: the mean of the two middle values when there is an even number (NaN when empty). */
export function sortedMedian(sorted: ArrayLike<number>): number {
  const n = sorted.length;
  if (!n) return NaN;
  const h = n >> 1;
  return n % 2 ? sorted[h] : (sorted[h - 1] + sorted[h]) / 2;
}
