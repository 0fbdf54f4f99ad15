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
    expect(await message(b)).toMatch(/^MAT element at byte 0 claims 1073741824 bytes, only \d+ remain \(truncated file\?\)$/);
    expect(await message(Buffer.concat([await plain(), Buffer.from([1, 2, 3])]))).toBe('3 trailing bytes after the last MAT element');
  });

  it('a compressed element inflating past the limit is a LimitError (a zip bomb is not expanded)', async () => {
    await writeMat(file('z.mat'), { x: { dims: [1000, 1000], data: new Float64Array(1e6) } }, { compress: true });
    process.env.BRAINLATENT_MAX_MAT_BYTES = String(1e6);
    const e = await readMat(file('z.mat')).then(() => { throw new Error('expected a rejection'); }, (x: unknown) => x as Error);
    expect(e).toBeInstanceOf(LimitError);
    expect(e.message).toMatch(/compressed MAT element at byte 0 inflates past the 1000000-byte limit \(raise it with BRAINLATENT_MAX_MAT_BYTES\)/);
  });

  it('a compressed element nested in another is refused', async () => {
    const inner = readFileSync(file('z.mat')).subarray(128);
    const z = deflateSync(inner);
    const tag = Buffer.alloc(8);
    tag.writeUInt32LE(15, 0);
    tag.writeUInt32LE(z.length, 4);
    const head = readFileSync(file('z.mat')).subarray(0, 128);
    expect(await message(Buffer.concat([head, tag, z]))).toMatch(/a compressed element inside a compressed element/);
  });
});
