/** safetensors: the header must describe the file exactly before anything is read (issue #11). */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { FormatError, MissingFileError } from '../../ts/errors.js';
import { readSafetensors, writeSafetensors } from '../../ts/io/safetensors.js';

const dir = mkdtempSync(join(tmpdir(), 'bl-stcheck-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string) => join(dir, name);

/** A safetensors file from a header object and raw data bytes. */
function st(header: unknown, data: Buffer, lengthOverride?: bigint): Buffer {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const pre = Buffer.alloc(8);
  pre.writeBigUInt64LE(lengthOverride ?? BigInt(json.length));
  return Buffer.concat([pre, json, data]);
}

async function message(bytes: Buffer): Promise<string> {
  writeFileSync(file('x.safetensors'), bytes);
  try {
    await readSafetensors(file('x.safetensors'));
  } catch (e) {
    expect(e).toBeInstanceOf(FormatError);
    expect((e as Error).message.startsWith(file('x.safetensors'))).toBe(true);
    return (e as Error).message.slice(file('x.safetensors').length + 2);
  }
  throw new Error('expected a FormatError');
}

const f32 = (n: number, at = 0) => ({ dtype: 'F32', shape: [n], data_offsets: [at, at + 4 * n] });

describe('safetensors header checks', () => {
  it('trailing bytes after the last tensor are refused (they were accepted)', async () => {
    await writeSafetensors(file('ok.safetensors'), { a: { data: new Float32Array(4), shape: [4] } });
    const good = readFileSync(file('ok.safetensors'));
    expect(await message(Buffer.concat([good, Buffer.from('garbage')]))).toBe('7 trailing bytes after the last tensor (the header covers 16 of 23 data bytes)');
  });

  it('overlapping tensors, gaps, and ranges past the end are refused, naming the tensors', async () => {
    expect(await message(st({ a: f32(4), b: f32(4, 8) }, Buffer.alloc(24)))).toBe("tensor 'b' [8, 24) overlaps tensor 'a' [0, 16)");
    expect(await message(st({ a: f32(2), b: f32(2, 12) }, Buffer.alloc(20)))).toBe("bytes [8, 12) before tensor 'b' belong to no tensor");
    expect(await message(st({ a: f32(4) }, Buffer.alloc(10)))).toBe("truncated file: tensor 'a' ends at data byte 16, the file holds 10 data bytes");
    expect(await message(st({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 16] } }, Buffer.alloc(16)))).toBe(
      "tensor 'a' (F32 [3]) needs 12 bytes, its data_offsets [0, 16) span 16",
    );
  });

  it('header length, JSON, dtype, shape, offsets and metadata are each checked', async () => {
    expect(await message(st({ a: f32(1) }, Buffer.alloc(4), 2n ** 63n))).toMatch(/^header length 9223372036854775808 runs past the end of the \d+-byte file/);
    expect(await message(Buffer.alloc(5))).toBe('not a safetensors file (5 bytes, shorter than the 8-byte header length)');
    expect(await message(st('[1, 2, 3]', Buffer.alloc(0)))).toBe("the header does not start with '{' (not a safetensors file)");
    expect(await message(st('{"a": {"dtype": "F32",}}', Buffer.alloc(0)))).toMatch(/^safetensors header\):1:23: not valid JSON: property name expected/);
    expect(await message(st({ a: { dtype: 'Q8', shape: [1], data_offsets: [0, 1] } }, Buffer.alloc(1)))).toMatch(/tensor 'a' has dtype Q8, which is not read/);
    expect(await message(st({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, Buffer.alloc(4)))).toMatch(/shape \[-1\], expected a list of non-negative integers/);
    expect(await message(st({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, Buffer.alloc(4)))).toMatch(/data_offsets \[4,0\], expected \[begin, end\]/);
    expect(await message(st({ __metadata__: { n: 3 }, a: f32(1) }, Buffer.alloc(4)))).toBe('__metadata__ must be an object of strings');
    expect(await message(st({ a: 7 }, Buffer.alloc(0)))).toBe("tensor 'a' is not an object with dtype, shape and data_offsets");
  });

  it('a model mixing tensors from two writes is refused (offsets no longer tile the file)', async () => {
    await writeSafetensors(file('m1.safetensors'), { coef: { data: new Float32Array(6), shape: [2, 3] }, intercept: { data: new Float32Array(3), shape: [3] } });
    await writeSafetensors(file('m2.safetensors'), { coef: { data: new Float32Array(8), shape: [2, 4] }, intercept: { data: new Float32Array(4), shape: [4] } });
    const a = readFileSync(file('m1.safetensors'));
    const b = readFileSync(file('m2.safetensors'));
    // the header of the first write, the data of the second: what an interleaved in-place write leaves
    const headerLen = Number(a.readBigUInt64LE(0)) + 8;
    const mixed = Buffer.concat([a.subarray(0, headerLen), b.subarray(Number(b.readBigUInt64LE(0)) + 8)]);
    expect(await message(mixed)).toMatch(/trailing bytes after the last tensor/);
  });

  it('a missing file is a MissingFileError', async () => {
    await expect(readSafetensors(file('nope.safetensors'))).rejects.toThrow(MissingFileError);
  });

  it('the header is padded to a multiple of 8 bytes counted in UTF-8 (non-ASCII metadata), tensors read back exactly', async () => {
    const a = Float32Array.from({ length: 7 }, (_, i) => i / 3), b = Int32Array.from([1, -2, 3]);
    await writeSafetensors(file('u.safetensors'), { a: { data: a, shape: [7] }, b: { data: b, shape: [3] } }, { note: 'β 1.0 · Δ voxel → ROI' });
    const bytes = readFileSync(file('u.safetensors'));
    const headerLen = Number(bytes.readBigUInt64LE(0));
    expect(headerLen % 8).toBe(0);
    expect(bytes.length).toBe(8 + headerLen + 7 * 4 + 3 * 4);
    const back = await readSafetensors(file('u.safetensors'));
    expect(back.metadata.note).toBe('β 1.0 · Δ voxel → ROI');
    expect(Array.from(back.tensors.a.data as Float32Array)).toEqual(Array.from(a));
    expect(Array.from(back.tensors.b.data as Int32Array)).toEqual([1, -2, 3]);
  });

  it('metadata-only and empty-tensor files still read', async () => {
    await writeSafetensors(file('e.safetensors'), { z: { data: new Float32Array(0), shape: [0, 5] } }, { k: 'v' });
    const back = await readSafetensors(file('e.safetensors'));
    expect(back.tensors.z.shape).toEqual([0, 5]);
    expect(back.metadata).toEqual({ k: 'v' });
  });

  it("a tensor named __proto__ is read and written like any other, not lost in silence (review s35-r2)", async () => {
    writeFileSync(file('p.safetensors'), st('{"__proto__":' + JSON.stringify(f32(2)) + ',"b":' + JSON.stringify(f32(1, 8)) + '}', Buffer.from(Float32Array.from([1, 2, 3]).buffer)));
    const back = await readSafetensors(file('p.safetensors'));
    expect(Object.keys(back.tensors).sort()).toEqual(['__proto__', 'b']);
    expect(Array.from(back.tensors['__proto__'].data as Float32Array)).toEqual([1, 2]);
    const tensors = Object.defineProperty({}, '__proto__', { value: { data: Float32Array.from([4, 5]), shape: [2] }, enumerable: true });
    await writeSafetensors(file('q.safetensors'), tensors as never);
    expect(Array.from((await readSafetensors(file('q.safetensors'))).tensors['__proto__'].data as Float32Array)).toEqual([4, 5]);
  });
});
