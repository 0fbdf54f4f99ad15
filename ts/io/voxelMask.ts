import { InvalidArgumentError, ShapeError } from '../errors.js';

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
  if (values.length < n) {
    throw new ShapeError(`${source}: volume has ${values.length} values, grid ${grid.join('×')} needs ${n}`);
  }
  let count = 0;
  for (let i = 0; i < n; i++) if (keep(values[i])) count++;
  if (count === 0) throw new InvalidArgumentError(`${source}: the mask has no voxel in the region`);
  const indices = new Int32Array(count);
  let k = 0;
  for (let i = 0; i < n; i++) if (keep(values[i])) indices[k++] = i;
  return { grid: [...grid], indices, source };
}

/** Voxels × 3 int32 (x, y, z) grid coordinates of each mask voxel, row-major. */
export function maskCoordinates(mask: VoxelMask): Int32Array {
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
