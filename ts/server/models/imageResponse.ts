/**
 * img2img's answers: the images as one PNG (side by side, left to right in batch order), as a uint8 .npy
 * [B, H, W, 3], or the final latents as a float32 .npy. PNG compression runs on libuv's threads (pngjs' packer
 * over zlib's asynchronous deflate), not on the event loop.
 */
import pngjs from 'pngjs';

import { encodeNpy } from '../../io/npy.js';
import type { RgbImages, Tensor } from '../../sd/tensor.js';

const { PNG } = pngjs;

/** The batch as one RGB PNG, images side by side. */
export async function pngStrip(images: RgbImages): Promise<Buffer> {
  const { count, height, width } = images;
  const W = width * count;
  const png = new PNG({ width: W, height, colorType: 2, inputColorType: 2, inputHasAlpha: false });
  const rgb = Buffer.alloc(W * height * 3);
  for (let i = 0; i < count; i++) {
    for (let y = 0; y < height; y++) {
      const src = ((i * height + y) * width) * 3;
      rgb.set(images.data.subarray(src, src + width * 3), (y * W + i * width) * 3);
    }
  }
  png.data = rgb;
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    png.pack().on('data', (c: Buffer) => chunks.push(c)).on('end', resolve).on('error', reject);
  });
  return Buffer.concat(chunks);
}

export const imagesNpy = (images: RgbImages) => encodeNpy(images.data, [images.count, images.height, images.width, 3]);

export const latentsNpy = (latents: Tensor) => encodeNpy(latents.data, latents.shape);
