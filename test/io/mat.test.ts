import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { FormatError, LimitError, MissingFileError, ShapeError } from '../../ts/errors.js';
import { matNumeric, readMat, writeMat } from '../../ts/io/mat.js';
import { readNsdDesign } from '../../ts/nsd/expdesign.js';
import { hasPython, runPython } from './python.js';

const dir = mkdtempSync(join(tmpdir(), 'bl-mat-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('MAT v5 round trips', () => {
  it.each([false, true])('compress=%s', async (compress) => {
    const p = join(dir, `ours-${compress}.mat`);
    const subjectim = new Float64Array(8 * 5).map((_, i) => i + 1);
    await writeMat(
      p,
      {
        subjectim: { dims: [8, 5], data: subjectim },
        masterordering: { dims: [1, 6], data: Int32Array.from([3, 1, 2, 5, 4, 1]) },
        small: { dims: [1, 1], data: Uint8Array.from([7]) },
      },
      { compress },
    );
    const mat = await readMat(p);
    expect(mat.version).toBe('5');
    const s = matNumeric(mat, 'subjectim', [8, -1]);
    expect(s.className).toBe('double');
    expect(Array.from(s.data)).toEqual(Array.from(subjectim));
    expect(Array.from(matNumeric(mat, 'masterordering').data)).toEqual([3, 1, 2, 5, 4, 1]);
    expect(matNumeric(mat, 'small')).toMatchObject({ className: 'uint8', dims: [1, 1] });
    expect(() => matNumeric(mat, 'subjectim', [7, -1])).toThrow(ShapeError);
    expect(() => matNumeric(mat, 'sharedix')).toThrow(/no variable sharedix; found subjectim, masterordering, small/);
  });
});

describe('MAT bad input', () => {
  it('an element type we do not read', async () => {
    const p = join(dir, 'plain.mat');
    await writeMat(p, { x: { dims: [1, 2], data: Float64Array.from([1, 2]) } });
    const b = readFileSync(p);
    // The real part's tag follows the matrix tag, flags (16 B), dims (16 B) and the name (16 B).
    const realTag = 128 + 8 + 16 + 16 + 16;
    expect(b.readUInt32LE(realTag)).toBe(9);
    b.writeUInt32LE(16, realTag); // miUTF8
    writeFileSync(p, b);
    await expect(readMat(p)).rejects.toThrow(/plain\.mat: variable x uses MAT data element type miUTF8, which is not read/);
  });

  it('truncated, corrupt, missing and non-MAT files', async () => {
    const p = join(dir, 'z.mat');
    await writeMat(p, { x: { dims: [1, 500], data: new Float64Array(500).fill(2) } }, { compress: true });
    const b = readFileSync(p);
    writeFileSync(join(dir, 'trunc.mat'), b.subarray(0, b.length - 30));
    await expect(readMat(join(dir, 'trunc.mat'))).rejects.toThrow(/trunc\.mat: MAT element at byte 128 claims \d+ bytes/);
    b.fill(0x55, 140, 150);
    writeFileSync(join(dir, 'corrupt.mat'), b);
    await expect(readMat(join(dir, 'corrupt.mat'))).rejects.toThrow(/corrupt\.mat: corrupt compressed MAT element/);
    await expect(readMat(join(dir, 'none.mat'))).rejects.toThrow(MissingFileError);
    writeFileSync(join(dir, 'text.mat'), 'hello world'.repeat(20));
    await expect(readMat(join(dir, 'text.mat'))).rejects.toThrow(FormatError);
  });
});

describe.skipIf(!hasPython('scipy', 'numpy'))('MAT files from scipy.io.savemat', () => {
  it.each([false, true])('do_compression=%s', async (compress) => {
    const p = join(dir, `scipy-${compress}.mat`);
    await runPython(
      `import sys, numpy as np, scipy.io as sio
sio.savemat(sys.argv[1], {
  'masterordering': (np.arange(30) % 10 + 1).astype(np.float64).reshape(1, -1),
  'subjectim': np.arange(1, 8 * 12 + 1, dtype=np.int32).reshape(8, 12),
  'sharedix': np.arange(1, 5, dtype=np.uint16),
  'big': np.array([[2**40, -3]], dtype=np.int64),
  'huge': np.array([[1, 2**60]], dtype=np.int64),
  'flag': np.array([[True, False]]),
  'single': np.array([[0.5, -1.25]], dtype=np.float32),
  'label': 'hello',
  'info': {'a': 1, 'b': 'x'},
  'cells': np.array([1, 'two'], dtype=object),
}, do_compression=${compress ? 'True' : 'False'})`,
      p,
    );
    const mat = await readMat(p);
    const mo = matNumeric(mat, 'masterordering', [1, 30]);
    expect(mo.className).toBe('double');
    expect(Array.from(mo.data.subarray(0, 12))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 2]);
    const si = matNumeric(mat, 'subjectim', [8, 12]);
    expect(si.className).toBe('int32');
    // column-major: element (row 2, col 1) (0-based) is 2*12 + 1 + 1 in row-major numbering
    expect(si.data[1 * 8 + 2]).toBe(2 * 12 + 1 + 1);
    expect(matNumeric(mat, 'sharedix')).toMatchObject({ className: 'uint16', dims: [1, 4] });
    expect(Array.from(matNumeric(mat, 'big').data)).toEqual([2 ** 40, -3]);
    // float64 would round 2^60 + 0: the variable is left unread, the file is not refused
    expect(() => matNumeric(mat, 'huge')).toThrow(
      /variable huge \(MATLAB int64\) is not read: it holds the value 1152921504606846976 at index 1, beyond ±\(2\^53 − 1\)/,
    );
    expect(Array.from(matNumeric(mat, 'single').data)).toEqual([0.5, -1.25]);
    expect(Array.from(matNumeric(mat, 'flag').data)).toEqual([1, 0]);
    expect(() => matNumeric(mat, 'info')).toThrow(/variable info is a MATLAB struct, expected a numeric array/);
    expect(() => matNumeric(mat, 'cells')).toThrow(/MATLAB cell/);
    expect(() => matNumeric(mat, 'label')).toThrow(/MATLAB char/);
  });
});

describe.skipIf(!hasPython('h5py', 'numpy'))('MAT v7.3 (HDF5) files', () => {
  it('reads numeric variables with MATLAB dims restored', async () => {
    const p = join(dir, 'v73.mat');
    await runPython(
      `import sys, numpy as np, h5py
p = sys.argv[1]
with h5py.File(p, 'w', userblock_size=512) as f:
    d = f.create_dataset('subjectim', data=np.arange(1, 8 * 12 + 1, dtype=np.float64).reshape(8, 12).T)
    d.attrs['MATLAB_class'] = np.bytes_('double')
    e = f.create_dataset('sharedix', data=np.arange(1, 5, dtype=np.uint32).reshape(4, 1))
    e.attrs['MATLAB_class'] = np.bytes_('uint32')
    g = f.create_group('info'); g.attrs['MATLAB_class'] = np.bytes_('struct')
    g.create_dataset('a', data=np.ones((1, 1)))
hdr = b'MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 .'
with open(p, 'r+b') as fh:
    fh.write(hdr.ljust(116, b' ') + b'\\x00' * 8 + b'\\x00\\x02' + b'IM')`,
      p,
    );
    const mat = await readMat(p);
    expect(mat.version).toBe('7.3');
    const si = matNumeric(mat, 'subjectim', [8, 12]);
    expect(si.data[1 * 8 + 2]).toBe(2 * 12 + 1 + 1);
    expect(matNumeric(mat, 'sharedix', [1, 4]).className).toBe('uint32');
    expect([...mat.variables.keys()].sort()).toEqual(['sharedix', 'subjectim']);
  });
});

/** A v7.3 file whose extra variables (complex, int64, char, a big 3-D double) sit beside NSD's design variables. */
const MIXED_73 = `import sys, numpy as np, h5py
p = sys.argv[1]
def var(f, name, data, cls):
    d = f.create_dataset(name, data=data); d.attrs['MATLAB_class'] = np.bytes_(cls)
with h5py.File(p, 'w', userblock_size=512) as f:
    var(f, 'masterordering', np.array([[3.], [1.], [2.], [3.]]), 'double')
    var(f, 'subjectim', np.arange(1, 8 * 3 + 1, dtype=np.float64).reshape(3, 8), 'double')
    var(f, 'sharedix', np.array([[1.], [2.]]), 'double')
    ct = np.dtype([('real', '<f8'), ('imag', '<f8')])
    var(f, 'cpx', np.zeros((2, 1), ct), 'double')
    var(f, 'big64', np.array([[-2**53 + 1], [0], [2**53 - 1]], dtype=np.int64), 'int64')
    var(f, 'huge64', np.array([[5], [2**60]], dtype=np.int64), 'int64')
    var(f, 'name', np.array([[104], [105]], dtype=np.uint16), 'char')
    var(f, 'cube', np.arange(6 * 5 * 4, dtype=np.float64).reshape(6, 5, 4) * 0.5 - 7, 'double')
hdr = b'MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 .'
with open(p, 'r+b') as fh:
    fh.write(hdr.ljust(116, b' ') + b'\\x00' * 8 + b'\\x00\\x02' + b'IM')`;

describe.skipIf(!hasPython('h5py', 'numpy'))('MAT v7.3: a variable nobody asked for does not refuse the file (review s30-r2)', () => {
  const p = join(dir, 'mixed73.mat');
  afterEach(() => {
    delete process.env.BRAINLATENT_MAX_MAT_BYTES;
  });

  it('reads every readable variable, skips the rest with the reason, and reads int64 exactly', async () => {
    await runPython(MIXED_73, p);
    const mat = await readMat(p);
    expect(mat.variables.get('cpx')).toEqual({ name: 'cpx', className: 'complex double', skipped: true });
    expect(mat.variables.get('name')).toMatchObject({ className: 'char', skipped: true });
    const big = matNumeric(mat, 'big64', [1, 3]);
    expect(big.className).toBe('int64');
    expect(Array.from(big.data)).toEqual([-(2 ** 53) + 1, 0, 2 ** 53 - 1]);
    expect(() => matNumeric(mat, 'huge64')).toThrow(
      /mixed73\.mat: variable huge64 \(MATLAB int64\) is not read: dataset huge64 holds the value 1152921504606846976 at \[1, 0\], beyond ±\(2\^53 − 1\)/,
    );
    const cube = matNumeric(mat, 'cube', [4, 5, 6]);
    expect(cube.data[0]).toBe(-7);
    expect(cube.data[119]).toBe(119 * 0.5 - 7);
  });

  it('NSD design: only masterordering, subjectim and sharedix are read', async () => {
    await runPython(MIXED_73, p);
    const d = await readNsdDesign('/nonexistent', p);
    expect(Array.from(d.masterordering)).toEqual([3, 1, 2, 3]);
    expect([d.subjectimRows, d.subjectimCols]).toEqual([8, 3]);
    expect(Array.from(d.subjectim.subarray(0, 9))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(Array.from(d.sharedix)).toEqual([1, 2]);
  });

  it('a variable asked for that cannot be read is refused naming the file, the variable and why', async () => {
    await runPython(MIXED_73, p);
    const only = await readMat(p, { variables: ['subjectim'] });
    expect(only.variables.get('cube')).toMatchObject({ skipped: true, reason: 'not asked for (readMat read only subjectim)' });
    await expect(readMat(p, { variables: ['subjectim', 'huge64'] })).rejects.toThrow(
      /mixed73\.mat: dataset huge64 holds the value 1152921504606846976 at \[1, 0\], beyond ±\(2\^53 − 1\)/,
    );
    const cpx = await readMat(p, { variables: ['cpx'] });
    expect(() => matNumeric(cpx, 'cpx')).toThrow(/variable cpx is a MATLAB complex double, expected a numeric array/);
  });

  it('a variable past one slab is read in slabs; past BRAINLATENT_MAX_MAT_BYTES it is skipped, or refused when asked for', async () => {
    await runPython(MIXED_73, p);
    // 8 doubles a slab: one (5 × 4) plane of the (6, 5, 4) dataset takes 160 bytes, so slabs step along its 2nd axis
    const cube = matNumeric(await readMat(p, { variables: ['cube'], slabBytes: 64 }), 'cube', [4, 5, 6]);
    expect(Array.from(cube.data)).toEqual(Array.from({ length: 120 }, (_, i) => i * 0.5 - 7));
    process.env.BRAINLATENT_MAX_MAT_BYTES = '500';
    const mat = await readMat(p);
    expect(() => matNumeric(mat, 'cube')).toThrow(
      /variable cube \(MATLAB double\) is not read: variable cube \(4×5×6\) takes 960 bytes as float64, past the \d+-byte limit left \(raise it with BRAINLATENT_MAX_MAT_BYTES\)/,
    );
    await expect(readMat(p, { variables: ['cube'] })).rejects.toThrow(LimitError);
  });
});
