/**
 * The masked readers (NIfTI, HDF5) check their divisor the same way (HDF5 took 0 and NaN and gave Infinity/NaN), and
 * every caller's mask is checked against its grid (an index outside it read NaN or 0, or was dropped from a map).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { InvalidArgumentError, ShapeError } from '../../ts/errors.js';
import { readHdf5Masked, writeHdf5 } from '../../ts/io/hdf5.js';
import { readNifti, readNiftiHeader, readNiftiMasked, writeNifti, writeNiftiMap } from '../../ts/io/nifti.js';
import { maskCoordinates, maskFromVolume, type VoxelMask } from '../../ts/io/voxelMask.js';
import { failure } from '../helpers/failure.js';

const dir = mkdtempSync(join(tmpdir(), 'bl-maskread-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const nii = join(dir, 'v.nii.gz');
const h5 = join(dir, 'b.h5');
// A 4×3×2 grid, 3 volumes; value = flat index + 1 + 100·volume in both files.
const all = maskFromVolume(new Float32Array(24).fill(1), [4, 3, 2], (v) => v > 0, 'all');

beforeAll(async () => {
  const data = Int16Array.from({ length: 72 }, (_, i) => (i % 24) + 1 + 100 * Math.floor(i / 24));
  await writeNifti(nii, { dims: [4, 3, 2, 3], datatype: 'int16' }, data);
  await writeHdf5(h5, [{ name: 'betas', data, shape: [3, 2, 3, 4] }]);
});


describe('divisor', () => {
  it('divides both readers\' values alike', async () => {
    const a = (await readNiftiMasked(nii, all, { divisor: 2 })).betas;
    const b = (await readHdf5Masked(h5, all, { divisor: 2 })).betas;
    expect([a.rows, a.cols, a.data[0], a.data[25]]).toEqual([3, 24, 0.5, 51]);
    expect(Array.from(b.data)).toEqual(Array.from(a.data));
  });

  it('0, NaN, Infinity and a string are refused by both, the value shown with its type', async () => {
    for (const [divisor, shown] of [[0, '0'], [NaN, 'NaN'], [-Infinity, '-Infinity'], ['2', 'string "2"'], [null, '1']] as const) {
      const reads: [string, () => Promise<unknown>][] = [
        [nii, () => readNiftiMasked(nii, all, { divisor: divisor as number })],
        [h5, () => readHdf5Masked(h5, all, { divisor: divisor as number })],
        [nii, () => readNifti(nii, { divisor: divisor as number })],
      ];
      for (const [path, read] of reads) {
        if (divisor === null) {
          await read(); // absent (null or undefined) is the default 1
          continue;
        }
        const e = await failure(read());
        expect(e).toBeInstanceOf(InvalidArgumentError);
        expect(e.message).toBe(`${path}: divisor must be a finite non-zero number, got ${shown}`);
      }
    }
  });
});

describe('caller-supplied masks', () => {
  const hand = (indices: number[], grid: unknown = [4, 3, 2]) => ({ grid, indices: Int32Array.from(indices), source: 'hand' }) as VoxelMask;
  const map = join(dir, 'map.nii.gz');
  /** The error of each function that takes a mask, checked to be a `cls`: its message after the path. */
  const uses = async (mask: VoxelMask, cls: typeof ShapeError | typeof InvalidArgumentError): Promise<string[]> => {
    const header = await readNiftiHeader(nii);
    const out: string[] = [];
    for (const [path, run] of [
      [nii, () => readNiftiMasked(nii, mask)],
      [h5, () => readHdf5Masked(h5, mask)],
      [map, () => writeNiftiMap(map, header, mask, new Float32Array(mask.indices.length))],
      ['maskCoordinates', async () => maskCoordinates(mask)],
    ] as const) {
      const e = await failure(run());
      expect(e).toBeInstanceOf(cls);
      expect(e.message.startsWith(`${path}: mask (hand): `)).toBe(true);
      out.push(e.message.slice(path.length + 2));
    }
    return out;
  };
  const four = (msg: string) => [msg, msg, msg, msg];

  it('an index outside the grid is a ShapeError naming the mask and the first such index, in every function that takes a mask', async () => {
    expect(await uses(hand([0, 23, 24, 30]), ShapeError)).toEqual(four('mask (hand): index 2 is voxel 24, outside the 4×3×2 grid (0..23)'));
    expect(await uses(hand([-1, 0]), ShapeError)).toEqual(four('mask (hand): index 0 is voxel -1, outside the 4×3×2 grid (0..23)'));
  });

  it('indices not strictly increasing, a bad grid, or indices that are not an Int32Array are InvalidArgumentErrors', async () => {
    expect(await uses(hand([5, 3]), InvalidArgumentError)).toEqual(four('mask (hand): indices must be strictly increasing; index 1 is voxel 3 after 5'));
    expect(await uses(hand([1, 1]), InvalidArgumentError)).toEqual(four('mask (hand): indices must be strictly increasing; index 1 is voxel 1 after 1'));
    expect(await uses(hand([0], [4, 3]), InvalidArgumentError)).toEqual(four('mask (hand): grid [4, 3] must be three positive integers (X, Y, Z)'));
    expect(await uses(hand([0], [4, 3, 0.5]), InvalidArgumentError)).toEqual(four('mask (hand): grid [4, 3, 0.5] must be three positive integers (X, Y, Z)'));
    const plain = { grid: [4, 3, 2], indices: [0, 1], source: 'hand' } as unknown as VoxelMask;
    expect(await uses(plain, InvalidArgumentError)).toEqual(four('mask (hand): indices are Array; expected an Int32Array'));
  });

  it('a valid hand-made mask reads the voxels it names', async () => {
    const m = hand([0, 5, 23]);
    expect(Array.from((await readNiftiMasked(nii, m)).betas.data)).toEqual([1, 6, 24, 101, 106, 124, 201, 206, 224]);
    expect(Array.from((await readHdf5Masked(h5, m)).betas.data)).toEqual([1, 6, 24, 101, 106, 124, 201, 206, 224]);
    expect(Array.from(maskCoordinates(m))).toEqual([0, 0, 0, 1, 1, 0, 3, 2, 1]);
  });
});
