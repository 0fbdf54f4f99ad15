/**
 * The checks of a model's parts at its constructor (RidgeModel, BandedRidgeModel), the one boundary every model
 * passes (RidgeCV.fit, load, a service or test assembling one by hand): a part missing, of the wrong type or not
 * sized to coef is refused there, naming it, instead of failing later in predict() ("ridgePredict: intercept must
 * be a Float32Array") or save() ("Cannot read properties of undefined"). Missing or of the wrong type:
 * InvalidArgumentError; of the wrong size: ShapeError.
 */
import { InvalidArgumentError, ShapeError } from '../errors.js';
import { assertMatrix, type Matrix } from '../matrix.js';
import { describeNumber } from './alphas.js';
import { checkKnownKeys } from './options.js';

/** How a model's folds were formed (its metadata 'folds'.kind). */
export const FOLD_KINDS = ['contiguous', 'groups', 'custom'] as const;

type NumberArrayClass = { new (n: number): ArrayLike<number>; readonly name: string };

/** A value for "got …": a typed array by its class and length, anything else as describeNumber has it. */
function describePart(v: unknown): string {
  if (ArrayBuffer.isView(v) && 'length' in v) return `a ${v.constructor.name} of ${(v as unknown as ArrayLike<number>).length}`;
  return describeNumber(v);
}

/** `parts` as a record: an object with no unknown key (a typo is named with the key meant) and every required one. */
export function checkPartsObject(parts: unknown, what: string, required: readonly string[], optional: readonly string[]): Record<string, unknown> {
  if (parts === null || typeof parts !== 'object' || Array.isArray(parts)) {
    throw new InvalidArgumentError(`${what}: expected an object of the model's parts (${required.join(', ')}), got ${describeNumber(parts)}`);
  }
  checkKnownKeys(parts, [...required, ...optional], what, 'part');
  const record = parts as Record<string, unknown>;
  const missing = required.filter((k) => record[k] === undefined);
  if (missing.length > 0) {
    throw new InvalidArgumentError(`${what}: missing part${missing.length > 1 ? 's' : ''} ${missing.join(', ')}; a model needs ${required.join(', ')}`);
  }
  return record;
}

/** `value` must be a `cls` of `length` values; `per` says what one value is, for the error ('one per target …'). */
export function checkVector(value: unknown, name: string, what: string, cls: NumberArrayClass, length: number, per: string): void {
  if (!(value instanceof cls)) throw new InvalidArgumentError(`${what} ${name}: expected a ${cls.name} of ${length} values (${per}), got ${describePart(value)}`);
  const n = (value as ArrayLike<number>).length;
  if (n !== length) throw new ShapeError(`${what} ${name}: has ${n} values, expected ${length} (${per})`);
}

/** `value` must be a well-formed Matrix, with `cols` columns and `rows` rows where given (`shape` says why, for the error). */
export function checkPartMatrix(value: unknown, name: string, what: string, expect: { rows?: number; cols?: number; shape?: string } = {}): Matrix {
  const m = value as Matrix | null;
  if (m === null || typeof m !== 'object' || !(m.data instanceof Float32Array)) {
    throw new InvalidArgumentError(`${what} ${name}: expected a matrix { data: Float32Array, rows, cols }, got ${describePart(value)}`);
  }
  assertMatrix(m, `${what} ${name}`);
  const wrong = (expect.rows !== undefined && m.rows !== expect.rows) || (expect.cols !== undefined && m.cols !== expect.cols);
  if (wrong) throw new ShapeError(`${what} ${name}: is ${m.rows}×${m.cols}, expected ${expect.rows ?? 'any'}×${expect.cols ?? 'any'} (${expect.shape})`);
  return m;
}

/** The alpha grid a model was fitted over: a non-empty array of finite numbers > 0. */
export function checkAlphaList(value: unknown, name: string, what: string): void {
  const expected = `${what} ${name}: expected a non-empty array of the alphas searched (finite numbers > 0)`;
  if (!Array.isArray(value) || value.length === 0) throw new InvalidArgumentError(`${expected}, got ${describePart(value)}`);
  const bad = value.findIndex((a) => typeof a !== 'number' || !Number.isFinite(a) || !(a > 0));
  if (bad >= 0) throw new InvalidArgumentError(`${expected}, got ${describeNumber(value[bad])} at position ${bad}`);
}

/**
 * The tensors of prediction, ((X − xMean) / xScale) · coef + intercept: coef a features × targets matrix, intercept
 * one Float32Array value per target, xMean and xScale one per feature. Returns coef's shape.
 */
export function checkPredictionParts(parts: Record<string, unknown>, what: string): { p: number; t: number } {
  const coef = checkPartMatrix(parts.coef, 'coef', what);
  const [p, t] = [coef.rows, coef.cols];
  checkVector(parts.intercept, 'intercept', what, Float32Array, t, `one per target: coef is ${p}×${t}, features × targets`);
  for (const name of ['xMean', 'xScale']) checkVector(parts[name], name, what, Float32Array, p, `one per feature: coef is ${p}×${t}, features × targets`);
  return { p, t };
}
