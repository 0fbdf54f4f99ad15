/**
 * The PNG writer (ts/io/pngWrite): the very bytes pngjs 7 writes with its defaults, for images whose rows each of the
 * five filters wins (flat, gradients, noise, a photograph-like field), at sizes where the first pixel and the first
 * row are most of the image; a mosaic's figure likewise; bad dimensions refused.
 */
import { inflateSync } from 'node:zlib';

import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';

import { encodeRgbPng } from '../../ts/io/pngWrite.js';
import { renderMosaic, mosaicPng, type MosaicSpec } from '../../ts/encoding/mosaic.js';

/** pngjs's file of the same RGB pixels (its defaults: adaptive filters, deflate level 9, run-length strategy). */
const pngjsBytes = (rgb: Uint8Array, width: number, height: number) =>
  PNG.sync.write({ width, height, data: Buffer.from(rgb.buffer, rgb.byteOffset, width * height * 3) } as PNG, { colorType: 2, inputColorType: 2, inputHasAlpha: false });

/** A seeded generator (the images are the same on every run). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

const KINDS = {
  flat: () => 77,
  horizontal: (x: number) => x * 5,
  vertical: (_x: number, y: number) => y * 7,
  diagonal: (x: number, y: number, c: number) => x * 3 + y * 2 + c * 40,
  noise: (_x: number, _y: number, _c: number, r: () => number) => Math.floor(r() * 256),
  photo: (x: number, y: number, c: number, r: () => number) => Math.floor(128 + 60 * Math.sin(x / 9 + c) + 50 * Math.cos(y / 13) + 12 * r()),
} satisfies Record<string, (x: number, y: number, c: number, r: () => number) => number>;

function image(width: number, height: number, kind: keyof typeof KINDS): Uint8Array {
  const r = lcg(width * 1000 + height), f = KINDS[kind], out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) for (let c = 0; c < 3; c++) out[(y * width + x) * 3 + c] = f(x, y, c, r) & 255;
  return out;
}

/** The filter type of each row, read back from the file's inflated data. */
function rowFilters(png: Buffer, width: number, height: number): number[] {
  const raw = inflateSync(png.subarray(41, png.length - 16));
  return Array.from({ length: height }, (_, y) => raw[y * (width * 3 + 1)]);
}

describe('encodeRgbPng', () => {
  it("writes pngjs's bytes exactly, at every size and kind of image", () => {
    const used = new Set<number>();
    for (const [w, h] of [[1, 1], [1, 9], [9, 1], [2, 3], [7, 5], [64, 64], [101, 37]]) {
      for (const kind of Object.keys(KINDS) as (keyof typeof KINDS)[]) {
        const rgb = image(w, h, kind);
        const ours = encodeRgbPng(rgb, w, h);
        expect(ours.equals(pngjsBytes(rgb, w, h)), `${w}×${h} ${kind}`).toBe(true);
        for (const f of rowFilters(ours, w, h)) used.add(f);
        // and it reads back as the same pixels
        const back = PNG.sync.read(ours).data;
        expect(Buffer.from(rgb).equals(Buffer.from(Uint8Array.from({ length: w * h * 3 }, (_, i) => back[Math.floor(i / 3) * 4 + (i % 3)]))), `${w}×${h} ${kind} read back`).toBe(true);
      }
    }
    expect([...used].sort()).toEqual([0, 1, 2, 3, 4]); // every filter chosen somewhere: each path compared
  });

  it('reads only the first width·height·3 bytes of a longer array, at its offset', () => {
    const rgb = image(13, 11, 'photo');
    const inside = new Uint8Array(rgb.length + 20);
    inside.set(rgb, 7);
    expect(encodeRgbPng(inside.subarray(7), 13, 11).equals(pngjsBytes(rgb, 13, 11))).toBe(true);
  });

  it("encodes a mosaic's figure as pngjs did from its RGBA canvas", () => {
    const grid: [number, number, number] = [9, 8, 5];
    const volume = Float32Array.from({ length: 9 * 8 * 5 }, (_, i) => Math.sin(i / 7));
    const spec: MosaicSpec = { grid, affine: [[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0]], volume, underlay: null, title: 't', quantity: 'r', colormap: 'diverging', scale: 3 };
    const { png: canvas } = renderMosaic(spec);
    const png = new PNG({ width: canvas.width, height: canvas.height });
    png.data.set(canvas.data);
    expect(mosaicPng(spec).bytes.equals(PNG.sync.write(png, { colorType: 2 }))).toBe(true);
  });

  it('refuses dimensions that are not positive integers, and too few bytes', () => {
    expect(() => encodeRgbPng(new Uint8Array(3), 0, 1)).toThrow(/positive integer dimensions, got 0 × 1/);
    expect(() => encodeRgbPng(new Uint8Array(3), 1.5, 1)).toThrow(/positive integer dimensions/);
    expect(() => encodeRgbPng(new Uint8Array(11), 2, 2)).toThrow(/11 bytes for 2 × 2 RGB pixels \(12 needed\)/);
  });
});
