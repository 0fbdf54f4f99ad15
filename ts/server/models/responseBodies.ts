/**
 * The model routes' answers, made without stalling the event loop whatever their size: predictions as JSON or
 * .npy, img2img's images as one PNG (side by side, left to right in batch order), as a uint8 .npy [B, H, W, 3], or
 * the final latents as a float32 .npy. A small answer is one Buffer or object; a large one is a stream that the
 * socket pulls: a .npy is its header and a view of the array (nothing copied), JSON text is made a few rows at a
 * time, and the PNG's rows are deflated on libuv's threads, a slice at a time, each deflated piece sent as an IDAT
 * chunk of its own (rather than pngjs, whose row filtering runs on the event loop: 190 ms for one 512×512 image).
 */
import { Readable, Transform, pipeline } from 'node:stream';
import { createDeflate, crc32 } from 'node:zlib';

import { encodeNpyParts } from '../../io/npy.js';
import type { NumericArray } from '../../io/typedArrays.js';
import type { Matrix } from '../../matrix.js';
import type { RgbImages, Tensor } from '../../sd/tensor.js';

/** Answers up to this many bytes are built at once (a copy of them costs well under a millisecond). */
const AT_ONCE_BYTES = 256 << 10;
/** Numbers turned into JSON text at a time (~0.5 µs each on the bench machine: ~2 ms). */
const JSON_NUMBERS_AT_ONCE = 4096;
/** Bytes of PNG rows handed to the deflater at a time. */
const PNG_SLICE = 64 << 10;

export interface Answer {
  body: Buffer | Readable | object;
  /** Set when the body is a stream of known length. */
  length?: number;
}

/** A .npy answer: one Buffer when small, else its header and a view of `data` as a stream. */
export function npyAnswer(data: NumericArray, shape: readonly number[]): Answer {
  const parts = encodeNpyParts(data, shape);
  const length = parts[0].length + parts[1].length;
  return length <= AT_ONCE_BYTES ? { body: Buffer.concat(parts) } : { body: Readable.from(parts), length };
}

export const imagesNpy = (images: RgbImages) => npyAnswer(images.data, [images.count, images.height, images.width, 3]);

export const latentsNpy = (latents: Tensor) => npyAnswer(latents.data, latents.shape);

const rowsOf = (y: Matrix, from: number, to: number) => {
  const rows: number[][] = [];
  for (let i = from; i < to; i++) rows.push(Array.from(y.data.subarray(i * y.cols, (i + 1) * y.cols)));
  return rows;
};

/** Predictions as JSON, { rows, cols, y: [[…], …] }: an object when small, else the same text as a stream. */
export function predictionsJson(y: Matrix): Answer {
  if (y.rows * y.cols <= JSON_NUMBERS_AT_ONCE) return { body: { rows: y.rows, cols: y.cols, y: rowsOf(y, 0, y.rows) } };
  const step = Math.max(1, Math.floor(JSON_NUMBERS_AT_ONCE / y.cols));
  async function* text(): AsyncGenerator<string> {
    yield `{"rows":${y.rows},"cols":${y.cols},"y":[`;
    for (let r = 0; r < y.rows; r += step) {
      const rows = JSON.stringify(rowsOf(y, r, Math.min(y.rows, r + step)));
      yield (r > 0 ? ',' : '') + rows.slice(1, -1);
      // a socket that takes everything at once would otherwise have the whole text made in one go
      await new Promise((next) => setImmediate(next));
    }
    yield ']}';
  }
  return { body: Readable.from(text(), { objectMode: false, highWaterMark: 1 }) };
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** A PNG chunk: length, type, data, CRC of type and data (as separate Buffers: the data is not copied). */
function chunk(type: string, data: Buffer): Buffer[] {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(data, crc32(head.subarray(4))), 0);
  return [head, data, crc];
}

/** The batch as one 8-bit RGB PNG, images side by side, as a stream. */
export function pngStrip(images: RgbImages): Readable {
  const { count, height, width } = images;
  const row = width * 3;
  const stride = row * count + 1;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width * count, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // bit depth 8, colour type 2 (RGB), deflate, no filter method variants, no interlace
  const png = new Transform({
    transform(data: Buffer, _encoding, done) {
      for (const part of chunk('IDAT', data)) this.push(part);
      done();
    },
    flush(done) {
      for (const part of chunk('IEND', Buffer.alloc(0))) this.push(part);
      done();
    },
  });
  png.push(SIGNATURE);
  for (const part of chunk('IHDR', ihdr)) png.push(part);
  const deflate = createDeflate();
  // the deflater (and the client, through the chunks) paces the rows: a slice when it has taken the last one
  const rowsPerSlice = Math.max(1, Math.floor(PNG_SLICE / stride));
  let y = 0;
  const feed = () => {
    while (y < height) {
      const n = Math.min(rowsPerSlice, height - y);
      const raw = Buffer.allocUnsafe(n * stride);
      for (let r = 0; r < n; r++) {
        raw[r * stride] = 0; // filter type 0 (none), then the row of every image in turn
        for (let i = 0; i < count; i++) {
          const src = (i * height + y + r) * row;
          raw.set(images.data.subarray(src, src + row), r * stride + 1 + i * row);
        }
      }
      y += n;
      if (!deflate.write(raw)) {
        deflate.once('drain', feed);
        return;
      }
    }
    deflate.end();
  };
  pipeline(deflate, png, () => {
    // an error or a client gone: both streams are destroyed; nothing is left to feed
    deflate.removeListener('drain', feed);
  });
  feed();
  return png;
}
