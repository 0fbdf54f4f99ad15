/** Feature spaces (bands) of a banded ridge fit: named matrices joined column-wise into one X. */
import { InvalidArgumentError, ShapeError } from '../errors.js';
import { assertMatrix, type Matrix } from '../matrix.js';

/** Feature spaces as named matrices (insertion order = band order) or an array (named band0, band1, …). */
export type FeatureSpaces = Record<string, Matrix> | Matrix[];

/** Joins feature spaces column-wise into one samples × features matrix (bands = consecutive column blocks). */
export function concatSpaces(spaces: FeatureSpaces, what: string): { names: string[]; x: Matrix; sizes: number[] } {
  const entries: [string, Matrix][] = Array.isArray(spaces) ? spaces.map((m, i) => [`band${i}`, m]) : Object.entries(spaces);
  if (entries.length === 0) throw new InvalidArgumentError(`${what}: need at least one feature space`);
  const rows = entries[0][1]?.rows;
  for (const [name, m] of entries) {
    assertMatrix(m, `${what}: feature space '${name}'`);
    if (m.cols === 0) throw new ShapeError(`${what}: feature space '${name}' has no features (${m.rows}×0)`);
    if (m.rows !== rows) {
      throw new ShapeError(`${what}: feature space '${name}' has ${m.rows} samples but '${entries[0][0]}' has ${rows}; every space needs one row per sample`);
    }
  }
  const sizes = entries.map(([, m]) => m.cols);
  const p = sizes.reduce((a, b) => a + b, 0);
  if (entries.length === 1) return { names: [entries[0][0]], x: entries[0][1], sizes };
  const data = new Float32Array(rows * p);
  for (let i = 0; i < rows; i++) {
    let off = i * p;
    for (const [, m] of entries) {
      data.set(m.data.subarray(i * m.cols, (i + 1) * m.cols), off);
      off += m.cols;
    }
  }
  return { names: entries.map(([n]) => n), x: { data, rows, cols: p }, sizes };
}
