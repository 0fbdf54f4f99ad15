/** Batches of RGB images for the metrics: checks, resizing, slicing. */
import { assertNotDetached } from '../detachedBuffer.js';
import { ShapeError } from '../errors.js';
import { resizeRgbNativeInto } from '../io/resizeNative.js';
import type { RgbImages } from '../sd/tensor.js';

/** Checks a batch's shape and returns it; `what` names it in the error. */
export function checkImages(images: RgbImages, what: string): RgbImages {
  if (!images || !(images.data instanceof Uint8Array)) throw new ShapeError(`${what}: expected {data: Uint8Array, count, height, width}`);
  assertNotDetached(images.data, what);
  const { count, height, width } = images;
  if (![count, height, width].every((v) => Number.isInteger(v) && v >= 0)) {
    throw new ShapeError(`${what}: count, height and width must be non-negative integers, got ${count}, ${height}, ${width}`);
  }
  if (images.data.length !== count * height * width * 3) {
    throw new ShapeError(`${what}: data has ${images.data.length} bytes but ${count}×${height}×${width}×3 needs ${count * height * width * 3}`);
  }
  return images;
}

/** Image i of a batch as its own view. */
export function imageAt(images: RgbImages, i: number): { data: Uint8Array; width: number; height: number } {
  const n = images.height * images.width * 3;
  return { data: images.data.subarray(i * n, (i + 1) * n), width: images.width, height: images.height };
}

/** The batch resized to size × size (area averaging down, bilinear up); the batch itself when unchanged. */
export function resizeImages(images: RgbImages, size: number): RgbImages {
  if (images.height === size && images.width === size) return images;
  const out = new Uint8Array(images.count * size * size * 3);
  // (in the engine, each image into its place: the same bytes as resizeRgb, ~5× faster; the networks' inputs and the
  // pixel metrics of batches of other sizes)
  const n = size * size * 3;
  for (let i = 0; i < images.count; i++) resizeRgbNativeInto(imageAt(images, i), size, size, out.subarray(i * n, (i + 1) * n));
  return { data: out, count: images.count, height: size, width: size };
}

/** Concatenates batches of one size. */
export function concatImages(batches: RgbImages[]): RgbImages {
  if (batches.length === 0) throw new ShapeError('concatImages: no batches');
  const { height, width } = batches[0];
  for (const b of batches) {
    if (b.height !== height || b.width !== width) throw new ShapeError(`concatImages: ${b.width}×${b.height} differs from ${width}×${height}`);
  }
  const count = batches.reduce((a, b) => a + b.count, 0);
  const data = new Uint8Array(count * height * width * 3);
  let off = 0;
  for (const b of batches) {
    data.set(b.data, off);
    off += b.data.length;
  }
  return { data, count, height, width };
}

/** Two batches must pair image by image. */
export function checkPair(gt: RgbImages, rec: RgbImages, what: string): void {
  checkImages(gt, `${what}: ground truth`);
  checkImages(rec, `${what}: reconstructions`);
  if (gt.count !== rec.count) throw new ShapeError(`${what}: ${gt.count} ground-truth images but ${rec.count} reconstructions`);
  if (gt.count < 1) throw new ShapeError(`${what}: no images`);
}
