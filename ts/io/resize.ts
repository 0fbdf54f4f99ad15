import { InvalidArgumentError, ShapeError } from '../errors.js';

/** An interleaved RGB uint8 image, row-major (height × width × 3). */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/**
 * Resizes an RGB image: area averaging when shrinking (no aliasing), bilinear when enlarging.
 * Returns the input itself when the size is unchanged.
 */
export function resizeRgb(img: RgbImage, width: number, height = width): RgbImage {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new InvalidArgumentError(`resize: size must be positive integers, got ${width}×${height}`);
  }
  if (img.data.length !== img.width * img.height * 3) {
    throw new ShapeError(`resize: image data has ${img.data.length} bytes, ${img.width}×${img.height}×3 needs ${img.width * img.height * 3}`);
  }
  if (width === img.width && height === img.height) return img;
  const f = resizeRgbFloat(img, width, height);
  const out = new Uint8Array(f.length);
  for (let i = 0; i < f.length; i++) out[i] = Math.min(255, Math.max(0, Math.round(f[i])));
  return { data: out, width, height };
}

/** The same resampling, keeping float values (0–255 scale); used for feature maps too. */
export function resizeRgbFloat(img: RgbImage, width: number, height: number): Float32Array {
  const out = new Float32Array(width * height * 3);
  const xs = axisWeights(img.width, width);
  const ys = axisWeights(img.height, height);
  const src = img.data;
  for (let oy = 0; oy < height; oy++) {
    for (const [sy, wy] of ys[oy]) {
      const rowIn = sy * img.width * 3;
      const rowOut = oy * width * 3;
      for (let ox = 0; ox < width; ox++) {
        for (const [sx, wx] of xs[ox]) {
          const w = wy * wx;
          const i = rowIn + sx * 3;
          const o = rowOut + ox * 3;
          out[o] += w * src[i];
          out[o + 1] += w * src[i + 1];
          out[o + 2] += w * src[i + 2];
        }
      }
    }
  }
  return out;
}

/** For each output index, the source indices and weights (summing to 1). */
function axisWeights(nIn: number, nOut: number): [number, number][][] {
  const out: [number, number][][] = [];
  if (nOut <= nIn) {
    const scale = nIn / nOut;
    for (let o = 0; o < nOut; o++) {
      const a = o * scale;
      const b = a + scale;
      const taps: [number, number][] = [];
      for (let s = Math.floor(a); s < Math.min(nIn, Math.ceil(b)); s++) {
        const w = Math.min(b, s + 1) - Math.max(a, s);
        if (w > 1e-9) taps.push([s, w / scale]);
      }
      out.push(taps);
    }
  } else {
    const scale = nIn / nOut;
    for (let o = 0; o < nOut; o++) {
      const c = Math.min(nIn - 1, Math.max(0, (o + 0.5) * scale - 0.5));
      const s0 = Math.floor(c);
      const s1 = Math.min(nIn - 1, s0 + 1);
      const t = c - s0;
      out.push(s1 === s0 ? [[s0, 1]] : [[s0, 1 - t], [s1, t]]);
    }
  }
  return out;
}
