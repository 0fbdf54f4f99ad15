/**
 * PNG structure checks made before a decoder sees the file: the signature, every chunk's length, type and CRC,
 * IHDR's fields (image dimensions within a limit the user can raise), chunk order, no bytes after IEND, and that the
 * image data inflate to exactly the size the header implies. A decoder handed only checked files can neither
 * allocate a 30000 × 30000 image for a 70-byte file nor return an image from a truncated stream.
 */
import * as zlib from 'node:zlib';
import { FormatError, LimitError } from '../errors.js';

/** Limits on a PNG read (readPng), checked before the image is decoded. */
export interface PngLimits {
  /** Largest width × height accepted, an integer >= 1 (default 8192² = 67 Mpx, or BRAINLATENT_MAX_IMAGE_PIXELS). */
  maxPixels?: number;
}

export interface PngInfo {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  interlaced: boolean;
  /** Bytes the image data inflate to (filter bytes included). */
  rawBytes: number;
}

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** Samples per pixel and allowed bit depths of each colour type. */
const COLOR_TYPES: Record<number, { channels: number; depths: number[]; name: string }> = {
  0: { channels: 1, depths: [1, 2, 4, 8, 16], name: 'greyscale' },
  2: { channels: 3, depths: [8, 16], name: 'RGB' },
  3: { channels: 1, depths: [1, 2, 4, 8], name: 'palette' },
  4: { channels: 2, depths: [8, 16], name: 'greyscale + alpha' },
  6: { channels: 4, depths: [8, 16], name: 'RGBA' },
};
/** deflate cannot compress better than about 1032:1, so fewer IDAT bytes than raw / 1032 cannot be a whole image. */
const MAX_DEFLATE_RATIO = 1032;
/** Adam7 passes: x start, y start, x step, y step. */
const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];

export const DEFAULT_MAX_IMAGE_PIXELS = 8192 * 8192;

/** The pixel limit in force: the option, else BRAINLATENT_MAX_IMAGE_PIXELS, else 8192². */
export function maxImagePixels(limits: PngLimits = {}): number {
  if (limits.maxPixels !== undefined) return limits.maxPixels;
  const env = Number(process.env.BRAINLATENT_MAX_IMAGE_PIXELS);
  return Number.isFinite(env) && env > 0 ? env : DEFAULT_MAX_IMAGE_PIXELS;
}

/** Checks a whole PNG file's structure; returns its header fields. Throws FormatError / LimitError naming `path`. */
export function checkPng(bytes: Uint8Array, path: string, limits: PngLimits = {}): PngInfo {
  return checkPngData(bytes, path, limits).info;
}

/**
 * checkPng, returning the image data it inflated too (filtered rows, `info.rawBytes` long): a decoder of the common
 * formats (ts/io/pngRows) starts from them instead of inflating the file a second time.
 */
export function checkPngData(bytes: Uint8Array, path: string, limits: PngLimits = {}): { info: PngInfo; raw: Buffer } {
  const bad = (field: string, msg: string) => new FormatError(`${path}: ${msg}`, { path, field });
  if (bytes.length < 8 || SIGNATURE.some((b, i) => bytes[i] !== b)) throw bad('signature', 'not a PNG file (bad signature)');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let off = 8;
  let info: PngInfo | null = null;
  let sawPalette = false;
  let idatBytes = 0;
  const idat: Uint8Array[] = [];
  let idatDone = false;
  let ended = false;
  while (!ended) {
    if (off + 12 > bytes.length) throw bad('IEND', `truncated PNG: the file ends after ${bytes.length} bytes without an IEND chunk`);
    const len = dv.getUint32(off);
    const type = String.fromCharCode(bytes[off + 4], bytes[off + 5], bytes[off + 6], bytes[off + 7]);
    if (!/^[A-Za-z]{4}$/.test(type)) throw bad('chunk', `chunk at byte ${off} has an invalid type ${JSON.stringify(type)}`);
    if (len > 0x7fffffff || off + 12 + len > bytes.length) {
      throw bad(type, `truncated PNG: chunk ${type} at byte ${off} claims ${len} bytes, ${bytes.length - off - 12} remain`);
    }
    const data = bytes.subarray(off + 8, off + 8 + len);
    const crc = dv.getUint32(off + 8 + len);
    if (crc32(bytes.subarray(off + 4, off + 8 + len)) !== crc) throw bad(type, `chunk ${type} at byte ${off} fails its CRC check (corrupt file)`);
    if (info === null && type !== 'IHDR') throw bad('IHDR', `the first chunk is ${type}, expected IHDR`);
    if (type === 'IHDR') {
      if (info !== null) throw bad('IHDR', 'a second IHDR chunk');
      if (len !== 13) throw bad('IHDR', `IHDR is ${len} bytes, expected 13`);
      info = header(data, path, limits);
    } else if (type === 'PLTE') {
      sawPalette = true;
    } else if (type === 'IDAT') {
      if (idatDone) throw bad('IDAT', 'IDAT chunks are not consecutive');
      idat.push(data);
      idatBytes += len;
    } else if (type === 'IEND') {
      if (len !== 0) throw bad('IEND', `IEND holds ${len} bytes, expected 0`);
      ended = true;
    } else if ((bytes[off + 4] & 0x20) === 0) {
      throw bad(type, `critical chunk ${type} is not understood`);
    }
    if (type !== 'IDAT' && idat.length > 0) idatDone = true;
    off += 12 + len;
  }
  if (off !== bytes.length) throw bad('IEND', `${bytes.length - off} trailing bytes after IEND`);
  const h = info!;
  if (h.colorType === 3 && !sawPalette) throw bad('PLTE', 'a palette image without a PLTE chunk');
  if (idat.length === 0) throw bad('IDAT', 'no IDAT chunk (no image data)');
  if (idatBytes * MAX_DEFLATE_RATIO + 64 < h.rawBytes) {
    throw bad('IDAT', `truncated PNG: ${idatBytes} bytes of image data cannot hold a ${h.width} × ${h.height} image (${h.rawBytes} bytes inflated)`);
  }
  let raw: Buffer;
  try {
    raw = zlib.inflateSync(Buffer.concat(idat), { maxOutputLength: h.rawBytes + 1 });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ERR_BUFFER_TOO_LARGE') throw bad('IDAT', `image data inflate to more than the ${h.rawBytes} bytes a ${h.width} × ${h.height} image needs`);
    throw bad('IDAT', `corrupt or truncated image data (${(e as Error).message})`);
  }
  if (raw.length !== h.rawBytes) {
    throw bad('IDAT', `truncated PNG: image data inflate to ${raw.length} bytes, a ${h.width} × ${h.height} image needs ${h.rawBytes}`);
  }
  return { info: h, raw };
}

function header(data: Uint8Array, path: string, limits: PngLimits): PngInfo {
  const bad = (field: string, msg: string) => new FormatError(`${path}: ${msg}`, { path, field });
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const width = dv.getUint32(0);
  const height = dv.getUint32(4);
  const [bitDepth, colorType, compression, filter, interlace] = [data[8], data[9], data[10], data[11], data[12]];
  if (width === 0 || height === 0 || width > 0x7fffffff || height > 0x7fffffff) throw bad('IHDR', `image size ${width} × ${height} is not valid`);
  const ct = COLOR_TYPES[colorType];
  if (!ct) throw bad('IHDR', `colour type ${colorType} is not valid (expected 0, 2, 3, 4 or 6)`);
  if (!ct.depths.includes(bitDepth)) throw bad('IHDR', `bit depth ${bitDepth} is not valid for ${ct.name} (expected ${ct.depths.join(', ')})`);
  if (compression !== 0 || filter !== 0) throw bad('IHDR', `compression method ${compression} / filter method ${filter}, expected 0 / 0`);
  if (interlace > 1) throw bad('IHDR', `interlace method ${interlace}, expected 0 or 1`);
  const max = maxImagePixels(limits);
  if (width * height > max) {
    throw new LimitError(
      `${path}: image is ${width} × ${height} (${fmtPixels(width * height)}), over the ${fmtPixels(max)} limit; ` +
        'raise it with BRAINLATENT_MAX_IMAGE_PIXELS (or the maxPixels option) if the image is genuine',
      { path, field: 'IHDR' },
    );
  }
  const bpp = ct.channels * bitDepth;
  const rowBytes = (w: number) => 1 + Math.ceil((w * bpp) / 8);
  let rawBytes = 0;
  if (interlace === 0) rawBytes = height * rowBytes(width);
  else {
    for (const [x0, y0, dx, dy] of ADAM7) {
      const w = Math.ceil((width - x0) / dx);
      const h = Math.ceil((height - y0) / dy);
      if (w > 0 && h > 0) rawBytes += h * rowBytes(w);
    }
  }
  return { width, height, bitDepth, colorType, interlaced: interlace === 1, rawBytes };
}

function fmtPixels(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} Mpx` : `${n} px`;
}

let table: Uint32Array | null = null;

/** CRC-32 as PNG defines it (zlib's, from node:zlib where this Node has it). */
function crc32(data: Uint8Array): number {
  const native = (zlib as unknown as { crc32?: (d: Uint8Array) => number }).crc32;
  if (native) return native(data) >>> 0;
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
