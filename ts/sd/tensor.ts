/** Plain array types of the Diffusion API. */
import { assertNotDetached } from '../detachedBuffer.js';
import { ShapeError } from '../errors.js';

/** A float32 array with its shape, row-major ([B, 4, h, w] latents, [B, 77, D] conditioning). */
export interface Tensor {
  data: Float32Array;
  shape: number[];
}

/** A batch of RGB images, interleaved: data[((i·height + y)·width + x)·3 + channel]. */
export interface RgbImages {
  data: Uint8Array;
  count: number;
  height: number;
  width: number;
}

export function tensor(data: Float32Array, shape: number[]): Tensor {
  assertTensor({ data, shape }, 'tensor', shape.length);
  return { data, shape };
}

/** Throws a ShapeError naming `what` unless t is a Float32Array whose length matches its shape (of the given rank). */
export function assertTensor(t: Tensor, what: string, rank?: number): void {
  if (!t || !(t.data instanceof Float32Array) || !Array.isArray(t.shape)) {
    throw new ShapeError(`${what}: expected {data: Float32Array, shape: number[]}`);
  }
  assertNotDetached(t.data, what);
  if (rank !== undefined && t.shape.length !== rank) {
    throw new ShapeError(`${what}: expected rank ${rank}, got shape [${t.shape.join(', ')}]`);
  }
  if (!t.shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new ShapeError(`${what}: shape [${t.shape.join(', ')}] has a non-integer or negative size`);
  }
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (n !== t.data.length) {
    throw new ShapeError(`${what}: shape [${t.shape.join(', ')}] needs ${n} elements, data has ${t.data.length}`);
  }
}

export function assertRgb(images: RgbImages, what: string): void {
  if (!images || !(images.data instanceof Uint8Array)) throw new ShapeError(`${what}: expected {data: Uint8Array, count, height, width}`);
  assertNotDetached(images.data, what);
  const { count, height, width } = images;
  if (![count, height, width].every((d) => Number.isInteger(d) && d > 0)) {
    throw new ShapeError(`${what}: count, height and width must be positive integers, got ${count}×${height}×${width}`);
  }
  const n = count * height * width * 3;
  if (images.data.length !== n) {
    throw new ShapeError(
      `${what}: ${count}×${height}×${width}×3 needs ${n} bytes, data has ${images.data.length}`,
    );
  }
}

/** Index of the first NaN or ±Inf in `data`, or -1. */
export function firstNonFinite(data: Float32Array): number {
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) return i;
  return -1;
}
