import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

import { afterAll, describe, expect, it } from 'vitest';

import { FormatError, ShapeError } from '../../ts/errors.js';
import { BoolArray, decodeNpy, FLOAT_DTYPES, readIntVectorNpy, readMatrixNpy, readNpy, readNpyHeader, writeNpy } from '../../ts/io/npy.js';
import { scanNpyNonFinite } from '../../ts/io/npyScan.js';
import { readSafetensors, writeSafetensors } from '../../ts/io/safetensors.js';
import { commandOutput } from '../helpers/nodeChild.js';

const dir = mkdtempSync(path.join(tmpdir(), 'bl-npy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string) => path.join(dir, name);
const PY = '/usr/bin/python3';
const hasNumpy = (() => {
  try {
    execFileSync(PY, ['-c', 'import numpy'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('NPY', () => {
  it.each([
    ['float32', Float32Array.from([1.5, -2, 3e-8, 4, 5, 6])],
    ['float64', Float64Array.from([1.5, -2, 3e-300, 4, 5, 6])],
    ['int16', Int16Array.from([1, -2, 32767, -32768, 5, 6])],
    ['int32', Int32Array.from([1, -2, 2147483647, -2147483648, 5, 6])],
  ])('%s round trip is exact', async (dtype, data) => {
    await writeNpy(file(`${dtype}.npy`), data, [2, 3]);
    const back = await readNpy(file(`${dtype}.npy`));
    expect(back.dtype).toBe(dtype);
    expect(back.shape).toEqual([2, 3]);
    expect(Array.from(back.data as ArrayLike<number>)).toEqual(Array.from(data));
    const head = await readNpyHeader(file(`${dtype}.npy`));
    expect(head.dataOffset % 64).toBe(0);
  });

  it.skipIf(!hasNumpy)('files written by numpy read back exactly, and numpy reads ours', async () => {
    await commandOutput(PY, ['-c', `import numpy as np; np.save('${file('np.npy')}', np.arange(12, dtype=np.float32).reshape(3, 4) / 7); np.save('${file('np1.npy')}', np.arange(5, dtype=np.int32))`]);
    const m = await readMatrixNpy(file('np.npy'), 'X');
    expect([m.rows, m.cols]).toEqual([3, 4]);
    expect(m.data[5]).toBe(Math.fround(5 / 7));
    expect(Array.from(await readIntVectorNpy(file('np1.npy'), 'groups'))).toEqual([0, 1, 2, 3, 4]);
    await writeNpy(file('ours.npy'), Float32Array.from([1, 2, 3, 4, 5, 6]), [3, 2]);
    const out = (await commandOutput(PY, ['-c', `import numpy as np; a = np.load('${file('ours.npy')}'); print(a.dtype, a.shape, a[2, 1])`])).trim();
    expect(out).toBe('float32 (3, 2) 6.0');
  });

  it('bool arrays keep their dtype through read and write (a BoolArray is written |b1, a Uint8Array |u1)', async () => {
    const bits = BoolArray.from([1, 0, 0, 1, 1, 0]);
    await writeNpy(file('b.npy'), bits, [2, 3]);
    const back = await readNpy(file('b.npy'));
    expect([back.dtype, back.data instanceof BoolArray, Array.from(back.data as Uint8Array)]).toEqual(['bool', true, [1, 0, 0, 1, 1, 0]]);
    await writeNpy(file('b2.npy'), back.data, back.shape);
    expect(readFileSync(file('b2.npy')).toString('latin1', 10, 60)).toContain("'descr': '|b1'");
    expect((await readNpy(file('b2.npy'))).dtype).toBe('bool');
    await writeNpy(file('u8.npy'), Uint8Array.from([1, 0, 2]), [3]);
    expect((await readNpy(file('u8.npy'))).dtype).toBe('uint8');
    // a BoolArray holding other bytes would be a file readNpy refuses: refused here
    await expect(writeNpy(file('b3.npy'), BoolArray.from([0, 2]), [2])).rejects.toThrow(`${file('b3.npy')}: boolean element 1 holds 2, expected 0 or 1`);
    if (hasNumpy) {
      await commandOutput(PY, ['-c', `import numpy as np; np.save('${file('npb.npy')}', np.array([[True, False], [False, True]]))`]);
      const a = await readNpy(file('npb.npy'));
      await writeNpy(file('npb2.npy'), a.data, a.shape);
      const out = (await commandOutput(PY, ['-c', `import numpy as np; a = np.load('${file('npb2.npy')}'); print(a.dtype, a.shape, a.tolist())`])).trim();
      expect(out).toBe('bool (2, 2) [[True, False], [False, True]]');
    }
  });

  it.skipIf(!hasNumpy)('Fortran-ordered arrays numpy writes (np.save(p, X.T)) read as numpy reads them, in C order, every dtype and rank', async () => {
    const cases: [string, string][] = [
      ['f2d', 'np.arange(12, dtype=np.float32).reshape(4, 3).T'],
      ['f3d', '(np.arange(60, dtype=np.float64).reshape(5, 4, 3) / 7).T'],
      ['be', 'np.asfortranarray(np.arange(-10, 14, dtype=">i2").reshape(4, 6))'],
      ['i8', 'np.asfortranarray(np.arange(24, dtype=np.int64).reshape(2, 3, 4) * 2**40)'],
      ['bool', 'np.asfortranarray(np.arange(12).reshape(3, 4) % 3 == 0)'],
      ['unit', 'np.asfortranarray(np.arange(5, dtype=np.float32).reshape(1, 5, 1))'],
    ];
    const script = cases.map(([n, e]) => `a = ${e}; assert a.flags.f_contiguous; np.save('${file(`${n}.npy`)}', a); print('${n}', a.shape, a.ravel(order='C').tolist())`).join('\n');
    const lines = (await commandOutput(PY, ['-c', `import numpy as np\n${script}`])).trim().split('\n');
    for (const [n] of cases) {
      const line = lines.find((l) => l.startsWith(`${n} `))!;
      const want = JSON.parse(line.slice(line.indexOf('[')).replace(/True/g, '1').replace(/False/g, '0')) as number[];
      const a = await readNpy(file(`${n}.npy`));
      expect(a.shape.join(',')).toBe(line.slice(n.length + 2, line.indexOf(')')).replace(/ /g, '').replace(/,$/, ''));
      expect(Array.from(a.data as ArrayLike<number | bigint>, Number)).toEqual(want);
    }
    // the matrix readers too, float64 converted
    const m = await readMatrixNpy(file('f2d.npy'), 'X');
    expect([m.rows, m.cols, Array.from(m.data)]).toEqual([3, 4, [0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11]]);
  });

  it('a 1-D array is one column where the caller says so (a y, as scikit-learn takes it), and refused otherwise', async () => {
    await writeNpy(file('y1.npy'), Float64Array.from([1, 2, 3]), [3]);
    const y = await readMatrixNpy(file('y1.npy'), 'Y', { vector: 'column' });
    expect([y.rows, y.cols, Array.from(y.data)]).toEqual([3, 1, [1, 2, 3]]);
    await expect(readMatrixNpy(file('y1.npy'), 'X')).rejects.toThrow(`X (${file('y1.npy')}): expected a 2-D array (samples × columns), got shape (3)`);
    await writeNpy(file('y3.npy'), new Float32Array(8), [2, 2, 2]);
    await expect(readMatrixNpy(file('y3.npy'), 'Y', { vector: 'column' })).rejects.toThrow(
      `Y (${file('y3.npy')}): expected a 2-D array (samples × columns) or a 1-D array (samples: one column), got shape (2, 2, 2)`,
    );
  });

  it('a truncated file is an error naming the expected size', async () => {
    await writeNpy(file('t.npy'), new Float32Array(100), [10, 10]);
    const raw = readFileSync(file('t.npy'));
    writeFileSync(file('t.npy'), raw.subarray(0, raw.length - 17));
    await expect(readNpy(file('t.npy'))).rejects.toThrow(FormatError);
    await expect(readNpy(file('t.npy'))).rejects.toThrow(/truncated .* needs 400 data bytes/);
  });

  it('refuses non-float data for a matrix, unknown dtypes, bad magic and wrong rank; reads big-endian and Fortran order', async () => {
    await writeNpy(file('i.npy'), new Int32Array(6), [2, 3]);
    await expect(readMatrixNpy(file('i.npy'), 'X')).rejects.toThrow(/X .* expected float32 or float64 data, got int32/);
    const header = (descr: string, fortran = 'False') => {
      let dict = `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': (2, 3), }`;
      dict = dict.padEnd(64 - 10 - 1, ' ') + '\n';
      const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, dict.length, 0]);
      return Buffer.concat([pre, Buffer.from(dict, 'latin1'), Buffer.alloc(24)]);
    };
    const be = header('>f4');
    be.writeFloatBE(1.5, be.length - 24);
    writeFileSync(file('be.npy'), be);
    expect(Array.from((await readNpy(file('be.npy'))).data as ArrayLike<number>)).toEqual([1.5, 0, 0, 0, 0, 0]);
    writeFileSync(file('c8.npy'), Buffer.concat([header('<c8'), Buffer.alloc(24)]));
    await expect(readNpy(file('c8.npy'))).rejects.toThrow(/dtype '<c8' is not read/);
    // column-major: a[0, 0], a[1, 0], a[0, 1], … in the file; C order (row-major) once read
    const f = header('<f4', 'True');
    [1, 2, 3, 4, 5, 6].forEach((v, i) => f.writeFloatLE(v, f.length - 24 + 4 * i));
    writeFileSync(file('f.npy'), f);
    expect(Array.from((await readNpy(file('f.npy'))).data as Float32Array)).toEqual([1, 3, 5, 2, 4, 6]);
    expect(decodeNpy(f, 'body').data).toEqual(Float32Array.from([1, 3, 5, 2, 4, 6]));
    // the scan of a feature file names its first bad element in C order, as the array is read: [0, 2] before [1, 0]
    f.writeFloatLE(NaN, f.length - 24 + 4 * 1); // a[1, 0]
    f.writeFloatLE(Infinity, f.length - 24 + 4 * 4); // a[0, 2]
    writeFileSync(file('fbad.npy'), f);
    expect(await scanNpyNonFinite(file('fbad.npy'), await readNpyHeader(file('fbad.npy')))).toEqual({ index: 2, value: Infinity, count: 2, beyondFloat32: false });
    writeFileSync(file('bad.npy'), Buffer.from('not an npy file at all'));
    await expect(readNpy(file('bad.npy'))).rejects.toThrow(/not a .npy file/);
    await writeNpy(file('v.npy'), new Float32Array(4), [4]);
    await expect(readMatrixNpy(file('v.npy'), 'Y')).rejects.toThrow(ShapeError);
    await expect(writeNpy(file('x.npy'), new Float32Array(5), [2, 3])).rejects.toThrow(/needs 6 elements/);
  });

  it('a reader that takes only some dtypes names them, for a dtype not read at all (float16) as for one it reads (int32)', async () => {
    const npy = (descr: string, bytes: number) => {
      let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (2, 3), }`;
      dict = dict.padEnd(64 - 10 - 1, ' ') + '\n';
      return Buffer.concat([Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, dict.length, 0]), Buffer.from(dict, 'latin1'), Buffer.alloc(6 * bytes)]);
    };
    writeFileSync(file('h.npy'), npy('<f2', 2));
    await expect(readMatrixNpy(file('h.npy'), 'X')).rejects.toThrow(/^X \(.*h\.npy\): expected float32 or float64 data, got float16 \('<f2'\)$/);
    await expect(readMatrixNpy(file('i.npy'), 'X')).rejects.toThrow(/^X \(.*i\.npy\): expected float32 or float64 data, got int32$/);
    expect(() => decodeNpy(npy('<f2', 2), 'body', { dtypes: FLOAT_DTYPES })).toThrow(/^body: expected float32 or float64 data, got float16 \('<f2'\)$/);
    expect(() => decodeNpy(npy('<i4', 4), 'body.z', { dtypes: ['float32'] })).toThrow(/^body\.z: expected float32 data, got int32$/);
    // a reader that takes every dtype read says what it reads
    expect(() => decodeNpy(npy('<f2', 2), 'body')).toThrow(/^body: dtype '<f2' is not read; expected a boolean, integer or float32\/float64 type/);
  });
});

describe('safetensors', () => {
  it('round trip is bit-exact with metadata', async () => {
    const a = Float32Array.from([1, NaN, -0, 3.25]);
    const b = Int32Array.from([7, 8, 9]);
    await writeSafetensors(file('s.safetensors'), { a: { data: a, shape: [2, 2] }, b: { data: b, shape: [3] } }, { note: 'hi' });
    const back = await readSafetensors(file('s.safetensors'));
    expect(back.metadata).toEqual({ note: 'hi' });
    expect(new Uint8Array(back.tensors.a.data.buffer)).toEqual(new Uint8Array(a.buffer));
    expect(back.tensors.b.shape).toEqual([3]);
    expect(Array.from(back.tensors.b.data)).toEqual([7, 8, 9]);
  });

  it('a truncated file is an error', async () => {
    await writeSafetensors(file('t.safetensors'), { a: { data: new Float32Array(64), shape: [8, 8] } });
    const raw = readFileSync(file('t.safetensors'));
    writeFileSync(file('t.safetensors'), raw.subarray(0, raw.length - 10));
    await expect(readSafetensors(file('t.safetensors'))).rejects.toThrow(/truncated/);
  });
});
