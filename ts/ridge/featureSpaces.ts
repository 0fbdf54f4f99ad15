/** Feature spaces (bands) of a banded ridge fit: named matrices joined column-wise into one X. */
import { allocFloat32 } from '../allocate.js';
import { InvalidArgumentError, ShapeError } from '../errors.js';
import { assertMatrix, type Matrix } from '../matrix.js';

/**
 * Feature spaces as named matrices or an array (named band0, band1, …). BandedRidgeCV.fit takes the bands in the
 * object's key order (Object.keys: insertion order, integer-like keys first) and records their names;
 * BandedRidgeModel.predict matches named spaces to those names, and takes an array by position.
 */
export type FeatureSpaces = Record<string, Matrix> | Matrix[];

/** Joins feature spaces column-wise into one samples × features matrix (bands = consecutive column blocks). */
export function concatSpaces(spaces: FeatureSpaces, what: string): { names: string[]; x: Matrix; sizes: number[] } {
  if (spaces === null || typeof spaces !== 'object') {
    throw new InvalidArgumentError(`${what}: spaces: expected an object of named matrices or an array of matrices, got ${spaces === null ? 'null' : typeof spaces}`);
  }
  return concatEntries(Array.isArray(spaces) ? spaces.map((m, i) => [`band${i}`, m]) : Object.entries(spaces), what);
}

/** concatSpaces for spaces already in band order, as [name, matrix] pairs (the name is used in errors). */
export function concatEntries(entries: [string, Matrix][], what: string): { names: string[]; x: Matrix; sizes: number[] } {
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
  const data = allocFloat32(rows * p, `${what}: the feature spaces side by side (${rows} samples × ${p} features)`);
  for (let i = 0; i < rows; i++) {
    let off = i * p;
    for (const [, m] of entries) {
      data.set(m.data.subarray(i * m.cols, (i + 1) * m.cols), off);
      off += m.cols;
    }
  }
  return { names: entries.map(([n]) => n), x: { data, rows, cols: p }, sizes };
}
