/**
 * img2img's answers: the images as one PNG (side by side, left to right in batch order), as a uint8 .npy
 * [B, H, W, 3], or the final latents as a float32 .npy. The PNG is assembled here over Node's zlib rather than
 * with pngjs, whose row filtering runs on the event loop (190 ms for one 512×512 image): rows go unfiltered
 * and the compression runs on libuv's threads, so the event loop only copies rows.
 */
import { promisify } from 'node:util';
import { crc32, deflate } from 'node:zlib';

import { encodeNpy } from '../../io/npy.js';
import type { RgbImages, Tensor } from '../../sd/tensor.js';

const deflateAsync = promisify(deflate);
const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(data, crc32(head.subarray(4))), 0);
  return Buffer.concat([head, data, crc]);
}

/** The batch as one 8-bit RGB PNG, images side by side. */
export async function pngStrip(images: RgbImages): Promise<Buffer> {
  const { count, height, width } = images;
  const W = width * count;
  const stride = W * 3 + 1;
  // each scanline: filter type 0 (none), then the row of every image in turn
  const raw = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    for (let i = 0; i < count; i++) {
      const src = (i * height + y) * width * 3;
      raw.set(images.data.subarray(src, src + width * 3), y * stride + 1 + i * width * 3);
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(W, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // bit depth 8, colour type 2 (RGB), deflate, no filter method variants, no interlace
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', await deflateAsync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

export const imagesNpy = (images: RgbImages) => encodeNpy(images.data, [images.count, images.height, images.width, 3]);

export const latentsNpy = (latents: Tensor) => encodeNpy(latents.data, latents.shape);
