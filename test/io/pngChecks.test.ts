/** PNG files are checked before they are decoded (issue #11: a 70-byte PNG that hung, a truncated one that decoded). */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { FormatError, InvalidArgumentError, LimitError, MissingFileError, ShapeError } from '../../ts/errors.js';
import { checkPng } from '../../ts/io/pngCheck.js';
import { readPng, writePng } from '../../ts/sd/png.js';
import { pngOf } from '../helpers/pngChunks.js';

const dir = mkdtempSync(join(tmpdir(), 'bl-pngcheck-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string) => join(dir, name);

const png = pngOf;

afterEach(() => {
  delete process.env.BRAINLATENT_MAX_IMAGE_PIXELS;
});

describe('PNG checks', () => {
  it('a 70-byte PNG claiming 30000 × 30000 is refused at once: over the pixel limit, and too short even when the limit is raised', async () => {
    const tiny = png(30000, 30000, deflateSync(Buffer.alloc(10)));
    expect(tiny.length).toBeLessThan(80);
    writeFileSync(file('tiny.png'), tiny);
    const e = await readPng(file('tiny.png')).then(() => { throw new Error('expected a rejection'); }, (x: unknown) => x as LimitError);
    expect(e).toBeInstanceOf(LimitError);
    expect(e.message).toBe(
      `${file('tiny.png')}: image is 30000 × 30000 (900.0 Mpx), over the 67.1 Mpx limit; raise it with BRAINLATENT_MAX_IMAGE_PIXELS (or the maxPixels option) if the image is genuine`,
    );
    process.env.BRAINLATENT_MAX_IMAGE_PIXELS = String(1e9);
    await expect(readPng(file('tiny.png'))).rejects.toThrow(/bytes of image data cannot hold a 30000 × 30000 image/);
  });

  it('a 4000 × 4000 PNG whose data stream is truncated is an error, not an image', async () => {
    const raw = Buffer.alloc(4000 * (1 + 4000 * 3));
    for (let i = 0; i < raw.length; i += 997) raw[i] = i & 0xff;
    const z = deflateSync(raw);
    writeFileSync(file('cut.png'), png(4000, 4000, z.subarray(0, z.length >> 1)));
    const e = await readPng(file('cut.png')).then(() => { throw new Error('expected a rejection'); }, (x: unknown) => x as FormatError);
    expect(e).toBeInstanceOf(FormatError);
    expect(e.message).toMatch(/cut\.png: (truncated PNG: image data inflate to \d+ bytes, a 4000 × 4000 image needs 48004000|corrupt or truncated image data)/);
    expect(e.field).toBe('IDAT');
  });

  it('bad CRCs, trailing bytes, a missing IEND and bad IHDR fields are refused', async () => {
    const good = png(2, 2, deflateSync(Buffer.alloc(2 * (1 + 6))));
    expect(checkPng(good, 'good.png')).toMatchObject({ width: 2, height: 2, rawBytes: 14 });
    const crc = Buffer.from(good);
    crc[20] ^= 1;
    expect(() => checkPng(crc, 'crc.png')).toThrow(/crc\.png: chunk IHDR at byte 8 fails its CRC check/);
    expect(() => checkPng(Buffer.concat([good, Buffer.from('zz')]), 't.png')).toThrow('t.png: 2 trailing bytes after IEND');
    expect(() => checkPng(good.subarray(0, good.length - 12), 'noend.png')).toThrow(/without an IEND chunk/);
    expect(() => checkPng(png(2, 2, deflateSync(Buffer.alloc(14)), 5), 'ct.png')).toThrow(/colour type 5 is not valid/);
    expect(() => checkPng(png(0, 2, deflateSync(Buffer.alloc(14))), 'zero.png')).toThrow(/image size 0 × 2 is not valid/);
    expect(() => checkPng(png(2, 2, deflateSync(Buffer.alloc(40))), 'long.png')).toThrow(/inflate to more than the 14 bytes/);
    expect(() => checkPng(Buffer.from('GIF89a'), 'gif.png')).toThrow('gif.png: not a PNG file (bad signature)');
  });

  it('valid files still read, and a missing one is a MissingFileError', async () => {
    const img = { data: Uint8Array.from({ length: 5 * 3 * 3 }, (_, i) => i * 3), count: 1, height: 3, width: 5 };
    await writePng(file('ok.png'), img);
    expect(Array.from((await readPng(file('ok.png'))).data)).toEqual(Array.from(img.data));
    await expect(readPng(file('ok.png'), { maxPixels: 10 })).rejects.toThrow(LimitError);
    await expect(readPng(file('none.png'))).rejects.toThrow(MissingFileError);
  });

  it('readPng refuses a maxPixels that is not an integer >= 1, naming the option, before reading the file', async () => {
    const img = { data: new Uint8Array(2 * 2 * 3), count: 1, height: 2, width: 2 };
    await writePng(file('limit.png'), img);
    // (NaN turned the limit off, null was 'over the null px limit', 0 and -1 a LimitError blaming the image)
    for (const [bad, shown] of [[NaN, 'NaN'], [null, 'null'], [0, '0'], [-1, '-1'], [2.5, '2.5'], ['4', 'string "4"']] as const) {
      await expect(readPng(file('limit.png'), { maxPixels: bad as unknown as number }), String(bad)).rejects.toThrow(
        new InvalidArgumentError(`readPng maxPixels: expected an integer >= 1, got ${shown}`),
      );
    }
    await expect(readPng(file('none.png'), { maxPixels: 0 })).rejects.toThrow(InvalidArgumentError);
    await expect(readPng(file('limit.png'), { maxPixel: 4 } as unknown as { maxPixels: number })).rejects.toThrow(
      new InvalidArgumentError("readPng: unknown option 'maxPixel' (did you mean 'maxPixels'?); known: maxPixels"),
    );
    expect((await readPng(file('limit.png'), { maxPixels: 4 })).width).toBe(2);
  });
});

describe('writePng checks its batch and index', () => {
  const batch = { data: Uint8Array.from({ length: 2 * 4 * 4 * 3 }, (_, i) => (i < 48 ? 10 : 200)), count: 2, height: 4, width: 4 };
  const failure = async (images: unknown, index?: unknown): Promise<Error> =>
    writePng(file('w.png'), images as typeof batch, index as number).then(() => { throw new Error('expected a rejection'); }, (x: unknown) => x as Error);

  it('an index that is not an integer from 0 to count-1 is an InvalidArgumentError (0.5 wrote pixels from mid-image)', async () => {
    for (const [index, shown] of [[0.5, '0.5'], [2, '2'], [-1, '-1'], ['1', 'string "1"']] as const) {
      const e = await failure(batch, index);
      expect(e).toBeInstanceOf(InvalidArgumentError);
      expect(e.message).toBe(`writePng ${file('w.png')} index: expected an integer in 0..1 (a batch of 2), got ${shown}`);
    }
    expect(existsSync(file('w.png'))).toBe(false);
    await writePng(file('w.png'), batch, 1);
    expect(Array.from((await readPng(file('w.png'))).data)).toEqual(new Array(48).fill(200));
  });

  it('a short, non-uint8 or empty batch is a ShapeError, as assertRgb says elsewhere (they wrote zero-padded or black images)', async () => {
    const cases: [unknown, string][] = [
      [{ ...batch, data: new Uint8Array(5) }, '2×4×4×3 needs 96 bytes, data has 5'],
      [{ ...batch, data: new Float32Array(96).fill(0.5) }, 'expected {data: Uint8Array, count, height, width}'],
      [{ data: new Uint8Array(0), count: 1, height: 0, width: 0 }, 'count, height and width must be positive integers, got 1×0×0'],
      [{ ...batch, count: 1.5 }, 'count, height and width must be positive integers, got 1.5×4×4'],
    ];
    for (const [images, msg] of cases) {
      const e = await failure(images);
      expect(e).toBeInstanceOf(ShapeError);
      expect(e.message).toBe(`writePng ${file('w.png')}: ${msg}`);
    }
  });
});
