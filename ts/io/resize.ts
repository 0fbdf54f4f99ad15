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
  checkResize(img, width, height);
  if (width === img.width && height === img.height) return img;
  return { data: resample(img, width, height, new Uint8Array(width * height * 3)), width, height };
}

/** The same resampling, keeping float values (0–255 scale); used for feature maps too. */
export function resizeRgbFloat(img: RgbImage, width: number, height: number): Float32Array {
  checkResize(img, width, height);
  return resample(img, width, height, new Float32Array(width * height * 3));
}

export function checkResize(img: RgbImage, width: number, height: number): void {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new InvalidArgumentError(`resize: size must be positive integers, got ${width}×${height}`);
  }
  if (img.data.length !== img.width * img.height * 3) {
    throw new ShapeError(`resize: image data has ${img.data.length} bytes, ${img.width}×${img.height}×3 needs ${img.width * img.height * 3}`);
  }
}

/**
 * The resampling as two passes, rows then columns (the weights are separable): per output pixel the taps of one axis
 * and then of the other, not their product: 2× faster than the 2-D sum at NSD's 512 → 425 px (3 × 3 taps; 13.5 →
 * 7 ms), which the evaluation runs on every sample of every seed. The sums are float64; a uint8 output is rounded
 * (and clamped) once.
 */
function resample<T extends Uint8Array | Float32Array>(img: RgbImage, width: number, height: number, out: T): T {
  const xs = axisTaps(img.width, width);
  const ys = axisTaps(img.height, height);
  const src = img.data;
  const rowIn = img.width * 3, rowOut = width * 3;
  // each source row resampled along x once (a row no output reads is skipped)
  const used = new Uint8Array(img.height);
  for (let i = 0; i < ys.index.length; i++) if (ys.weight[i] !== 0) used[ys.index[i]] = 1;
  const mid = new Float64Array(img.height * rowOut);
  const xt = xs.taps;
  for (let sy = 0; sy < img.height; sy++) {
    if (!used[sy]) continue;
    const si = sy * rowIn, mi = sy * rowOut;
    for (let ox = 0; ox < width; ox++) {
      let r = 0, g = 0, b = 0;
      for (let t = ox * xt; t < (ox + 1) * xt; t++) {
        const w = xs.weight[t], i = si + xs.index[t] * 3;
        r += w * src[i];
        g += w * src[i + 1];
        b += w * src[i + 2];
      }
      const o = mi + ox * 3;
      mid[o] = r;
      mid[o + 1] = g;
      mid[o + 2] = b;
    }
  }
  const yt = ys.taps, round = out instanceof Uint8Array;
  const acc = new Float64Array(rowOut);
  for (let oy = 0; oy < height; oy++) {
    acc.fill(0);
    for (let t = oy * yt; t < (oy + 1) * yt; t++) {
      const w = ys.weight[t];
      if (w === 0) continue;
      const mi = ys.index[t] * rowOut;
      for (let j = 0; j < rowOut; j++) acc[j] += w * mid[mi + j];
    }
    const o = oy * rowOut;
    if (round) for (let j = 0; j < rowOut; j++) out[o + j] = Math.min(255, Math.max(0, Math.round(acc[j])));
    else out.set(acc, o);
  }
  return out;
}

/**
 * For each output index its source indices and weights (summing to 1), `taps` per output (padded with weight 0):
 * output o's are [o·taps, (o + 1)·taps).
 */
function axisTaps(nIn: number, nOut: number): { taps: number; index: Int32Array; weight: Float64Array } {
  const lists: [number, number][][] = [];
  const scale = nIn / nOut;
  for (let o = 0; o < nOut; o++) {
    if (nOut <= nIn) {
      const a = o * scale;
      const b = a + scale;
      const taps: [number, number][] = [];
      for (let s = Math.floor(a); s < Math.min(nIn, Math.ceil(b)); s++) {
        const w = Math.min(b, s + 1) - Math.max(a, s);
        if (w > 1e-9) taps.push([s, w / scale]);
      }
      lists.push(taps);
    } else {
      const c = Math.min(nIn - 1, Math.max(0, (o + 0.5) * scale - 0.5));
      const s0 = Math.floor(c);
      const s1 = Math.min(nIn - 1, s0 + 1);
      const t = c - s0;
      lists.push(s1 === s0 ? [[s0, 1]] : [[s0, 1 - t], [s1, t]]);
    }
  }
  let taps = 1;
  for (const l of lists) taps = Math.max(taps, l.length);
  const index = new Int32Array(nOut * taps), weight = new Float64Array(nOut * taps);
  lists.forEach((l, o) => {
    l.forEach(([s, w], t) => {
      index[o * taps + t] = s;
      weight[o * taps + t] = w;
    });
  });
  return { taps, index, weight };
}
