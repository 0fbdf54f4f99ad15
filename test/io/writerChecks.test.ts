/**
 * The array writers (.npy, safetensors, MAT) write each array with its true dtype, and refuse what their own
 * readers would refuse (an Int8Array read back as uint8 [255, 2]; a Uint32Array .npy readNpy rejected).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { InvalidArgumentError, ShapeError } from '../../ts/errors.js';
import { readMat, writeMat } from '../../ts/io/mat.js';
import { decodeNpy, encodeNpy, readNpy, writeNpy, type NpyData } from '../../ts/io/npy.js';
import { readSafetensors, writeSafetensors, type SafetensorsTensor } from '../../ts/io/safetensors.js';
import { failure } from '../helpers/failure.js';

const dir = mkdtempSync(join(tmpdir(), 'bl-writecheck-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string) => join(dir, name);


/** The elements of any NpyData (numbers or bigints), for comparing. */
const values = (a: NpyData | number[]) => Array.from(a as ArrayLike<number | bigint>);

const NPY_TYPES = 'Float32Array, Float64Array, Int8Array, Int16Array, Int32Array, BigInt64Array, BoolArray, Uint8Array, Uint16Array, Uint32Array, BigUint64Array';

describe('writeNpy', () => {
  it('writes every typed array readNpy returns with its own dtype: read → write → read gives the same dtype and values', async () => {
    const cases: [NpyData, string][] = [
      [new Int8Array([-1, 2, -128]), 'int8'],
      [new Uint16Array([1, 65535, 2]), 'uint16'],
      [new Uint32Array([1, 4294967295, 2]), 'uint32'],
      [new BigInt64Array([-1n, 2n ** 62n, 3n]), 'int64'],
      [new BigUint64Array([1n, 2n ** 64n - 1n, 3n]), 'uint64'],
      [new Int16Array([-32768, 2, 3]), 'int16'],
      [new Int32Array([-1, 2, 3]), 'int32'],
      [new Uint8Array([0, 255, 3]), 'uint8'],
      [new Float32Array([1.5, -2, 3]), 'float32'],
      [new Float64Array([1e300, -2, 3]), 'float64'],
    ];
    for (const [data, dtype] of cases) {
      await writeNpy(file('a.npy'), data, [3]);
      const first = await readNpy(file('a.npy'));
      expect([first.dtype, first.data.constructor.name, values(first.data)]).toEqual([dtype, data.constructor.name, values(data)]);
      await writeNpy(file('b.npy'), first.data, first.shape);
      const second = await readNpy(file('b.npy'));
      expect([second.dtype, second.shape, values(second.data)]).toEqual([dtype, [3], values(data)]);
      const decoded = decodeNpy(encodeNpy(data, [3]), 'body');
      expect([decoded.dtype, values(decoded.data)]).toEqual([dtype, values(data)]);
    }
  });

  it('refuses anything else, naming the file and the accepted types, and writes no file', async () => {
    for (const [data, kind] of [[[1, 2], 'Array'], [new Uint8ClampedArray(2), 'Uint8ClampedArray'], [null, 'null']] as const) {
      const e = await failure(writeNpy(file('no.npy'), data as unknown as NpyData, [2]));
      expect(e).toBeInstanceOf(InvalidArgumentError);
      expect(e.message).toBe(`${file('no.npy')}: data is ${kind}; expected one of ${NPY_TYPES}`);
    }
    expect(existsSync(file('no.npy'))).toBe(false);
    const e = await failure(() => encodeNpy([1] as unknown as NpyData, [1]));
    expect(e).toBeInstanceOf(InvalidArgumentError);
    expect(e.message).toBe(`encodeNpy: data is Array; expected one of ${NPY_TYPES}`);
  });

  it('refuses shapes readNpy would: fractional, negative, too many dimensions, or not matching the data', async () => {
    const msg = async (shape: unknown, data: NpyData = new Float32Array(2)) => {
      const e = await failure(writeNpy(file('s.npy'), data, shape as number[]));
      expect(e).toBeInstanceOf(ShapeError);
      return e.message.slice(file('s.npy').length + 2);
    };
    expect(await msg([0.5, 4])).toBe('shape [0.5, 4] must be a list of integers >= 0');
    expect(await msg([-1, -2])).toBe('shape [-1, -2] must be a list of integers >= 0');
    expect(await msg(['2'])).toBe('shape [string "2"] must be a list of integers >= 0');
    expect(await msg([4])).toBe('shape [4] needs 4 elements, data has 2');
    expect(await msg(new Array(33).fill(1), new Float32Array(1))).toBe('shape has 33 dimensions; numpy allows at most 32');
    expect(existsSync(file('s.npy'))).toBe(false);
  });
});

describe('writeSafetensors', () => {
  const FIVE = 'Float32Array, Float64Array, Int16Array, Int32Array, Uint8Array';
  const msg = async (tensors: Record<string, unknown>, metadata?: unknown): Promise<[string, string]> => {
    const e = await failure(writeSafetensors(file('x.safetensors'), tensors as Record<string, SafetensorsTensor>, metadata as Record<string, string>));
    expect(e.message.startsWith(`${file('x.safetensors')}: `)).toBe(true);
    return [e.constructor.name, e.message.slice(file('x.safetensors').length + 2)];
  };

  it('writes the five dtypes it reads, and refuses other arrays (a Uint16Array gave an unreadable file, an Int8Array read back as uint8)', async () => {
    const tensors = {
      a: { data: new Float32Array([1.5, 2]), shape: [2] }, b: { data: new Float64Array([3, 4]), shape: [1, 2] },
      c: { data: new Int16Array([-5, 6]), shape: [2] }, d: { data: new Int32Array([-7, 8]), shape: [2, 1] },
      e: { data: new Uint8Array([255, 0]), shape: [2] }, f: { data: new Float32Array(0), shape: [0, 3] },
    };
    await writeSafetensors(file('ok.safetensors'), tensors, { k: 'v' });
    const back = await readSafetensors(file('ok.safetensors'));
    expect(Object.fromEntries(Object.entries(back.tensors).map(([k, t]) => [k, [t.dtype, t.shape, Array.from(t.data)]]))).toEqual({
      a: ['float32', [2], [1.5, 2]], b: ['float64', [1, 2], [3, 4]], c: ['int16', [2], [-5, 6]], d: ['int32', [2, 1], [-7, 8]],
      e: ['uint8', [2], [255, 0]], f: ['float32', [0, 3], []],
    });
    expect(back.metadata).toEqual({ k: 'v' });
    for (const data of [new Int8Array(2), new Uint16Array(2), new Uint32Array(2), new BigInt64Array(2), [1, 2]]) {
      expect(await msg({ x: { data, shape: [2] } })).toEqual(['InvalidArgumentError', `tensor 'x' data is ${data.constructor.name}; expected one of ${FIVE}`]);
    }
  });

  it('refuses shapes, metadata and tensor names readSafetensors would refuse', async () => {
    const x = (shape: unknown) => ({ x: { data: new Float32Array(2), shape } });
    expect(await msg(x([0.5, 4]))).toEqual(['ShapeError', "tensor 'x': shape [0.5, 4] must be a list of integers >= 0"]);
    expect(await msg(x([-1, -2]))).toEqual(['ShapeError', "tensor 'x': shape [-1, -2] must be a list of integers >= 0"]);
    expect(await msg(x([3]))).toEqual(['ShapeError', "tensor 'x': shape [3] needs 3 elements, data has 2"]);
    expect(await msg(x(undefined))).toEqual(['ShapeError', "tensor 'x': shape undefined must be a list of integers >= 0"]);
    expect(await msg({ __metadata__: { data: new Float32Array(2), shape: [2] } })).toEqual([
      'InvalidArgumentError', "no tensor may be named __metadata__ (the header's metadata key)",
    ]);
    expect(await msg(x([2]), { a: 1 })).toEqual(['InvalidArgumentError', "metadata 'a' is number; metadata values must be strings"]);
    expect(await msg(x([2]), ['a'])).toEqual(['InvalidArgumentError', 'metadata must be an object of strings, got Array']);
    expect(await msg({ x: null })).toEqual(['InvalidArgumentError', "tensor 'x' must be {data, shape}, got null"]);
    expect(existsSync(file('x.safetensors'))).toBe(false);
  });
});

describe('writeMat', () => {
  it('refuses dims readMat would (fewer than two, fractional, negative) and other array types, naming the variable', async () => {
    const msg = async (dims: unknown, data: unknown = new Float64Array(2)): Promise<[string, string]> => {
      const e = await failure(writeMat(file('x.mat'), { a: { dims: dims as number[], data: data as Float64Array } }));
      expect(e.message.startsWith(`${file('x.mat')}: `)).toBe(true);
      return [e.constructor.name, e.message.slice(file('x.mat').length + 2)];
    };
    const bad = (shown: string) => ['ShapeError', `a dims ${shown} must be at least two integers >= 0 (MATLAB dims, e.g. [1, n] for a row)`];
    expect(await msg([2])).toEqual(bad('[2]'));
    expect(await msg([0.5, 4])).toEqual(bad('[0.5, 4]'));
    expect(await msg([-1, -2])).toEqual(bad('[-1, -2]'));
    expect(await msg([2 ** 31, 0], new Float64Array(0))).toEqual(bad('[2147483648, 0]'));
    expect(await msg([1, 3])).toEqual(['ShapeError', 'a has 2 values, dims 1×3 need 3']);
    expect(await msg([1, 2], new BigInt64Array(2))).toEqual([
      'InvalidArgumentError', 'a data is BigInt64Array; expected one of Float64Array, Float32Array, Int32Array, Uint32Array, Int16Array, Uint16Array, Int8Array, Uint8Array',
    ]);
    expect(existsSync(file('x.mat'))).toBe(false);
    await writeMat(file('ok.mat'), { a: { dims: [1, 2, 1], data: new Int8Array([-1, 2]) } });
    const v = (await readMat(file('ok.mat'))).variables.get('a');
    expect(v && 'data' in v ? [v.className, v.dims, Array.from(v.data)] : v).toEqual(['int8', [1, 2, 1], [-1, 2]]);
  });
});
