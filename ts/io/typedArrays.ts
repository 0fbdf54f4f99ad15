/** Element types shared by the array file formats (NPY, safetensors). */
import { InvalidArgumentError, ShapeError } from '../errors.js';
import { describeNumber } from '../ridge/alphas.js';

/** The typed arrays the array file formats read and write (see DType). */
export type NumericArray = Float32Array | Float64Array | Int16Array | Int32Array | Uint8Array;
/** The element type of a NumericArray, by NumPy's name. */
export type DType = 'float32' | 'float64' | 'int16' | 'int32' | 'uint8';

export const BYTES: Record<DType, number> = { float32: 4, float64: 8, int16: 2, int32: 4, uint8: 1 };

/** A typed array class (Float32Array, BigInt64Array, ...), for tables of what a writer takes. */
export type ArrayClass = abstract new (...args: never[]) => ArrayBufferView;

const NUMERIC: { array: ArrayClass; dtype: DType }[] = [
  { array: Float32Array, dtype: 'float32' }, { array: Float64Array, dtype: 'float64' }, { array: Int16Array, dtype: 'int16' },
  { array: Int32Array, dtype: 'int32' }, { array: Uint8Array, dtype: 'uint8' },
];

/** What `a` is, for "got ...": its class (Uint16Array, Array) or its type. */
export function arrayKind(a: unknown): string {
  if (a === null || a === undefined) return String(a);
  return (a as object).constructor?.name ?? typeof a;
}

/**
 * The entry of `table` whose array class `a` is an instance of. Anything else is an InvalidArgumentError naming
 * `what` and the classes taken: writing its bytes under another dtype gave files that read back wrong or not at all.
 */
export function entryOf<T extends { array: ArrayClass }>(a: unknown, table: readonly T[], what: string): T {
  const hit = table.find((t) => a instanceof t.array);
  if (hit) return hit;
  throw new InvalidArgumentError(`${what} is ${arrayKind(a)}; expected one of ${table.map((t) => t.array.name).join(', ')}`);
}

/** The DType of a NumericArray; any other value is an InvalidArgumentError naming `what`. */
export function dtypeOf(a: NumericArray, what: string): DType {
  return entryOf(a, NUMERIC, what).dtype;
}

/**
 * Refuses the shapes the readers refuse (`what` names the array in the ShapeError): entries integers >= 0 whose
 * product is `length`, the data's element count.
 */
export function checkShape(shape: unknown, length: number, what: string): asserts shape is number[] {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    const shown = Array.isArray(shape) ? `[${shape.map(describeNumber).join(', ')}]` : arrayKind(shape);
    throw new ShapeError(`${what}: shape ${shown} must be a list of integers >= 0`);
  }
  const n = product(shape);
  if (n !== length) throw new ShapeError(`${what}: shape [${shape.join(', ')}] needs ${n} elements, data has ${length}`);
}

export function allocate(dtype: DType, count: number): NumericArray {
  switch (dtype) {
    case 'float32': return new Float32Array(count);
    case 'float64': return new Float64Array(count);
    case 'int16': return new Int16Array(count);
    case 'int32': return new Int32Array(count);
    case 'uint8': return new Uint8Array(count);
  }
}

/** A byte view over a typed array's own memory (no copy). */
export function bytesOf(a: ArrayBufferView): Uint8Array {
  // An empty array may sit on a detached buffer (e.g. a native result with no rows): it has no bytes to view.
  if (a.byteLength === 0) return new Uint8Array(0);
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

export function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
