/**
 * readPng's own decoder of 8-bit RGB and RGBA PNGs (ts/io/pngRows) against pngjs: every filter type (each row filtered alike), the
 * first row's and first pixel's edges, odd sizes, alpha dropped; the other formats still decode through pngjs; a filter type
 * outside 0–4 is refused naming the file and the row.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';

import type { PNG as PngType } from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';

import { FormatError } from '../../ts/errors.js';
import { checkPngData } from '../../ts/io/pngCheck.js';
import { rowsReadable } from '../../ts/io/pngRows.js';
import { readPng } from '../../ts/sd/png.js';
import { pngOf } from '../helpers/pngChunks.js';

const { PNG } = createRequire(import.meta.url)('pngjs') as { PNG: typeof PngType };
const dir = mkdtempSync(join(tmpdir(), 'bl-pngrows-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** RGBA pixels with structure and noise, alpha varying. */
function rgba(width: number, height: number, seed: number): Buffer {
  const d = Buffer.alloc(width * height * 4);
  let s = seed;
  for (let i = 0; i < d.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    const x = (i >> 2) % width, y = Math.floor(i / 4 / width);
    // (red a diagonal ramp, where Paeth's predictor is the pixel above-left)
    const c = i & 3;
    d[i] = c === 3 ? (x * 37 + y) & 0xff : c === 0 ? (x - y) * 5 & 0xff : (x * c * 5 + y * 3 + (s >>> 27)) & 0xff;
  }
  return d;
}

/** What pngjs decodes `bytes` to, as RGB (its RGBA with alpha dropped: readPng's result before its own decoder). */
function pngjsRgb(bytes: Buffer): Uint8Array {
  const png = PNG.sync.read(bytes);
  const out = new Uint8Array(png.width * png.height * 3);
  for (let p = 0; p < png.width * png.height; p++) for (let c = 0; c < 3; c++) out[p * 3 + c] = png.data[p * 4 + c];
  return out;
}

describe('readPng of 8-bit RGB and RGBA PNGs', () => {
  const sizes: [number, number][] = [[1, 1], [1, 6], [7, 1], [13, 9], [64, 33]];
  for (const colorType of [2, 6] as const) {
    for (const filterType of [0, 1, 2, 3, 4, -1]) {
      it(`colour type ${colorType}, filter ${filterType < 0 ? 'adaptive' : filterType}: pngjs's pixels`, async () => {
        for (const [w, h] of sizes) {
          const bytes = PNG.sync.write({ width: w, height: h, data: rgba(w, h, w * 31 + h) } as PngType, { colorType, filterType });
          const { info, raw } = checkPngData(bytes, 'x.png');
          expect([info.colorType, info.bitDepth, info.interlaced, rowsReadable(info)]).toEqual([colorType, 8, false, true]);
          // (the file's rows carry the filter asked for)
          const stride = w * (colorType === 6 ? 4 : 3) + 1;
          if (filterType >= 0) expect(new Set(Array.from({ length: h }, (_, y) => raw[y * stride]))).toEqual(new Set([filterType]));
          const file = join(dir, `t${colorType}_${filterType}_${w}x${h}.png`);
          writeFileSync(file, bytes);
          const got = await readPng(file);
          expect([got.count, got.width, got.height]).toEqual([1, w, h]);
          expect(Buffer.from(got.data).equals(Buffer.from(pngjsRgb(bytes))), `${w}×${h}`).toBe(true);
        }
      });
    }
  }

  it('other formats (greyscale, 16-bit, palette-free greyscale + alpha) still decode, through pngjs', async () => {
    const w = 9, h = 4;
    for (const [colorType, bitDepth] of [[0, 8], [4, 8], [2, 16], [6, 16], [0, 16]] as const) {
      const bytes = PNG.sync.write({ width: w, height: h, data: rgba(w, h, 3) } as PngType, { colorType, bitDepth, inputHasAlpha: true });
      const { info } = checkPngData(bytes, 'x.png');
      expect(rowsReadable(info)).toBe(false);
      const file = join(dir, `other_${colorType}_${bitDepth}.png`);
      writeFileSync(file, bytes);
      expect(Buffer.from((await readPng(file)).data).equals(Buffer.from(pngjsRgb(bytes))), `colour type ${colorType}, ${bitDepth}-bit`).toBe(true);
    }
  });

  it('a row of filter type 5 is a FormatError naming the file and the row', async () => {
    const w = 3, h = 2;
    const rows = Buffer.alloc(h * (w * 3 + 1), 9);
    rows[0] = 0;
    rows[w * 3 + 1] = 5;
    const bytes = pngOf(w, h, deflateSync(rows));
    const file = join(dir, 'filter5.png');
    writeFileSync(file, bytes);
    const err = await readPng(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FormatError);
    expect((err as Error).message).toBe(`${file}: row 1 of the image data has filter type 5, expected 0–4 (corrupt file)`);
  });
});
