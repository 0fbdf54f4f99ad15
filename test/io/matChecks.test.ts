/** MAT v5: element lengths, dims and compressed sizes are checked before anything is allocated (issue #11). */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { FormatError, LimitError } from '../../ts/errors.js';
import { readMat, writeMat } from '../../ts/io/mat.js';

const dir = mkdtempSync(join(tmpdir(), 'bl-matcheck-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string) => join(dir, name);
afterEach(() => {
  delete process.env.BRAINLATENT_MAX_MAT_BYTES;
});

async function plain(): Promise<Buffer> {
  await writeMat(file('p.mat'), { x: { dims: [2, 3], data: Float64Array.from([1, 2, 3, 4, 5, 6]) } });
  return readFileSync(file('p.mat'));
}

async function message(bytes: Buffer): Promise<string> {
  writeFileSync(file('bad.mat'), bytes);
  const e = await readMat(file('bad.mat')).then(() => { throw new Error('expected a rejection'); }, (x: unknown) => x as Error);
  expect(e).toBeInstanceOf(FormatError);
  expect(e.message.startsWith(`${file('bad.mat')}: `)).toBe(true);
  return e.message.slice(file('bad.mat').length + 2);
}

describe('MAT v5 checks', () => {
  it('dims that disagree with the data, and data that are not whole values, are refused', async () => {
    const b = Buffer.from(await plain());
    // miMATRIX at 128: tag (8), flags element (16), dims element tag at 152, dims at 160 (int32 2, 3)
    b.writeInt32LE(4, 164);
    expect(await message(b)).toBe('variable x holds 48 bytes of miDOUBLE, its dims 2×4 need 64');
    b.writeInt32LE(-3, 164);
    expect(await message(b)).toMatch(/array dimensions 2×-3 are not valid/);
  });

  it('an element claiming more bytes than remain, and trailing bytes, are refused', async () => {
    const b = Buffer.from(await plain());
    b.writeUInt32LE(1 << 30, 132);
    expect(await message(b)).toMatch(/^MAT element at byte 128 claims 1073741824 bytes, only \d+ remain \(truncated file\?\)$/);
    expect(await message(Buffer.concat([await plain(), Buffer.from([1, 2, 3])]))).toBe('3 trailing bytes after the last MAT element');
  });

  it('offsets are the file\'s (the 128-byte header counted), and inside a compressed element say so (review s30-r2)', async () => {
    await writeMat(file('two.mat'), { a: { dims: [1, 3], data: Float64Array.from([1, 2, 3]) }, b: { dims: [1, 2], data: Float64Array.from([4, 5]) } });
    const b = Buffer.from(readFileSync(file('two.mat')));
    const second = 128 + 8 + b.readUInt32LE(132); // the first element's tag and its bytes
    b.writeUInt32LE(1 << 20, second + 4);
    expect(await message(b)).toMatch(new RegExp(`^MAT element at byte ${second} claims 1048576 bytes`));
    // an element inside a compressed one: its offset in the inflated bytes, and where the compressed element is
    const inner = Buffer.from(b.subarray(128));
    const z = deflateSync(Buffer.concat([inner.subarray(0, second - 128), Buffer.from([14, 0, 0, 0, 0, 0, 0, 1])]));
    const tag = Buffer.alloc(8);
    tag.writeUInt32LE(15, 0);
    tag.writeUInt32LE(z.length, 4);
    expect(await message(Buffer.concat([b.subarray(0, 128), tag, z]))).toMatch(
      new RegExp(`^MAT element at byte ${second - 128} inside the compressed element at byte 128 claims 16777216 bytes`),
    );
  });

  it('a compressed element inflating past the limit is a LimitError (a zip bomb is not expanded)', async () => {
    await writeMat(file('z.mat'), { x: { dims: [1000, 1000], data: new Float64Array(1e6) } }, { compress: true });
    process.env.BRAINLATENT_MAX_MAT_BYTES = String(1e6);
    const e = await readMat(file('z.mat')).then(() => { throw new Error('expected a rejection'); }, (x: unknown) => x as Error);
    expect(e).toBeInstanceOf(LimitError);
    expect(e.message).toMatch(/compressed MAT element at byte 128 inflates past the 1000000-byte limit \(raise it with BRAINLATENT_MAX_MAT_BYTES\)/);
  });

  it('a compressed element nested in another is refused', async () => {
    const inner = readFileSync(file('z.mat')).subarray(128);
    const z = deflateSync(inner);
    const tag = Buffer.alloc(8);
    tag.writeUInt32LE(15, 0);
    tag.writeUInt32LE(z.length, 4);
    const head = readFileSync(file('z.mat')).subarray(0, 128);
    expect(await message(Buffer.concat([head, tag, z]))).toBe('a compressed element at byte 0 inside the compressed element at byte 128');
  });
});
