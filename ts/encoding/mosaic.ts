import { writeFile } from 'node:fs/promises';
import { PNG } from 'pngjs';
import { ShapeError } from '../errors.js';
import type { Grid } from '../io/voxelMask.js';

export interface MosaicOptions {
  /** Colour range; default: 0 to the 99th percentile of |value| (or −v..v when values go below −0.05·v). */
  vmin?: number;
  vmax?: number;
  /** Pixels per voxel. Default 4 (3 for grids wider than 60). */
  scale?: number;
  /** Slices per row. Default: about √(slices · 4/3). */
  columns?: number;
}

/**
 * A PNG of axial slices (z from bottom to top, left to right, top to bottom), anterior up, with a colour bar
 * and its range printed beside it. Values come from a full volume (NaN = not in the map); `background`
 * (same grid) marks brain voxels (> −1, NSD's ROI convention) drawn in grey under the map.
 */
export async function writeMosaic(path: string, grid: Grid, volume: Float32Array, background: Float32Array | null, opts: MosaicOptions = {}): Promise<{ vmin: number; vmax: number }> {
  const [X, Y, Z] = grid;
  if (volume.length !== X * Y * Z) throw new ShapeError(`${path}: volume has ${volume.length} values, grid ${grid.join('×')} needs ${X * Y * Z}`);
  const slices: number[] = [];
  for (let z = 0; z < Z; z++) {
    let any = false;
    for (let i = z * X * Y; i < (z + 1) * X * Y && !any; i++) any = Number.isFinite(volume[i]) || (background !== null && background[i] > -1);
    if (any) slices.push(z);
  }
  if (slices.length === 0) slices.push(Math.floor(Z / 2));
  const finite = Array.from(volume).filter(Number.isFinite).map(Math.abs).sort((a, b) => a - b);
  const hi = finite.length ? finite[Math.min(finite.length - 1, Math.floor(0.99 * finite.length))] || finite[finite.length - 1] || 1 : 1;
  const signed = Array.from(volume).some((v) => v < -0.05 * hi);
  const vmax = opts.vmax ?? hi;
  const vmin = opts.vmin ?? (signed ? -vmax : 0);
  const s = opts.scale ?? (X > 60 ? 3 : 4);
  const cols = opts.columns ?? Math.max(1, Math.round(Math.sqrt((slices.length * 4) / 3)));
  const rowsN = Math.ceil(slices.length / cols);
  const tileW = X * s + 2, tileH = Y * s + 2;
  const barW = 60;
  const W = cols * tileW + barW, H = Math.max(rowsN * tileH, 120);
  const png = new PNG({ width: W, height: H });
  png.data.fill(0);
  for (let q = 3; q < png.data.length; q += 4) png.data[q] = 255;
  const set = (x: number, y: number, [r, g, b]: number[]) => {
    if (x < 0 || y < 0 || x >= W || y >= H) return;
    const o = (y * W + x) * 4;
    png.data[o] = r;
    png.data[o + 1] = g;
    png.data[o + 2] = b;
  };
  const colour = (v: number) => (signed ? diverging((v - vmin) / (vmax - vmin || 1)) : hot((v - vmin) / (vmax - vmin || 1)));
  slices.forEach((z, k) => {
    const ox = (k % cols) * tileW + 1, oy = Math.floor(k / cols) * tileH + 1;
    for (let y = 0; y < Y; y++) {
      for (let x = 0; x < X; x++) {
        const i = x + X * (y + Y * z);
        const v = volume[i];
        let c: number[] | null = null;
        if (Number.isFinite(v)) c = colour(v);
        else if (background && background[i] > -1) c = [70, 70, 70];
        if (!c) continue;
        // anterior (high y) up
        for (let dy = 0; dy < s; dy++) for (let dx = 0; dx < s; dx++) set(ox + x * s + dx, oy + (Y - 1 - y) * s + dy, c);
      }
    }
  });
  // Colour bar with its range.
  const bx = cols * tileW + 8, by0 = 14, by1 = H - 14;
  for (let y = by0; y <= by1; y++) {
    const f = 1 - (y - by0) / (by1 - by0);
    const c = signed ? diverging(f) : hot(f);
    for (let x = bx; x < bx + 12; x++) set(x, y, c);
  }
  drawText(set, bx + 15, by0 - 2, fmt(vmax));
  drawText(set, bx + 15, by1 - 4, fmt(vmin));
  await writeFile(path, PNG.sync.write(png));
  return { vmin, vmax };
}

function fmt(v: number): string {
  return Math.abs(v) >= 100 || (Math.abs(v) < 0.01 && v !== 0) ? v.toExponential(1) : v.toFixed(2);
}

/** Black → red → yellow → white. */
function hot(f: number): number[] {
  const t = Math.max(0, Math.min(1, f));
  return [Math.round(255 * Math.min(1, t * 3)), Math.round(255 * Math.max(0, Math.min(1, t * 3 - 1))), Math.round(255 * Math.max(0, t * 3 - 2))];
}

/** Blue → white → red. */
function diverging(f: number): number[] {
  const t = Math.max(0, Math.min(1, f));
  if (t < 0.5) {
    const u = t / 0.5;
    return [Math.round(40 + 215 * u), Math.round(80 + 175 * u), 255];
  }
  const u = (t - 0.5) / 0.5;
  return [255, Math.round(255 - 215 * u), Math.round(255 - 215 * u)];
}

// 3×5 bitmap digits for the colour-bar labels.
const GLYPHS: Record<string, string> = {
  '0': '111101101101111', '1': '010110010010111', '2': '111001111100111', '3': '111001111001111', '4': '101101111001001',
  '5': '111100111001111', '6': '111100111101111', '7': '111001001001001', '8': '111101111101111', '9': '111101111001111',
  '-': '000000111000000', '.': '000000000000010', e: '000111111100111', '+': '000010111010000',
};

function drawText(set: (x: number, y: number, c: number[]) => void, x0: number, y0: number, text: string): void {
  let x = x0;
  for (const ch of text) {
    const g = GLYPHS[ch];
    if (g) for (let k = 0; k < 15; k++) if (g[k] === '1') set(x + (k % 3), y0 + Math.floor(k / 3), [230, 230, 230]);
    x += 4;
  }
}
