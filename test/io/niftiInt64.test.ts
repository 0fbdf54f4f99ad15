/** NIfTI int64/uint64 (datatype 1024/1280, nibabel < 4's default for np.int64 masks): read exactly, refused beyond ±(2^53 − 1). */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormatError, InvalidArgumentError } from '../../ts/errors.js';
import { readNifti, readNiftiMasked, writeNifti } from '../../ts/io/nifti.js';
import { maskFromVolume, type Grid } from '../../ts/io/voxelMask.js';
import { loadRegionMask } from '../../ts/nsd/roi.js';
import { roiPath } from '../../ts/nsd/paths.js';
import { hasPython, runPython } from './python.js';

const dir = mkdtempSync(join(tmpdir(), 'bl-nifti64-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const grid: Grid = [6, 5, 4];
const nsdRoot = join(dir, 'nsd');

// Every file is written by nibabel with an explicit int64/uint64 datatype and either byte order; beside each, its
// values as nibabel reads them (get_fdata, scaling applied) cast to float32 in file order, and its datatype code.
const script = `
import sys, os, numpy as np, nibabel as nib
out, roi = sys.argv[1], sys.argv[2]
aff = np.diag([1.8, 1.8, 1.8, 1.0])
rng = np.random.default_rng(3)
big = 2**53 - 1

def save(name, arr, dtype, endian, slope=None, path=None):
    hdr = nib.Nifti1Header(endianness=endian)
    hdr.set_data_dtype(np.dtype(dtype).newbyteorder(endian))
    img = nib.Nifti1Image(arr, aff, hdr)
    if slope is not None:
        img.header.set_slope_inter(*slope)
    p = path or os.path.join(out, name)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    nib.save(img, p)
    back = nib.load(p)
    # nibabel's values, float32, i fastest as the file stores them
    back.get_fdata().astype(np.float32).ravel(order='F').tofile(os.path.join(out, name + '.f32'))
    print(name, int(back.header['datatype']), 'BE' if back.header.endianness == '>' else 'LE')

# 4-D volumes: small labels, values past float32's 2^24, and the largest exact ones
vol = rng.integers(-1, 8, size=(6, 5, 4, 3)).astype(np.int64)
vol[0, 0, 0, 0], vol[1, 0, 0, 0], vol[2, 0, 0, 1], vol[3, 4, 3, 2] = big, -big, 2**40 + 3, 16777217
save('i64_le.nii.gz', vol, '<i8', '<')
save('i64_be.nii', vol, '>i8', '>')
uvol = np.abs(vol).astype(np.uint64)
save('u64_le.nii', uvol, '<u8', '<')
save('u64_be.nii.gz', uvol, '>u8', '>', slope=(0.5, 2.0))
# an NSD-style streams atlas: -1 outside the brain, 0 unlabelled, labels 1..7
labels = rng.integers(-1, 8, size=(6, 5, 4)).astype(np.int64)
save('streams', labels, '<i8', '<', path=roi)
# beyond 2^53 - 1: refused, the voxel named
far = np.zeros((6, 5, 4, 3), np.uint64); far[2, 1, 0, 1] = 2**60
save('u64_far.nii.gz', far, '<u8', '<')
neg = np.zeros((6, 5, 4), np.int64); neg[1, 2, 3] = -2**60
save('i64_far_be.nii', neg, '>i8', '>')
edge = np.zeros((6, 5, 4), np.int64); edge[5, 4, 3] = 2**53
save('i64_edge.nii', edge, '<i8', '<')
`;

describe.skipIf(!hasPython('nibabel', 'numpy'))('NIfTI int64/uint64 files from nibabel', () => {
  let written = '';
  beforeAll(async () => {
    written = await runPython(script, dir, roiPath(nsdRoot, 1, 'streams'));
  }, 60_000);
  const nibabel = (name: string) => {
    const b = readFileSync(join(dir, `${name}.f32`)); // a small file's Buffer is a view into a shared pool
    return Array.from(new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));
  };
  const file = (name: string) => join(dir, name);

  it('nibabel wrote datatypes 1024 and 1280 in the byte order asked', () => {
    expect(written.trim().split('\n')).toEqual([
      'i64_le.nii.gz 1024 LE',
      'i64_be.nii 1024 BE',
      'u64_le.nii 1280 LE',
      'u64_be.nii.gz 1280 BE',
      'streams 1024 LE',
      'u64_far.nii.gz 1280 LE',
      'i64_far_be.nii 1024 BE',
      'i64_edge.nii 1024 LE',
    ]);
  });

  it('readNifti reads int64 and uint64, either byte order, .nii and .nii.gz, as nibabel does (scl_slope applied)', async () => {
    for (const [name, type] of [['i64_le.nii.gz', 'int64'], ['i64_be.nii', 'int64'], ['u64_le.nii', 'uint64'], ['u64_be.nii.gz', 'uint64']]) {
      const { header, data } = await readNifti(file(name));
      expect(header.datatype).toBe(type);
      expect(header.dims).toEqual([6, 5, 4, 3]);
      expect(Array.from(data)).toEqual(nibabel(name));
    }
    // the values that show it: ±(2^53 − 1) read (as float32, the nearest), 2^24 + 1 rounded as float32 rounds it
    const { data } = await readNifti(file('i64_be.nii'));
    expect([data[0], data[1], data[120 + 2], data[2 * 120 + 3 * 30 + 4 * 6 + 3]]).toEqual([2 ** 53, -(2 ** 53), 2 ** 40, 16777216]);
    // slope 0.5, intercept 2: |−(2^53 − 1)| ÷ 2 + 2
    expect((await readNifti(file('u64_be.nii.gz'))).data[1]).toBe(Math.fround((2 ** 53 - 1) * 0.5 + 2));
  });

  it('readNiftiMasked keeps the mask\'s voxels of int64 and uint64 volumes, as nibabel reads them', async () => {
    const mask = maskFromVolume(new Float32Array(120).map((_, i) => i % 4), grid, (v) => v === 1, 'every fourth voxel');
    for (const name of ['i64_le.nii.gz', 'i64_be.nii', 'u64_le.nii', 'u64_be.nii.gz']) {
      const { betas } = await readNiftiMasked(file(name), mask, { divisor: 2 });
      const all = nibabel(name);
      expect(betas.rows).toBe(3);
      expect(Array.from(betas.data)).toEqual(
        Array.from({ length: 3 * 30 }, (_, n) => Math.fround(all[Math.floor(n / 30) * 120 + mask.indices[n % 30]] / 2)),
      );
    }
  });

  it('an int64 NSD atlas is a region mask: its labels selected, as nibabel reads them', async () => {
    const labels = nibabel('streams');
    const expected = (keep: (v: number) => boolean) => labels.flatMap((v, i) => (keep(v) ? [i] : []));
    const ventral = await loadRegionMask(nsdRoot, 1, 'streams:ventral,lateral');
    expect(ventral.header.datatype).toBe('int64');
    expect(ventral.values).toEqual([5, 6]);
    expect(Array.from(ventral.mask.indices)).toEqual(expected((v) => v === 5 || v === 6));
    expect(Array.from((await loadRegionMask(nsdRoot, 1, roiPath(nsdRoot, 1, 'streams'))).mask.indices)).toEqual(expected((v) => v > 0));
  });

  it('a value beyond ±(2^53 − 1) is refused, naming the file and the voxel (i, j, k[, t]), whole and masked reads alike', async () => {
    const beyond = 'beyond ±(2^53 − 1), where float64 (which it is read as) stops holding integers exactly';
    const far = file('u64_far.nii.gz');
    const farMessage = `${far}: uint64 voxel (2, 1, 0, 1) holds the value 1152921504606846976, ${beyond}`;
    const e = await readNifti(far).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(FormatError);
    expect((e as FormatError).message).toBe(farMessage);
    expect((e as FormatError).path).toBe(far);
    // the voxel lies outside this mask: the file is refused all the same (it holds a value it cannot be read as)
    const one = maskFromVolume(new Float32Array(120).map((_, i) => (i === 0 ? 1 : 0)), grid, (v) => v > 0, 'voxel 0');
    await expect(readNiftiMasked(far, one)).rejects.toThrow(farMessage);
    const neg = file('i64_far_be.nii');
    await expect(readNifti(neg)).rejects.toThrow(`${neg}: int64 voxel (1, 2, 3) holds the value -1152921504606846976, ${beyond}`);
    // 2^53 itself: float64 holds it, but it is where integers stop being exact (2^53 + 1 reads as 2^53)
    const edge = file('i64_edge.nii');
    await expect(readNifti(edge)).rejects.toThrow(`${edge}: int64 voxel (5, 4, 3) holds the value 9007199254740992, ${beyond}`);
  });
});

describe('int64/uint64 are read, not written', () => {
  it('writeNifti refuses them, listing the types it writes', async () => {
    const p = join(dir, 'never.nii');
    for (const datatype of ['int64', 'uint64'] as const) {
      await expect(writeNifti(p, { dims: [1, 1, 1], datatype }, new Float64Array(1))).rejects.toThrow(
        new InvalidArgumentError(`${p}: datatype '${datatype}' is not written; expected one of uint8, int16, int32, float32, float64, int8, uint16, uint32`),
      );
    }
    expect(existsSync(p)).toBe(false);
  });
});
