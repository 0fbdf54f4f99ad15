/**
 * The rows of an 8-bit, non-interlaced RGB or RGBA PNG (colour types 2 and 6: every PNG brainlatent writes, and most
 * photographs' files) from its inflated image data, as RGB. readPng's fast path: checkPng has already inflated and
 * size-checked the data, and pngjs would inflate it again, unfilter into RGBA and leave the RGB copy to the caller:
 * readPng took 13.9 ms for one of NSD's 512 px images that way, 6 ms this one, and the evaluation reads every sample
 * of every seed. Other formats (palette, greyscale, 16-bit, interlaced) stay with pngjs.
 */
import { FormatError } from '../errors.js';
import type { PngInfo } from './pngCheck.js';

/** Whether rgbFromRows reads this image (8-bit, non-interlaced, RGB or RGBA). */
export function rowsReadable(info: PngInfo): boolean {
  return info.bitDepth === 8 && !info.interlaced && (info.colorType === 2 || info.colorType === 6);
}

/**
 * RGB pixels (3 bytes each, row by row; alpha dropped) of the image whose inflated data `raw` are (filter byte + row)
 * × height. Unfilters `raw` in place. A filter type other than 0–4 is a FormatError naming `path` and the row.
 */
export function rgbFromRows(raw: Uint8Array, info: PngInfo, path: string): Uint8Array {
  const { width, height } = info;
  const bpp = info.colorType === 6 ? 4 : 3;
  const stride = width * bpp;
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const at = y * (stride + 1);
    const filter = raw[at];
    const row = at + 1;
    // (the row above, already unfiltered in place; the first row's is zeros)
    const up = y === 0 ? -1 : row - stride - 1;
    unfilterRow(raw, row, up, stride, bpp, filter, path, y);
    const o = y * width * 3;
    if (bpp === 3) out.set(raw.subarray(row, row + stride), o);
    else {
      for (let x = 0, i = row, j = o; x < width; x++, i += 4, j += 3) {
        out[j] = raw[i];
        out[j + 1] = raw[i + 1];
        out[j + 2] = raw[i + 2];
      }
    }
  }
  return out;
}

/** Reverses one row's filter (PNG §9.2), in place: the row at `row`, the one above at `up` (−1: none). */
function unfilterRow(d: Uint8Array, row: number, up: number, stride: number, bpp: number, filter: number, path: string, y: number): void {
  switch (filter) {
    case 0:
      return;
    case 1: // Sub
      for (let i = bpp; i < stride; i++) d[row + i] = (d[row + i] + d[row + i - bpp]) & 0xff;
      return;
    case 2: // Up
      if (up >= 0) for (let i = 0; i < stride; i++) d[row + i] = (d[row + i] + d[up + i]) & 0xff;
      return;
    case 3: // Average
      for (let i = 0; i < stride; i++) {
        const a = i >= bpp ? d[row + i - bpp] : 0;
        const b = up >= 0 ? d[up + i] : 0;
        d[row + i] = (d[row + i] + ((a + b) >> 1)) & 0xff;
      }
      return;
    case 4: // Paeth
      for (let i = 0; i < stride; i++) {
        const a = i >= bpp ? d[row + i - bpp] : 0;
        const b = up >= 0 ? d[up + i] : 0;
        const c = i >= bpp && up >= 0 ? d[up + i - bpp] : 0;
        const p = a + b - c;
        const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        d[row + i] = (d[row + i] + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c)) & 0xff;
      }
      return;
    default:
      throw new FormatError(`${path}: row ${y} of the image data has filter type ${filter}, expected 0–4 (corrupt file)`, { path, field: 'IDAT' });
  }
}
