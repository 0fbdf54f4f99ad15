import { describe, expect, it } from 'vitest';

import { cool, niceTicks, renderMosaic, warm } from '../../ts/encoding/mosaic.js';
import { InvalidArgumentError } from '../../ts/errors.js';
import { axisLayout, voxelToWorld } from '../../ts/encoding/orientation.js';
import { drawText, textWidth } from '../../ts/encoding/text.js';
import { geometryFromAffine } from '../../ts/io/niftiHeader.js';

// A 10×12×6 grid of 2 mm voxels. Axis order and signs vary per test, so the figure must follow the affine.
const grid: [number, number, number] = [10, 12, 6];
const at = (x: number, y: number, z: number) => x + 10 * (y + 12 * z);

function pixel(png: { width: number; data: Uint8Array | Buffer }, x: number, y: number): number[] {
  const o = (y * png.width + x) * 4;
  return [png.data[o], png.data[o + 1], png.data[o + 2]];
}

describe('static brain figures', () => {
  it('reads the affine from the sform, else the qform', () => {
    const affine = [[-2, 0, 0, 9], [0, 2, 0, -11], [0, 0, 2, -5], [0, 0, 0, 1]];
    const g = geometryFromAffine(affine);
    expect(voxelToWorld(g)).toEqual(affine.slice(0, 3));
    const q = voxelToWorld({ ...g, sformCode: 0 });
    for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) expect(q[r][c]).toBeCloseTo(affine[r][c], 5);
    expect(axisLayout(affine.slice(0, 3))).toEqual({ axis: [0, 1, 2], sign: [-1, 1, 1] });
  });

  it('draws the neurological view: the subject\'s left on the left, anterior up, over the anatomy', () => {
    // RAS+ grid: voxel x grows to the right, y to the front
    const affine = [[2, 0, 0, -9], [0, 2, 0, -11], [0, 0, 2, -5]];
    const volume = new Float32Array(10 * 12 * 6).fill(NaN);
    volume[at(1, 10, 3)] = 0.9; // left, anterior: near white-yellow
    volume[at(8, 1, 3)] = 0.3; // right, posterior: red
    volume[at(5, 5, 3)] = 0.05; // below the threshold: the anatomy shows
    const underlay = new Float32Array(10 * 12 * 6).map((_, i) => 100 + 100 * (i % 10)); // brighter to the right
    const { png, result } = renderMosaic({ grid, affine, volume, underlay, title: 't', quantity: 'r', colormap: 'warm', vmax: 1, threshold: 0.1, scale: 10 });
    expect(result.sliceMm).toEqual([1]); // the one slice with values: z = 2·3 − 5
    const find = (match: (p: number[]) => boolean) => {
      for (let y = 0; y < png.height; y++) for (let x = 0; x < 14 + 100; x++) if (match(pixel(png, x, y))) return { x, y };
      return null;
    };
    const yellow = find(([r, g, b]) => r > 240 && g > 200 && b < 140)!;
    const red = find(([r, g, b]) => r > 200 && g < 150 && b < 100)!;
    expect(yellow.x).toBeLessThan(red.x); // left is left
    expect(yellow.y).toBeLessThan(red.y); // anterior is up
    expect(red.x - yellow.x).toBe(70);
    expect(red.y - yellow.y).toBe(90);
    // the sub-threshold voxel, 4 voxels right and 5 down of the yellow one, is grey anatomy
    const grey = pixel(png, yellow.x + 45, yellow.y + 55);
    expect(grey[0]).toBe(grey[1]);
    expect(grey[1]).toBe(grey[2]);
    expect(grey[0]).toBeGreaterThan(50);
  });

  it('flips with the affine: a left-pointing x axis puts voxel x = 1 on the right', () => {
    const affine = [[-2, 0, 0, 9], [0, 2, 0, -11], [0, 0, 2, -5]];
    const volume = new Float32Array(10 * 12 * 6).fill(NaN);
    volume[at(1, 6, 2)] = 1;
    const { png } = renderMosaic({ grid, affine, volume, underlay: null, title: 't', quantity: 'r', colormap: 'warm', vmax: 1, scale: 10 });
    let hx = -1;
    for (let y = 0; y < png.height && hx < 0; y++) for (let x = 0; x < 14 + 100; x++) if (pixel(png, x, y)[0] > 200 && pixel(png, x, y)[2] < 120) { hx = x; break; }
    expect(hx - 14).toBeGreaterThan(70); // voxel 1 of 10 from the right edge
  });

  it('colours signed maps blue below zero and warm above, and picks readable ticks', () => {
    expect(cool(0)[2]).toBe(255);
    expect(warm(1)[1]).toBeGreaterThan(warm(0)[1]);
    expect(niceTicks(0, 0.916)).toEqual([0, 0.25, 0.5, 0.75]);
    expect(niceTicks(-0.5, 0.5, 5)).toEqual([-0.5, -0.25, 0, 0.25, 0.5]);
  });

  it('refuses options that cannot draw a figure, naming each (they failed on a null canvas or drew a wrong one)', () => {
    const affine = [[2, 0, 0, -9], [0, 2, 0, -11], [0, 0, 2, -5]];
    const volume = new Float32Array(10 * 12 * 6).fill(NaN);
    const draw = (o: object) => () => renderMosaic({ grid, affine, volume, underlay: null, title: 't', quantity: 'r', colormap: 'warm', ...o });
    for (const v of [NaN, 0, -1, 1025]) expect(draw({ maxSlices: v })).toThrow(new InvalidArgumentError(`mosaic 't' maxSlices: expected an integer in 1..1024, got ${v}`));
    for (const v of [NaN, 0, Infinity, 2.5, 17]) expect(draw({ scale: v })).toThrow(new InvalidArgumentError(`mosaic 't' scale: expected an integer in 1..16, got ${v}`));
    for (const v of [NaN, 0]) expect(draw({ columns: v })).toThrow(new InvalidArgumentError(`mosaic 't' columns: expected an integer in 1..1024, got ${v}`));
    for (const v of [NaN, 0, -1]) expect(draw({ vmax: v })).toThrow(new InvalidArgumentError(`mosaic 't' vmax: expected a finite number > 0, got ${v}`));
    for (const v of [NaN, -1]) expect(draw({ threshold: v })).toThrow(new InvalidArgumentError(`mosaic 't' threshold: expected a finite number >= 0, got ${v}`));
    // a figure past 2^28 pixels is refused before its canvas is allocated
    const big = () => renderMosaic({ grid: [64, 64, 300], affine, volume: new Float32Array(64 * 64 * 300).fill(1), underlay: null, title: 'b', quantity: 'r', colormap: 'warm', vmax: 1, scale: 16, maxSlices: 300, columns: 20 });
    expect(big).toThrow(new InvalidArgumentError("mosaic 'b': a figure of 20711×15768 pixels is over the 268435456-pixel limit; lower scale (16) or maxSlices (300 shown)"));
  });

  it('maxSlices 1 draws the middle slice that holds the map (it divided by maxSlices − 1 = 0: sliceMm [null])', () => {
    const affine = [[2, 0, 0, -9], [0, 2, 0, -11], [0, 0, 2, -5]];
    const volume = new Float32Array(10 * 12 * 6).fill(NaN);
    for (const z of [1, 2, 3, 4]) volume[at(5, 5, z)] = 0.5;
    const draw = (maxSlices: number) => renderMosaic({ grid, affine, volume, underlay: null, title: 't', quantity: 'r', colormap: 'warm', vmax: 1, maxSlices }).result.sliceMm;
    expect(draw(1)).toEqual([1]); // slice 3 of 1..4: z = 2·3 − 5
    expect(draw(2)).toEqual([-3, 3]);
  });

  it('draws text with real glyphs', () => {
    const c = { width: 80, height: 20, data: new Uint8Array(80 * 20 * 4).fill(255) };
    drawText(c, 2, 2, 'z = −3 mm', 12, [0, 0, 0]);
    let dark = 0;
    for (let i = 0; i < c.data.length; i += 4) if (c.data[i] < 128) dark++;
    expect(dark).toBeGreaterThan(40);
    expect(textWidth('z = −3 mm', 12)).toBeGreaterThan(textWidth('z = 3 mm', 12));
  });

  it('scales a map whose 99th percentile is 0 by its largest value, however many voxels it has', () => {
    // a 100 × 100 × 80 region (800,000 voxels) with 40 nonzero: the scale came from Math.max(...values), a spread
    // that overflows the stack past ~120,000 arguments
    const g: [number, number, number] = [100, 100, 80];
    const volume = new Float32Array(100 * 100 * 80);
    for (let k = 0; k < 40; k++) volume[k * 20_000 + 5050] = 0.05 * (k + 1);
    const affine = [[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]];
    const { result } = renderMosaic({ grid: g, affine, volume, underlay: null, title: 't', quantity: 'r', colormap: 'warm', maxSlices: 4 });
    expect(result.vmax).toBeCloseTo(2, 6);
  });
});
