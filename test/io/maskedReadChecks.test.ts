/** The masked readers (NIfTI, HDF5) check their divisor the same way (HDF5 took 0 and NaN and gave Infinity/NaN). */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { InvalidArgumentError } from '../../ts/errors.js';
import { readHdf5Masked, writeHdf5 } from '../../ts/io/hdf5.js';
import { readNifti, readNiftiMasked, writeNifti } from '../../ts/io/nifti.js';
import { maskFromVolume } from '../../ts/io/voxelMask.js';

const dir = mkdtempSync(join(tmpdir(), 'bl-maskread-'));
const nii = join(dir, 'v.nii.gz');
const h5 = join(dir, 'b.h5');
// A 4×3×2 grid, 3 volumes; value = flat index + 1 + 100·volume in both files.
const all = maskFromVolume(new Float32Array(24).fill(1), [4, 3, 2], (v) => v > 0, 'all');

beforeAll(async () => {
  const data = Int16Array.from({ length: 72 }, (_, i) => (i % 24) + 1 + 100 * Math.floor(i / 24));
  await writeNifti(nii, { dims: [4, 3, 2, 3], datatype: 'int16' }, data);
  await writeHdf5(h5, [{ name: 'betas', data, shape: [3, 2, 3, 4] }]);
});

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a failure');
}

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
