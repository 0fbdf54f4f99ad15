import { assertNotDetached } from './detachedBuffer.js';
import { InvalidArgumentError, ShapeError } from './errors.js';

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

/**
 * Throws unless m is a well-formed Matrix, naming `what`: not a matrix, or its data not a Float32Array (a
 * Float64Array, an array), is an InvalidArgumentError (of the wrong type, as the options' and the model parts'
 * checks have it), or on a detached buffer (transferred away), is an InvalidArgumentError; rows, cols or a data
 * length that disagree is a ShapeError.
 */
export function assertMatrix(m: Matrix, what: string): void {
  if (m === null || typeof m !== 'object') {
    throw new InvalidArgumentError(`${what}: expected a matrix {data: Float32Array, rows, cols}, got ${describe(m)}`);
  }
  if (!(m.data instanceof Float32Array)) {
    const d: unknown = m.data;
    const got = Array.isArray(d) ? `an array of ${d.length} values` : ArrayBuffer.isView(d) && 'length' in d ? `a ${describe(d)} of ${d.length} values` : describe(d);
    throw new InvalidArgumentError(`${what}: data is ${got}, Float32Array expected (a matrix {data: Float32Array, rows, cols}; Float32Array.from converts)`);
  }
  assertNotDetached(m.data, what);
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

