/** PNG in and out (read: our rows' reader, pngjs for other formats; written: io/pngWrite) as RGB uint8 batches, the image format of the Diffusion API; written PNGs are 8-bit RGB. */
import type { PNG } from 'pngjs';

import { FormatError, InvalidArgumentError } from '../errors.js';
import { pngjsPackage } from '../lazyPackages.js';
import { writeFileAtomic } from '../io/atomicWrite.js';
import { checkPngData, type PngLimits } from '../io/pngCheck.js';
import { encodeRgbPng, rgbFromRgba } from '../io/pngWrite.js';
import { rgbFromRows, rowsReadable } from '../io/pngRows.js';
import { byteLimit, readWholeFile } from '../io/readWhole.js';
import { describeNumber } from '../ridge/alphas.js';
import { checkInteger, checkOptionsObject } from '../ridge/options.js';
import { assertRgb, type RgbImages } from './tensor.js';

/**
 * One PNG as a 1-image RGB batch (alpha dropped). The file's structure and size are checked before decoding
 * (ts/io/pngCheck): dimensions over the pixel limit (`limits.maxPixels`, BRAINLATENT_MAX_IMAGE_PIXELS) are a
 * LimitError, a truncated or corrupt file a FormatError naming it.
 */
export async function readPng(path: string, limits: PngLimits = {}): Promise<RgbImages> {
  // (NaN turned the limit off, null was 'over the null px limit', 0 and -1 a LimitError blaming the image)
  checkOptionsObject(limits, ['maxPixels'], 'readPng');
  if (limits.maxPixels !== undefined) checkInteger(limits.maxPixels, 'maxPixels', 'readPng', 1);
  const bytes = await readWholeFile(path, byteLimit('BRAINLATENT_MAX_PNG_BYTES', 2 ** 30), 'BRAINLATENT_MAX_PNG_BYTES');
  const { info, raw } = checkPngData(bytes, path, limits);
  // (8-bit RGB or RGBA, not interlaced: from the data the check inflated, 3× faster than pngjs)
  if (rowsReadable(info)) return { data: rgbFromRows(raw, info, path), count: 1, height: info.height, width: info.width };
  let png: PNG;
  try {
    png = pngjsPackage().PNG.sync.read(bytes);
  } catch (e) {
    throw new FormatError(`${path} is not a readable PNG: ${(e as Error).message}`, { path });
  }
  const { width, height } = png;
  return { data: rgbFromRgba(png.data, width * height), count: 1, height, width };
}

/**
 * The bytes of an 8-bit RGB PNG (colour type 2: no alpha channel, as every image brainlatent writes is opaque) of
 * `width × height` pixels, `rgb` holding 3 bytes a pixel, row by row.
 */
export function rgbPngBytes(rgb: Uint8Array, width: number, height: number): Buffer {
  return encodeRgbPng(rgb, width, height);
}

/** Writes image `index` of an RGB batch as an 8-bit RGB PNG (no alpha channel). */
export async function writePng(path: string, images: RgbImages, index = 0): Promise<void> {
  // the batch checked as everywhere else: a short or non-uint8 batch wrote zero-padded or black pixels
  assertRgb(images, `writePng ${path}`);
  const { width, height, count } = images;
  if (!Number.isInteger(index) || index < 0 || index >= count) {
    throw new InvalidArgumentError(`writePng ${path} index: expected an integer in 0..${count - 1} (a batch of ${count}), got ${describeNumber(index)}`);
  }
  const base = index * width * height * 3;
  await writeFileAtomic(path, rgbPngBytes(images.data.subarray(base, base + width * height * 3), width, height));
}
