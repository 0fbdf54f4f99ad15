import { ShapeError } from './errors.js';

/** A row-major float32 matrix: element (i, j) is data[i * cols + j]. */
export interface Matrix {
  data: Float32Array;
  rows: number;
  cols: number;
}

export function matrix(data: Float32Array, rows: number, cols: number): Matrix {
  assertMatrix({ data, rows, cols }, 'matrix');
  return { data, rows, cols };
}

export function zeros(rows: number, cols: number): Matrix {
  return { data: new Float32Array(rows * cols), rows, cols };
}

/** Throws a ShapeError naming `what` unless m is a well-formed Matrix. */
export function assertMatrix(m: Matrix, what: string): void {
  if (!m || !(m.data instanceof Float32Array)) {
    throw new ShapeError(`${what}: expected {data: Float32Array, rows, cols}, got ${describe(m?.data)}`);
  }
  if (!Number.isInteger(m.rows) || !Number.isInteger(m.cols) || m.rows < 0 || m.cols < 0) {
    throw new ShapeError(`${what}: rows and cols must be non-negative integers, got ${m.rows}×${m.cols}`);
  }
  if (m.data.length !== m.rows * m.cols) {
    throw new ShapeError(
      `${what}: data has ${m.data.length} elements but the shape ${m.rows}×${m.cols} needs ${m.rows * m.cols}`,
    );
  }
}

function describe(x: unknown): string {
  if (x === undefined) return 'undefined';
  if (x === null) return 'null';
  return (x as object).constructor?.name ?? typeof x;
}

