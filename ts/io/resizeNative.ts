/**
 * resizeRgb in the engine (native/core/src/image_resize.cpp ports it operation for operation: the same bytes) for
 * the evaluation, which resizes every sample of every seed as it reads it and again for each feature network's
 * input: 512 → 425 px in ~2 ms against ~11 ms in TypeScript. Synchronous: it runs on the calling thread, a
 * readPngsAt thread's (ts/io/pngThread.ts) or the caller's.
 */
import { nativeSync } from '../native/call.js';
import { checkResize, type RgbImage } from './resize.js';

export function resizeRgbNative(img: RgbImage, width: number, height = width): RgbImage {
  checkResize(img, width, height);
  if (width === img.width && height === img.height) return img;
  const data = new Uint8Array(width * height * 3);
  resizeRgbNativeInto(img, width, height, data);
  return { data, width, height };
}

/** The same into `dst` (width × height × 3 bytes, e.g. an image's place in a batch), without a copy. */
export function resizeRgbNativeInto(img: RgbImage, width: number, height: number, dst: Uint8Array): void {
  checkResize(img, width, height);
  nativeSync((b) => b.imageResizeRgb(img.data, img.width, img.height, dst, width, height));
}
