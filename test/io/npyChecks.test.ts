/** The .npy reader checks every header field against the file before it allocates (issue #11's cases). */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { FormatError, LimitError, MissingFileError, NonFiniteError } from '../../ts/errors.js';
import { writeHdf5 } from '../../ts/io/hdf5.js';
import { readIntVectorNpy, readMatrixNpy, readNpy, readNpyHeader, writeNpy } from '../../ts/io/npy.js';
import { writeSafetensors } from '../../ts/io/safetensors.js';
import { hasPython, SYSTEM_PYTHON } from './python.js';
import { failure } from '../helpers/failure.js';
import { commandOutput } from '../helpers/nodeChild.js';

const dir = mkdtempSync(join(tmpdir(), 'bl-npycheck-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string) => join(dir, name);

/** A .npy of the given version with a raw header dictionary and data bytes. */
function npy(version: 1 | 2 | 3, dict: string, data: Buffer = Buffer.alloc(0), headerLen?: number): Buffer {
  const pre = version === 1 ? 10 : 12;
  const padded = (dict.padEnd(Math.ceil((pre + dict.length + 1) / 64) * 64 - pre - 1, ' ') + '\n');
  const head = Buffer.alloc(pre);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]).copy(head);
  if (version === 1) head.writeUInt16LE(headerLen ?? padded.length, 8);
  else head.writeUInt32LE(headerLen ?? padded.length, 8);
  return Buffer.concat([head, Buffer.from(padded, version === 3 ? 'utf8' : 'latin1'), data]);
}


describe('.npy headers are checked before anything is allocated', () => {
  it('a version 2 header length of 2³¹ or more is a FormatError naming the file (it aborted Node)', async () => {
    for (const len of [2 ** 31, 2 ** 32 - 1, 2 ** 31 + 12]) {
      writeFileSync(file('v2huge.npy'), npy(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", Buffer.alloc(8), len));
      const e = await failure(readNpy(file('v2huge.npy')));
      expect(e).toBeInstanceOf(FormatError);
      const size = readFileSync(file('v2huge.npy')).length;
      expect(e.message).toBe(`${file('v2huge.npy')}: header length ${len} runs past the end of the ${size}-byte file (truncated or corrupt)`);
      expect((e as FormatError).field).toBe('header_len');
    }
  });

  it('a huge shape in a small file is refused from the header, not by V8 after allocating', async () => {
    writeFileSync(file('huge.npy'), npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (30000, 30000), }", Buffer.alloc(16)));
    const e = await failure(readNpy(file('huge.npy')));
    expect(e).toBeInstanceOf(FormatError);
    expect(e.message).toBe(`${file('huge.npy')}: truncated .npy file: shape (30000, 30000) float32 needs 3600000000 data bytes, the file holds 16`);
    writeFileSync(file('over.npy'), npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999, 99999999999, 99999999999), }"));
    expect((await failure(readNpy(file('over.npy')))).message).toMatch(/more elements than can be counted exactly/);
  });

  it('trailing bytes after the data are refused', async () => {
    await writeNpy(file('t.npy'), Float32Array.from([1, 2, 3]), [3]);
    writeFileSync(file('t.npy'), Buffer.concat([readFileSync(file('t.npy')), Buffer.from('junk')]));
    expect((await failure(readNpy(file('t.npy')))).message).toBe(`${file('t.npy')}: 4 trailing bytes after the 12 data bytes of shape (3) float32`);
  });

  it('malformed dictionaries: missing or extra keys, structured dtypes, garbage', async () => {
    const cases: [string, RegExp][] = [
      ["{'descr': '<f4', 'shape': (2,), }", /has no 'fortran_order'/],
      ["{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", /unexpected key 'x'/],
      ["{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", /structured \(record\) dtypes are not read/],
      ["{'descr': '<f4', 'fortran_order': False, 'shape': (2,-1), }", /expected a non-negative integer/],
      ["{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", /duplicate key 'descr'/],
      ["{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }", /fortran_order must be True or False/],
      ['not a dict', /malformed .npy header/],
    ];
    for (const [dict, re] of cases) {
      writeFileSync(file('m.npy'), npy(1, dict, Buffer.alloc(8)));
      const e = await failure(readNpy(file('m.npy')));
      expect(e, dict).toBeInstanceOf(FormatError);
      expect(e.message, dict).toMatch(re);
      expect(e.message.startsWith(file('m.npy'))).toBe(true);
    }
  });

  it('versions 2 and 3 (UTF-8 header) read; a 1-D Fortran array is C order', async () => {
    const data = Buffer.from(Float32Array.from([1, 2]).buffer);
    writeFileSync(file('v2.npy'), npy(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", data));
    writeFileSync(file('v3.npy'), npy(3, "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", data));
    expect(Array.from((await readNpy(file('v2.npy'))).data as ArrayLike<number>)).toEqual([1, 2]);
    expect(Array.from((await readNpy(file('v3.npy'))).data as ArrayLike<number>)).toEqual([1, 2]);
    expect((await readNpyHeader(file('v3.npy'))).dataBytes).toBe(8);
  });

  it('a missing file is a MissingFileError naming it, not a raw ENOENT', async () => {
    const e = await failure(readNpy(file('nope.npy')));
    expect(e).toBeInstanceOf(MissingFileError);
    expect(e.message).toBe(`${file('nope.npy')}: file not found`);
    expect((await failure(readNpy(dir))).message).toMatch(/is a directory|not a regular file/);
  });
});

describe('groups and matrices', () => {
  it('groups of any integer dtype read as int32 where the values fit (numpy saves int64 by default)', async () => {
    const ids = [3, -1, 7, 2147483647];
    const clip = (lo: number, hi: number) => ids.map((v) => Math.max(lo, Math.min(hi, v)));
    const cases: [string, number, number[], (b: Buffer, i: number, v: number) => void][] = [
      ['<i8', 8, ids, (b, i, v) => b.writeBigInt64LE(BigInt(v), i * 8)],
      ['>i8', 8, ids, (b, i, v) => b.writeBigInt64BE(BigInt(v), i * 8)],
      ['<i2', 2, clip(-32768, 32767), (b, i, v) => b.writeInt16LE(v, i * 2)],
      ['|i1', 1, clip(-128, 127), (b, i, v) => b.writeInt8(v, i)],
      ['<u8', 8, clip(0, 2 ** 31 - 1), (b, i, v) => b.writeBigUInt64LE(BigInt(v), i * 8)],
      ['<u4', 4, clip(0, 2 ** 31 - 1), (b, i, v) => b.writeUInt32LE(v, i * 4)],
      ['<u2', 2, clip(0, 65535), (b, i, v) => b.writeUInt16LE(v, i * 2)],
    ];
    for (const [descr, size, values, put] of cases) {
      const data = Buffer.alloc(size * values.length);
      values.forEach((v, i) => put(data, i, v));
      writeFileSync(file('g.npy'), npy(1, `{'descr': '${descr}', 'fortran_order': False, 'shape': (4,), }`, data));
      expect(Array.from(await readIntVectorNpy(file('g.npy'), 'groups')), descr).toEqual(values);
    }
    const big = Buffer.alloc(16);
    big.writeBigInt64LE(1n, 0);
    big.writeBigInt64LE(2n ** 40n, 8);
    writeFileSync(file('big.npy'), npy(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", big));
    expect((await failure(readIntVectorNpy(file('big.npy'), 'groups'))).message).toBe(
      `groups (${file('big.npy')}): element 1 is 1099511627776, outside the int32 range the groups are held in`,
    );
  });

  it.skipIf(!hasPython('numpy'))('numpy default int64 groups from np.save', async () => {
    await commandOutput(SYSTEM_PYTHON, ['-c', `import numpy as np; np.save('${file('npg.npy')}', np.repeat(np.arange(5), 3))`]);
    expect((await readNpyHeader(file('npg.npy'))).dtype).toBe('int64');
    expect(Array.from(await readIntVectorNpy(file('npg.npy'), 'groups'))).toEqual([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]);
  });

  it('float64 matrices are converted (and say so); NaN, Inf and float32 overflow name the first element', async () => {
    await writeNpy(file('x64.npy'), Float64Array.from([1, 2, 3, 4, 5, 6]), [2, 3]);
    const m = await readMatrixNpy(file('x64.npy'), 'X');
    expect(m.sourceDtype).toBe('float64');
    expect(m.data).toBeInstanceOf(Float32Array);
    await writeNpy(file('nan.npy'), Float32Array.from([1, 2, 3, 4, NaN, 6]), [2, 3]);
    const e = await failure(readMatrixNpy(file('nan.npy'), 'X'));
    expect(e).toBeInstanceOf(NonFiniteError);
    expect(e.message).toBe(`X (${file('nan.npy')}): element [row 1, column 1] (flat index 4) is NaN; finite numbers are required`);
    await writeNpy(file('ovf.npy'), Float64Array.from([1, 1e300]), [1, 2]);
    expect((await failure(readMatrixNpy(file('ovf.npy'), 'Y'))).message).toBe(
      `Y (${file('ovf.npy')}): element [row 0, column 1] = 1e+300 is beyond float32's range (±3.4e38)`,
    );
    expect((await readMatrixNpy(file('nan.npy'), 'X', { finite: false })).rows).toBe(2);
  });

  it('a header over the size limit is a LimitError', async () => {
    const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (0,), }`.padEnd(2 ** 20 + 100, ' ');
    writeFileSync(file('bighead.npy'), npy(2, dict));
    expect(await failure(readNpy(file('bighead.npy')))).toBeInstanceOf(LimitError);
  });
});

describe('empty arrays', () => {
  it('an array with no rows is written even on a detached buffer (ridge predict on X with 0 rows) and reads back', async () => {
    const empty = new Float32Array(0);
    structuredClone(empty.buffer, { transfer: [empty.buffer] }); // what a native result with no rows can look like
    expect(() => new Uint8Array(empty.buffer)).toThrow(/detached/);
    await writeNpy(file('empty.npy'), empty, [0, 5]);
    const back = await readNpy(file('empty.npy'));
    expect(back.shape).toEqual([0, 5]);
    expect(back.data.length).toBe(0);
  });
});

describe('a .npz given for a .npy (review s30-r2)', () => {
  it('is named a zip archive, with what to do', async () => {
    // a zip's local-file magic, as np.savez writes it; an empty archive starts PK\x05\x06
    for (const [name, head] of [['a.npz', [0x50, 0x4b, 3, 4]], ['empty.npz', [0x50, 0x4b, 5, 6]]] as const) {
      const p = join(dir, name);
      writeFileSync(p, Buffer.concat([Buffer.from(head), Buffer.alloc(40)]));
      await expect(readNpy(p)).rejects.toThrow(`${p}: a .npz (zip) archive, not a .npy file: np.load it and np.save the array you need`);
    }
  });
});

describe('a file of another kind given for a .npy', () => {
  it('a model (safetensors), an HDF5 file, a NIfTI image are named as such; an unknown one as before', async () => {
    await writeSafetensors(file('m.safetensors'), { coef: { data: new Float32Array(6), shape: [2, 3] } }, { format: 'brainlatent.ridge' });
    await expect(readNpy(file('m.safetensors'))).rejects.toThrow(`${file('m.safetensors')}: a safetensors file (a brainlatent model?), not a .npy file (which starts with \\x93NUMPY)`);
    await writeHdf5(file('b.h5'), [{ name: 'x', data: new Float32Array(4), shape: [4] }]);
    await expect(readMatrixNpy(file('b.h5'), 'X')).rejects.toThrow(`${file('b.h5')}: an HDF5 file (.h5, .hdf5), not a .npy file (which starts with \\x93NUMPY)`);
    const nii = Buffer.alloc(352);
    nii.writeInt32LE(348, 0);
    writeFileSync(file('v.nii'), nii);
    await expect(readNpy(file('v.nii'))).rejects.toThrow(`${file('v.nii')}: a NIfTI image (.nii), not a .npy file (which starts with \\x93NUMPY)`);
    writeFileSync(file('t.txt'), 'x,y\n1,2\n');
    const e = await failure(readNpy(file('t.txt')));
    expect(e.message).toBe(`${file('t.txt')}: not a .npy file (it does not start with \\x93NUMPY)`);
    expect((e as FormatError).field).toBe('magic');
  });
});
