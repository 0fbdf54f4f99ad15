/**
 * resizeRgb / resizeRgbFloat (two separable passes) against a plain float64 reference of the same resampling: area
 * averaging along an axis that shrinks, bilinear (pixel centres aligned) along one that grows, at NSD's 512 → 425,
 * odd sizes, one axis shrinking while the other grows, and to and from a single pixel; and the engine's port of it
 * (resizeRgbNative, which readPngsAt uses) byte for byte against it.
 */
import { describe, expect, it } from 'vitest';

import { resizeRgb, resizeRgbFloat, type RgbImage } from '../../ts/io/resize.js';
import { resizeRgbNative } from '../../ts/io/resizeNative.js';

/** Weight of source index s in output o along an axis of nIn → nOut samples. */
function weight(s: number, o: number, nIn: number, nOut: number): number {
  const scale = nIn / nOut;
  if (nOut <= nIn) {
    // the overlap of source pixel [s, s + 1) with output pixel o's footprint [o·scale, (o + 1)·scale), normalised
    const overlap = Math.max(0, Math.min(s + 1, (o + 1) * scale) - Math.max(s, o * scale));
    return overlap / scale;
  }
  const c = Math.min(nIn - 1, Math.max(0, (o + 0.5) * scale - 0.5));
  const s0 = Math.floor(c), t = c - s0;
  if (s === s0) return s0 + 1 <= nIn - 1 ? 1 - t : 1;
  return s === s0 + 1 ? t : 0;
}

function reference(img: RgbImage, width: number, height: number): Float64Array {
  const out = new Float64Array(width * height * 3);
  for (let oy = 0; oy < height; oy++) {
    for (let ox = 0; ox < width; ox++) {
      for (let sy = 0; sy < img.height; sy++) {
        const wy = weight(sy, oy, img.height, height);
        if (wy === 0) continue;
        for (let sx = 0; sx < img.width; sx++) {
          const w = wy * weight(sx, ox, img.width, width);
          for (let c = 0; c < 3; c++) out[(oy * width + ox) * 3 + c] += w * img.data[(sy * img.width + sx) * 3 + c];
        }
      }
    }
  }
  return out;
}

function image(width: number, height: number, seed: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    data[i] = s >>> 24;
  }
  return { data, width, height };
}

describe('resizeRgb', () => {
  const cases: [number, number, number, number][] = [
    [64, 64, 53, 53], // NSD's 512 → 425 in miniature (a ratio of 1.2)
    [24, 24, 17, 17],
    [5, 3, 13, 7], // growing both ways
    [31, 9, 11, 20], // x shrinks, y grows
    [1, 1, 4, 3],
    [7, 5, 1, 1],
    [10, 10, 5, 5], // exact 2× area average
  ];
  for (const [w0, h0, w, h] of cases) {
    it(`${w0}×${h0} → ${w}×${h}: the float64 reference's values`, () => {
      const img = image(w0, h0, w0 * 100 + h0);
      const ref = reference(img, w, h);
      const f = resizeRgbFloat(img, w, h);
      expect(f.length).toBe(ref.length);
      let worst = 0;
      for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(f[i] - ref[i]));
      // (float32 storage of values up to 255: ~1.5e-5)
      expect(worst).toBeLessThan(3e-5);
      const u = resizeRgb(img, w, h);
      expect([u.width, u.height]).toEqual([w, h]);
      for (let i = 0; i < ref.length; i++) {
        if (Math.abs((ref[i] % 1) - 0.5) < 1e-6) continue; // (a tie either way)
        if (u.data[i] !== Math.round(ref[i])) expect([i, u.data[i]]).toEqual([i, Math.round(ref[i])]);
      }
    });
  }

  it('512 → 425 (NSD): the reference at a sample of pixels', () => {
    const img = image(512, 512, 3);
    const u = resizeRgb(img, 425);
    const f = resizeRgbFloat(img, 425, 425);
    for (const [ox, oy] of [[0, 0], [424, 424], [1, 200], [211, 17], [300, 423]]) {
      for (let c = 0; c < 3; c++) {
        let v = 0;
        for (let sy = 0; sy < 512; sy++) {
          const wy = weight(sy, oy, 512, 425);
          if (wy) for (let sx = 0; sx < 512; sx++) v += wy * weight(sx, ox, 512, 425) * img.data[(sy * 512 + sx) * 3 + c];
        }
        const i = (oy * 425 + ox) * 3 + c;
        expect(Math.abs(f[i] - v)).toBeLessThan(3e-5);
        expect(u.data[i]).toBe(Math.round(v));
      }
    }
  });

  it('returns the image itself at its own size, and refuses a size that is not a positive integer', () => {
    const img = image(4, 4, 1);
    expect(resizeRgb(img, 4)).toBe(img);
    expect(() => resizeRgb(img, 2.5)).toThrow('resize: size must be positive integers, got 2.5×2.5');
    expect(() => resizeRgbFloat(img, 3, 0)).toThrow('resize: size must be positive integers, got 3×0');
    expect(() => resizeRgb({ data: new Uint8Array(5), width: 2, height: 1 }, 1)).toThrow('resize: image data has 5 bytes, 2×1×3 needs 6');
  });
});

describe('resizeRgbNative (native/core/src/image_resize.cpp)', () => {
  it("gives resizeRgb's bytes: NSD's 512 → 425 and 425 → 512, 640 × 480 → 425, odd sizes, one axis each way, one pixel", () => {
    const cases: [number, number, number, number][] = [
      [512, 512, 425, 425],
      [425, 425, 512, 512],
      [640, 480, 425, 425],
      [64, 64, 53, 53],
      [100, 100, 99, 101],
      [31, 9, 11, 20],
      [17, 29, 31, 11],
      [5, 3, 13, 7],
      [13, 1, 1, 13],
      [1, 1, 4, 3],
      [7, 5, 1, 1],
      [10, 10, 5, 5],
      [3, 3, 3, 2],
    ];
    for (const [w0, h0, w, h] of cases) {
      const img = image(w0, h0, w0 * 7 + h0);
      const ts = resizeRgb(img, w, h);
      const native = resizeRgbNative(img, w, h);
      expect([native.width, native.height]).toEqual([w, h]);
      expect(Buffer.compare(Buffer.from(native.data), Buffer.from(ts.data)), `${w0}×${h0} → ${w}×${h}`).toBe(0);
    }
  });

  it('rounds halves up and clamps as the TypeScript does (values at .5, 0 and 255)', () => {
    // 2 → 1 px averages of two bytes: every x.5 (ties, rounded up), and the extremes
    const img: RgbImage = { data: new Uint8Array(2 * 1 * 3), width: 2, height: 1 };
    for (const [a, b] of [[0, 1], [0, 0], [254, 255], [255, 255], [100, 101], [7, 8]]) {
      img.data.set([a, a, a, b, b, b]);
      expect(Array.from(resizeRgbNative(img, 1, 1).data)).toEqual(Array.from(resizeRgb(img, 1, 1).data));
    }
  });

  it('returns the image itself at its own size, and refuses what resizeRgb refuses', () => {
    const img = image(4, 4, 1);
    expect(resizeRgbNative(img, 4)).toBe(img);
    expect(() => resizeRgbNative(img, 2.5)).toThrow('resize: size must be positive integers, got 2.5×2.5');
    expect(() => resizeRgbNative({ data: new Uint8Array(5), width: 2, height: 1 }, 1)).toThrow('resize: image data has 5 bytes, 2×1×3 needs 6');
  });
});
