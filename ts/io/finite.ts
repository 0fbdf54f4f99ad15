/**
 * Finiteness checks where numbers enter from files (NSD betas, feature matrices, decoded latents): one helper, so
 * every such error says what the array is, where the first NaN/Inf sits, and how many there are.
 */
import { InvalidArgumentError, NonFiniteError } from '../errors.js';
import type { Matrix } from '../matrix.js';
import { describeNumber } from '../ridge/alphas.js';

/** Index of the first NaN or ±Inf in `a`, or -1 when every value is finite. */
export function firstNonFinite(a: ArrayLike<number>): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    // x - x is 0 for every finite x and NaN for NaN and ±Inf; one compare per element.
    if (x - x !== 0) return i;
  }
  return -1;
}

/** firstNonFinite a slice at a time, letting the event loop run between slices (a large array in a service). */
export async function firstNonFiniteSliced(a: ArrayLike<number>, slice = 1 << 18): Promise<number> {
  for (let from = 0; from < a.length; from += slice) {
    if (from > 0) await new Promise((r) => setImmediate(r));
    for (let i = from, to = Math.min(a.length, from + slice); i < to; i++) {
      const x = a[i];
      if (x - x !== 0) return i;
    }
  }
  return -1;
}

/**
 * The error for a matrix argument whose element at flat index `bad` (from firstNonFinite) is NaN or ±Inf: names
 * `label` (the argument, e.g. "RidgeModel.predict: X"), the value, its row and its column.
 */
export function nonFiniteAt(m: Matrix, bad: number, label: string): NonFiniteError {
  return new NonFiniteError(`${label} contains ${m.data[bad]} at row ${Math.floor(bad / m.cols)}, column ${bad % m.cols}: inputs must be finite`);
}

/** Throws nonFiniteAt's NonFiniteError at the first NaN or ±Inf of a matrix argument (as RidgeModel.predict does for X). */
export function assertFiniteMatrix(m: Matrix, label: string): void {
  const bad = firstNonFinite(m.data);
  if (bad >= 0) throw nonFiniteAt(m, bad, label);
}

export interface FiniteCheckOptions {
  /** Shape of `a` (row-major), to name the first bad element by its index along each axis. */
  shape?: readonly number[];
  /** Names of the axes (e.g. ['trial', 'voxel']) used with `shape`. */
  axes?: readonly string[];
  /**
   * Names the element at a flat index instead (e.g. a masked volume's, where the matrix position means nothing
   * to a reader of the NIfTI): what goes between "element " and " is NaN".
   */
  where?: (flat: number) => string;
  /**
   * The value at a flat index as the caller had it before the array was made float32 (a JSON number, a float64
   * .npy's element): an element that is ±Inf only in float32 is then named by that value, as beyond float32's range.
   */
  sent?: (flat: number) => number;
}

/** float32's largest finite magnitude, as an error names it. */
const FLOAT32_RANGE = '±3.4e38';

/**
 * Throws NonFiniteError when `a` holds NaN or ±Inf, naming `what` (e.g. "X (features.npy)"), the first bad
 * element's index (and position along `shape`), its value, and the count of bad values.
 */
export function assertFinite(a: ArrayLike<number>, what: string, opts: FiniteCheckOptions = {}): void {
  const first = firstNonFinite(a);
  if (first < 0) return;
  let count = 0;
  for (let i = first; i < a.length; i++) if (a[i] - a[i] !== 0) count++;
  // a finite number that float32 cannot hold became ±Inf: say what was sent, and why it is refused
  const sent = opts.sent?.(first);
  const value = sent !== undefined && Number.isFinite(sent) && Math.abs(a[first]) === Infinity ? `${sent}, beyond float32's range (${FLOAT32_RANGE}), the type it is read as` : `${a[first]}`;
  throw new NonFiniteError(
    `${what}: element ${opts.where ? opts.where(first) : position(first, opts)} is ${value}` +
      (count > 1 ? ` (${count} of ${a.length} values are not finite)` : '') +
      '; finite numbers are required',
  );
}

function position(flat: number, opts: FiniteCheckOptions): string {
  const shape = opts.shape;
  if (!shape || shape.length < 2) return `[${flat}]`;
  const idx: number[] = [];
  let rest = flat;
  for (let d = shape.length - 1; d >= 0; d--) {
    idx.unshift(rest % shape[d]);
    rest = Math.floor(rest / shape[d]);
  }
  const named = opts.axes && opts.axes.length === shape.length ? idx.map((v, d) => `${opts.axes![d]} ${v}`).join(', ') : idx.join(', ');
  return `[${named}] (flat index ${flat})`;
}

/**
 * The `divisor` option of the NIfTI and HDF5 readers (1 when absent): one check for both, since 0 or NaN there gave
 * Infinity or NaN for every value. `what` names the file read.
 */
export function divisorOption(divisor: unknown, what: string): number {
  const d = divisor ?? 1;
  if (typeof d !== 'number' || !Number.isFinite(d) || d === 0) {
    throw new InvalidArgumentError(`${what}: divisor must be a finite non-zero number, got ${describeNumber(d)}`);
  }
  return d;
}
