import { ShapeError } from '../errors.js';
import { assertFiniteMatrix } from '../io/finite.js';
import { assertMatrix, type Matrix } from '../matrix.js';

/** Both arguments well-formed, of one shape, and finite (NonFiniteError naming the argument, row and column). */
function checkPair(pred: Matrix, actual: Matrix, what: string): void {
  assertMatrix(pred, `${what}: pred`);
  assertMatrix(actual, `${what}: actual`);
  if (pred.rows !== actual.rows || pred.cols !== actual.cols) {
    throw new ShapeError(`${what}: predictions are ${pred.rows}×${pred.cols} but the measured data are ${actual.rows}×${actual.cols}`);
  }
  assertFiniteMatrix(pred, `${what}: pred`);
  assertFiniteMatrix(actual, `${what}: actual`);
}

/**
 * A column is constant when its SD is below 4 float32 ulps of its level: sd < 4·2⁻²⁴·max(|mean|, 2⁻¹²⁶) (the
 * engine's rule for a constant target). Below that, the spread is rounding of a float32 value, not signal, and
 * dividing by it turns a rounding residual into a huge score (an R² of −6e15 for a constant column).
 */
const CONSTANT_RELATIVE_SD = 4 * 2 ** -24;
const FLOAT32_TINY = 2 ** -126;

function isConstant(sumSquaredDeviations: number, mean: number, n: number): boolean {
  return !(Math.sqrt(sumSquaredDeviations / n) >= CONSTANT_RELATIVE_SD * Math.max(Math.abs(mean), FLOAT32_TINY));
}

/** Per-column means in float64. */
function columnMeans(m: Matrix): Float64Array {
  const { rows: n, cols: t } = m;
  const s = new Float64Array(t);
  for (let i = 0; i < n; i++) {
    const o = i * t;
    for (let j = 0; j < t; j++) s[j] += m.data[o + j];
  }
  for (let j = 0; j < t; j++) s[j] /= n;
  return s;
}

/**
 * Pearson r per column (voxel) between predictions and measurements, two-pass in float64 (means, then
 * deviations); 0 where either column is constant (see CONSTANT_RELATIVE_SD; encode's held-out scores are NaN where
 * the measured one is: heldOutScores). NaN or ±Inf in either argument is refused (NonFiniteError naming pred or
 * actual, the row and the column).
 */
export function columnPearson(pred: Matrix, actual: Matrix): Float32Array {
  checkPair(pred, actual, 'columnPearson');
  const { rows: n, cols: t } = pred;
  const mp = columnMeans(pred), ma = columnMeans(actual);
  const cpp = new Float64Array(t), caa = new Float64Array(t), cpa = new Float64Array(t);
  for (let i = 0; i < n; i++) {
    const o = i * t;
    for (let j = 0; j < t; j++) {
      const p = pred.data[o + j] - mp[j], a = actual.data[o + j] - ma[j];
      cpp[j] += p * p;
      caa[j] += a * a;
      cpa[j] += p * a;
    }
  }
  const out = new Float32Array(t);
  for (let j = 0; j < t; j++) {
    const flat = isConstant(cpp[j], mp[j], n) || isConstant(caa[j], ma[j], n);
    out[j] = flat ? 0 : cpa[j] / Math.sqrt(cpp[j] * caa[j]);
  }
  return out;
}

/**
 * Coefficient of determination per column, 1 − SSE/SST (about the column's own mean), two-pass in float64; 0
 * where the measured column is constant (see CONSTANT_RELATIVE_SD; encode's held-out scores are NaN there:
 * heldOutScores). NaN or ±Inf in either argument is refused (NonFiniteError naming pred or actual, the row and the
 * column).
 */
export function columnR2(pred: Matrix, actual: Matrix): Float32Array {
  checkPair(pred, actual, 'columnR2');
  const { rows: n, cols: t } = pred;
  const ma = columnMeans(actual);
  const sst = new Float64Array(t), sse = new Float64Array(t);
  for (let i = 0; i < n; i++) {
    const o = i * t;
    for (let j = 0; j < t; j++) {
      const a = actual.data[o + j], d = pred.data[o + j] - a, c = a - ma[j];
      sst[j] += c * c;
      sse[j] += d * d;
    }
  }
  const out = new Float32Array(t);
  for (let j = 0; j < t; j++) out[j] = isConstant(sst[j], ma[j], n) ? 0 : 1 - sse[j] / sst[j];
  return out;
}

/**
 * Per column, whether it is constant by the rule columnPearson and columnR2 apply (CONSTANT_RELATIVE_SD): 1 where its
 * SD is float32 rounding of its level. NaN or ±Inf is refused (NonFiniteError naming `what`, the row and the column).
 */
export function constantColumns(m: Matrix, what = 'constantColumns'): Uint8Array {
  assertMatrix(m, what);
  assertFiniteMatrix(m, what);
  const { rows: n, cols: t } = m;
  const mean = columnMeans(m);
  const ssd = new Float64Array(t);
  for (let i = 0; i < n; i++) {
    const o = i * t;
    for (let j = 0; j < t; j++) ssd[j] += (m.data[o + j] - mean[j]) ** 2;
  }
  return Uint8Array.from(ssd, (s, j) => Number(isConstant(s, mean[j], n)));
}

/** `values` with NaN where `flat` is 1 (in place; returned): a score that is undefined there. */
export function undefinedWhere(values: Float32Array, flat: Uint8Array): Float32Array {
  flat.forEach((f, j) => f && (values[j] = NaN));
  return values;
}

/**
 * Held-out r and R² per voxel as encode reports them: columnPearson's and columnR2's values, but NaN where the
 * measured column is constant (`flat`, constantColumns(actual) unless given): a voxel with no variance to explain has
 * no score, not a score of 0 (which would count as "explained nothing" in region means). A constant prediction of a
 * varying measurement keeps r = 0 and its R²: the model predicting nothing is a result.
 */
export function heldOutScores(pred: Matrix, actual: Matrix, flat = constantColumns(actual, 'heldOutScores: actual')): { r: Float32Array; r2: Float32Array } {
  return { r: undefinedWhere(columnPearson(pred, actual), flat), r2: undefinedWhere(columnR2(pred, actual), flat) };
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
