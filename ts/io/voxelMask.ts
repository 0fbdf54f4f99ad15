import { InvalidArgumentError, ShapeError } from '../errors.js';
import { describeNumber } from '../ridge/alphas.js';
import { arrayKind } from './typedArrays.js';

/** A 3-D grid size (X, Y, Z), x fastest in memory as in NIfTI. */
export type Grid = [number, number, number];

/**
 * A set of voxels on a grid: flat NIfTI-order indices (x + X·(y + Y·z)), strictly increasing, so that
 * extraction reads each volume front to back.
 */
export interface VoxelMask {
  grid: Grid;
  indices: Int32Array;
  /** Where the mask came from (file and region), for error messages. */
  source: string;
}

/** Mask of the voxels whose value satisfies `keep`; an empty result is an error naming the source. */
export function maskFromVolume(
  values: ArrayLike<number>,
  grid: Grid,
  keep: (v: number) => boolean,
  source: string,
): VoxelMask {
  const n = grid[0] * grid[1] * grid[2];
  if (values.length !== n) {
    // more than the grid holds is several volumes, of which one alone was taken: no mask either
    const what = values.length > n && values.length % n === 0 ? ` (${values.length / n} volumes; a mask is one)` : '';
    throw new ShapeError(`${source}: volume has ${values.length} values, grid ${grid.join('×')} needs ${n}${what}`);
  }
  let count = 0;
  for (let i = 0; i < n; i++) if (keep(values[i])) count++;
  if (count === 0) throw new InvalidArgumentError(`${source}: the mask has no voxel in the region`);
  const indices = new Int32Array(count);
  let k = 0;
  for (let i = 0; i < n; i++) if (keep(values[i])) indices[k++] = i;
  return { grid: [...grid], indices, source };
}

/**
 * Checks a caller's mask where it enters (readNiftiMasked, readHdf5Masked, writeNiftiMap, maskCoordinates): a grid
 * of three positive integers, and indices an Int32Array strictly increasing within 0..X·Y·Z-1; an index outside the
 * grid read NaN or 0, or was dropped from a map. One pass over the indices, nothing copied; `what` names the caller.
 */
export function assertVoxelMask(mask: VoxelMask, what: string): void {
  if (mask === null || typeof mask !== 'object') throw new InvalidArgumentError(`${what}: expected a mask {grid, indices, source}, got ${arrayKind(mask)}`);
  const label = `${what}: mask (${String(mask.source)})`;
  const g: unknown = mask.grid;
  if (!Array.isArray(g) || g.length !== 3 || !g.every((d) => Number.isSafeInteger(d) && d > 0)) {
    const shown = Array.isArray(g) ? `[${g.map(describeNumber).join(', ')}]` : arrayKind(g);
    throw new InvalidArgumentError(`${label}: grid ${shown} must be three positive integers (X, Y, Z)`);
  }
  const idx: unknown = mask.indices;
  if (!(idx instanceof Int32Array)) throw new InvalidArgumentError(`${label}: indices are ${arrayKind(idx)}; expected an Int32Array`);
  const n = g[0] * g[1] * g[2];
  let prev = -1;
  for (let j = 0; j < idx.length; j++) {
    const v = idx[j];
    if (v > prev && v < n) {
      prev = v;
      continue;
    }
    if (v < 0 || v >= n) throw new ShapeError(`${label}: index ${j} is voxel ${v}, outside the ${g.join('×')} grid (0..${n - 1})`);
    throw new InvalidArgumentError(`${label}: indices must be strictly increasing; index ${j} is voxel ${v} after ${prev}`);
  }
}

/** Voxels × 3 int32 (x, y, z) grid coordinates of each mask voxel, row-major. */
export function maskCoordinates(mask: VoxelMask): Int32Array {
  assertVoxelMask(mask, 'maskCoordinates');
  const [X, Y] = mask.grid;
  const out = new Int32Array(mask.indices.length * 3);
  for (let j = 0; j < mask.indices.length; j++) {
    const i = mask.indices[j];
    out[3 * j] = i % X;
    out[3 * j + 1] = Math.floor(i / X) % Y;
    out[3 * j + 2] = Math.floor(i / (X * Y));
  }
  return out;
}

/** Throws a ShapeError naming both files unless the data grid equals the mask grid. */
export function assertSameGrid(dataGrid: readonly number[], mask: VoxelMask, dataSource: string): void {
  const same = dataGrid.length >= 3 && dataGrid[0] === mask.grid[0] && dataGrid[1] === mask.grid[1] && dataGrid[2] === mask.grid[2];
  if (!same) {
    throw new ShapeError(
      `${dataSource}: grid ${dataGrid.slice(0, 3).join('×')} differs from the mask's grid ${mask.grid.join('×')} (${mask.source})`,
    );
  }
}
