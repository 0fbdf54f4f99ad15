/** safetensors: the header must describe the file exactly before anything is read (issue #11). */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { FormatError, MissingFileError } from '../../ts/errors.js';
import { writeHdf5 } from '../../ts/io/hdf5.js';
import { writeNpy } from '../../ts/io/npy.js';
import { readSafetensors, TENSOR_CRC32_KEY, writeSafetensors } from '../../ts/io/safetensors.js';
import { hasPython, runPython } from './python.js';

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

/** The JSON header of safetensors bytes, and where its data begin. */
function headerOf(bytes: Buffer): { header: Record<string, { data_offsets?: [number, number] } & Record<string, unknown>>; base: number } {
  const n = Number(bytes.readBigUInt64LE(0));
  return { header: JSON.parse(bytes.toString('utf8', 8, 8 + n)) as never, base: 8 + n };
}

describe("safetensors: each tensor's CRC-32 (a damaged copy read as other numbers)", () => {
  const tensors = () => ({
    coef: { data: Float32Array.from({ length: 12 }, (_, i) => i / 7 - 0.5), shape: [3, 4] },
    gammas: { data: Float64Array.from([0.25, 0.75, 1]), shape: [3] },
    best: { data: Int32Array.from([2, 0, 1, 1]), shape: [4] },
  });

  it('is written in the metadata, left out of the metadata read back, and checked on read', async () => {
    await writeSafetensors(file('c.safetensors'), tensors(), { note: 'n' });
    const { header } = headerOf(readFileSync(file('c.safetensors')));
    const meta = header.__metadata__ as Record<string, string>;
    expect(Object.keys(JSON.parse(meta[TENSOR_CRC32_KEY]) as object)).toEqual(['coef', 'gammas', 'best']);
    expect(JSON.parse(meta[TENSOR_CRC32_KEY]).best).toMatch(/^[0-9a-f]{8}$/);
    const back = await readSafetensors(file('c.safetensors'));
    expect(back.metadata).toEqual({ note: 'n' });
    expect(Array.from(back.tensors.gammas.data)).toEqual([0.25, 0.75, 1]);
  });

  it('a byte flipped at either end of any tensor\'s data is a FormatError naming the tensor', async () => {
    await writeSafetensors(file('c.safetensors'), tensors());
    const good = readFileSync(file('c.safetensors'));
    const { header, base } = headerOf(good);
    for (const name of ['coef', 'gammas', 'best']) {
      const [begin, end] = header[name].data_offsets!;
      for (const at of [begin, end - 1]) {
        const bad = Buffer.from(good);
        bad[base + at] ^= 0x01; // the lowest bit: coef[0] −0.5 read as −0.50000006, which nothing else catches
        writeFileSync(file('x.safetensors'), bad);
        const e = (await readSafetensors(file('x.safetensors')).catch((x: unknown) => x)) as FormatError;
        expect(e).toBeInstanceOf(FormatError);
        expect(e.field).toBe(name);
        expect(e.message).toMatch(new RegExp(`^${file('x.safetensors')}: tensor '${name}' fails its checksum \\(CRC-32 [0-9a-f]{8}, metadata 'tensor_crc32' records [0-9a-f]{8}\\)`));
        expect(e.message).toContain("remove 'tensor_crc32' from the metadata to read it unchecked");
      }
    }
  });

  it('files without it (written before it was kept, or elsewhere) read unchecked, as before; an unlisted tensor is not checked', async () => {
    const data = Buffer.from(Float32Array.from([1, 2, 3]).buffer);
    writeFileSync(file('old.safetensors'), st({ __metadata__: { format: 'x' }, a: f32(3) }, data));
    const old = await readSafetensors(file('old.safetensors'));
    expect(Array.from(old.tensors.a.data)).toEqual([1, 2, 3]);
    expect(old.metadata).toEqual({ format: 'x' });
    // 'b' added by another tool, which kept the metadata listing 'a' alone
    const crcOfA = JSON.parse(headerOf(await writeAndRead({ a: { data: Float32Array.from([1, 2, 3]), shape: [3] } })).header.__metadata__[TENSOR_CRC32_KEY] as string).a as string;
    writeFileSync(file('added.safetensors'), st({ __metadata__: { [TENSOR_CRC32_KEY]: JSON.stringify({ a: crcOfA }) }, a: f32(3), b: f32(1, 12) }, Buffer.concat([data, Buffer.alloc(4)])));
    expect(Object.keys((await readSafetensors(file('added.safetensors'))).tensors)).toEqual(['a', 'b']);
  });

  it('a value passed in is replaced by the sums of the data written; a damaged one is refused', async () => {
    await writeSafetensors(file('r.safetensors'), tensors(), { [TENSOR_CRC32_KEY]: '{"coef":"00000000"}' });
    expect((await readSafetensors(file('r.safetensors'))).tensors.coef.shape).toEqual([3, 4]);
    const data = Buffer.from(Float32Array.from([1]).buffer);
    for (const v of ['{"a":', '["00000000"]', '{"a":"xyz"}', '{"a":12345678}']) {
      expect(await message(st({ __metadata__: { [TENSOR_CRC32_KEY]: v }, a: f32(1) }, data))).toBe(
        `metadata 'tensor_crc32' must be a JSON object of each tensor's CRC-32 (8 hex digits), got ${JSON.stringify(v)}`,
      );
    }
  });

  it.skipIf(!hasPython('zlib'))("is zlib's CRC-32 of the tensor's bytes, as Python's zlib.crc32 computes it (a reader elsewhere can check it)", async () => {
    await writeSafetensors(file('py.safetensors'), tensors());
    const script = [
      'import json, struct, sys, zlib',
      "b = open(sys.argv[1], 'rb').read()",
      "n = struct.unpack('<Q', b[:8])[0]",
      'h = json.loads(b[8:8 + n])',
      "crcs = json.loads(h['__metadata__']['tensor_crc32'])",
      "print(json.dumps({k: ('%08x' % zlib.crc32(b[8 + n + v['data_offsets'][0]:8 + n + v['data_offsets'][1]])) == crcs[k] for k, v in h.items() if k != '__metadata__'}))",
    ].join('\n');
    expect(JSON.parse(await runPython(script, file('py.safetensors')))).toEqual({ coef: true, gammas: true, best: true });
  });
});

async function writeAndRead(t: Record<string, { data: Float32Array; shape: number[] }>): Promise<Buffer> {
  await writeSafetensors(file('w.safetensors'), t);
  return readFileSync(file('w.safetensors'));
}

describe('safetensors: a file of another kind in its place is named as such', () => {
  it('an .npy array, an HDF5 file, a JSON file', async () => {
    await writeNpy(file('a.npy'), new Float32Array(6), [2, 3]);
    expect(await message(readFileSync(file('a.npy')))).toBe('a NumPy .npy array, not a safetensors file');
    await writeHdf5(file('a.h5'), [{ name: 'x', data: new Float32Array(4), shape: [4] }]);
    expect(await message(readFileSync(file('a.h5')))).toBe('an HDF5 file (.h5, .hdf5), not a safetensors file');
    expect(await message(Buffer.from('{"format": "brainlatent-run", "version": 1}'))).toBe('a JSON text file, not a safetensors file');
    // too short to be anything: said as before
    expect(await message(Buffer.alloc(0))).toBe('not a safetensors file (0 bytes, shorter than the 8-byte header length)');
  });
});
