/** Element types shared by the array file formats (NPY, safetensors). */
/** The typed arrays the array file formats read and write (see DType). */
export type NumericArray = Float32Array | Float64Array | Int16Array | Int32Array | Uint8Array;
/** The element type of a NumericArray, by NumPy's name. */
export type DType = 'float32' | 'float64' | 'int16' | 'int32' | 'uint8';

export const BYTES: Record<DType, number> = { float32: 4, float64: 8, int16: 2, int32: 4, uint8: 1 };

export function dtypeOf(a: NumericArray): DType {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof Int16Array) return 'int16';
  if (a instanceof Int32Array) return 'int32';
  return 'uint8';
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
export function bytesOf(a: NumericArray): Uint8Array {
  // An empty array may sit on a detached buffer (e.g. a native result with no rows): it has no bytes to view.
  if (a.byteLength === 0) return new Uint8Array(0);
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

export function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
