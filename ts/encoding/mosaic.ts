/**
 * Static brain figures for papers and e-mail: a PNG of axial slices, the map over an anatomical underlay,
 * neurological view (the subject's left on the left), each slice labelled with its z in mm, orientation labels,
 * and a colour bar with ticks, the quantity and the threshold. Text is drawn from bitmap glyphs (text.ts), so
 * no font or native library is needed.
 */
import { InvalidArgumentError, ShapeError } from '../errors.js';
import type { Grid } from '../io/voxelMask.js';
import { describeNumber } from '../ridge/alphas.js';
import { checkInteger, checkPositive } from '../ridge/options.js';
import { encodeRgbPng, rgbFromRgba } from '../io/pngWrite.js';
import { MAX_MOSAIC_PIXELS, MAX_MOSAIC_SCALE, MAX_MOSAIC_SLICES } from './mosaicBounds.js';
import { DEFAULT_MOSAIC_SLICES, mosaicLayout, mosaicSize } from './mosaicLayout.js';
import { applyAffine, axisLayout, type Affine } from './orientation.js';
import { drawText, textHeight, textWidth, type Canvas } from './text.js';

/** A mosaic's colours: 'warm' for values from 0 up (r, R²), 'diverging' for signed values around 0. */
export type Colormap = 'warm' | 'diverging';

export interface MosaicSpec {
  grid: Grid;
  affine: Affine;
  /** The map on the full grid; NaN where it has no value. */
  volume: Float32Array;
  /** Anatomy on the same grid (T1 or mean EPI), or null: then brain voxels of `brain` are drawn grey. */
  underlay: Float32Array | null;
  /** Brain voxels (> 0) for a plain grey underlay when there is no anatomy, or null. */
  brain?: Float32Array | null;
  title: string;
  /** The colour bar's title, e.g. "r" or "unique R²". */
  quantity: string;
  /** 'warm' for values ≥ 0 (red → yellow), 'diverging' for signed values (blue ← 0 → red/yellow). */
  colormap: Colormap;
  /** Values at or beyond vmax (finite, > 0) get the end colour; default: the 99th percentile of |value|. */
  vmax?: number;
  /** |value| below this (finite, >= 0) is not drawn (the anatomy shows through). Default 0. */
  threshold?: number;
  /** A line under the figure (what the threshold means, the data). */
  note?: string;
  /** Slices to show at most (evenly spread over the slices that hold the map; 1: the middle one), 1..1024. Default 16. */
  maxSlices?: number;
  /** Pixels per voxel, an integer 1..16. Default: tiles about 180 px wide. */
  scale?: number;
  /** Slices per row, 1..1024. Default: a roughly 4:3 figure. */
  columns?: number;
}

export interface MosaicResult {
  width: number;
  height: number;
  vmax: number;
  threshold: number;
  /** World z (mm) of each slice shown. */
  sliceMm: number[];
}

type Rgb = [number, number, number];

/** Red → orange → yellow for t in [0, 1]. */
export function warm(t: number): Rgb {
  const u = Math.max(0, Math.min(1, t));
  return [Math.round(200 + 55 * Math.min(1, u * 2)), Math.round(30 + 205 * u), Math.round(20 + 60 * Math.max(0, u - 0.6) * 2.5)];
}

/** Blue → light blue for t in [0, 1] (the negative side). */
export function cool(t: number): Rgb {
  const u = Math.max(0, Math.min(1, t));
  return [Math.round(30 + 90 * u), Math.round(80 + 150 * u), 255];
}

/** Nice tick values covering [lo, hi]: steps of 1, 2 or 5 × 10^n, about `count` of them. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, count - 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

function tickLabel(v: number, step: number): string {
  const mag = Math.floor(Math.log10(step) + 1e-9);
  // 0.25-style steps need one more decimal than their magnitude
  const extra = Math.abs(step / 10 ** mag - Math.round(step / 10 ** mag)) > 1e-6 ? 1 : 0;
  const decimals = Math.max(0, Math.min(4, -mag + extra));
  return v.toFixed(decimals).replace('-', '−');
}

/** Splits text at spaces into lines no wider than `width` pixels. */
function wrapText(text: string, width: number, size: 12 | 15): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    const next = line ? `${line} ${word}` : word;
    if (line && textWidth(next, size) > width) {
      lines.push(line);
      line = word;
    } else line = next;
  }
  if (line) lines.push(line);
  return lines;
}

function zLabel(mm: number, step: number): string {
  const whole = Math.abs(step - Math.round(step)) < 1e-6;
  return (whole ? String(Math.round(mm)) : mm.toFixed(1)).replace('-', '−');
}

function percentile(values: number[], f: number): number {
  if (!values.length) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.round(f * (s.length - 1))))];
}

const BG: Rgb = [255, 255, 255];
const INK: Rgb = [25, 25, 25];
const MUTED: Rgb = [90, 90, 90];

/**
 * Renders the figure as RGBA pixels (a plain `Canvas`, so the public types name no PNG library);
 * `mosaicPng` encodes it.
 */
export function renderMosaic(spec: MosaicSpec): { png: Canvas; result: MosaicResult } {
  const [X, Y, Z] = spec.grid;
  const n = X * Y * Z;
  if (spec.volume.length !== n) throw new ShapeError(`mosaic '${spec.title}': the map has ${spec.volume.length} values, grid ${spec.grid.join('×')} needs ${n}`);
  if (spec.underlay && spec.underlay.length !== n) throw new ShapeError(`mosaic '${spec.title}': the underlay has ${spec.underlay.length} values, grid ${spec.grid.join('×')} needs ${n}`);
  // checked here, the one entry (mosaicPng draws through it): NaN, 0 or Infinity failed later on a null canvas
  const what = `mosaic '${spec.title}'`;
  if (spec.maxSlices !== undefined) checkInteger(spec.maxSlices, 'maxSlices', what, 1, MAX_MOSAIC_SLICES);
  if (spec.scale !== undefined) checkInteger(spec.scale, 'scale', what, 1, MAX_MOSAIC_SCALE);
  if (spec.columns !== undefined) checkInteger(spec.columns, 'columns', what, 1, MAX_MOSAIC_SLICES);
  if (spec.vmax !== undefined) checkPositive(spec.vmax, 'vmax', what);
  if (spec.threshold !== undefined && !(typeof spec.threshold === 'number' && Number.isFinite(spec.threshold) && spec.threshold >= 0)) {
    throw new InvalidArgumentError(`${what} threshold: expected a finite number >= 0, got ${describeNumber(spec.threshold)}`);
  }
  const { axis, sign } = axisLayout(spec.affine);
  const dims = [X, Y, Z];
  const [ax, ay, az] = axis;
  const W = dims[ax], H = dims[ay], S = dims[az];
  const index = (u: number, v: number, s: number) => {
    // screen column u grows to the subject's right, screen row v grows posterior (anterior up)
    const c = [0, 0, 0];
    c[ax] = sign[0] > 0 ? u : W - 1 - u;
    c[ay] = sign[1] > 0 ? H - 1 - v : v;
    c[az] = sign[2] > 0 ? s : S - 1 - s;
    return c[0] + X * (c[1] + Y * c[2]);
  };

  // slices (bottom to top) that hold the map, evenly thinned to maxSlices
  const filled: number[] = [];
  for (let s = 0; s < S; s++) {
    let any = false;
    for (let v = 0; v < H && !any; v++) for (let u = 0; u < W && !any; u++) any = Number.isFinite(spec.volume[index(u, v, s)]);
    if (any) filled.push(s);
  }
  if (!filled.length) filled.push(Math.floor(S / 2));
  const maxSlices = spec.maxSlices ?? DEFAULT_MOSAIC_SLICES;
  // one slice: the middle one (the spread below would divide by maxSlices − 1 = 0)
  const slices =
    filled.length <= maxSlices ? filled
    : maxSlices === 1 ? [filled[Math.floor(filled.length / 2)]]
    : Array.from({ length: maxSlices }, (_, k) => filled[Math.round((k * (filled.length - 1)) / (maxSlices - 1))]);

  const finite: number[] = [];
  let largest = 1e-6; // (a loop, not Math.max(...finite): a spread of a large region's voxels overflows the stack)
  for (const v of spec.volume) {
    if (!Number.isFinite(v)) continue;
    finite.push(Math.abs(v));
    largest = Math.max(largest, Math.abs(v));
  }
  const vmax = spec.vmax ?? (percentile(finite, 0.99) || largest);
  const threshold = spec.threshold ?? 0;
  const signed = spec.colormap === 'diverging';

  // underlay contrast: 2nd–98th percentile of the anatomy inside the brain
  let uLo = 0, uHi = 1;
  if (spec.underlay) {
    const inside: number[] = [];
    for (let i = 0; i < n; i += Math.max(1, Math.floor(n / 200_000))) if (spec.underlay[i] > 0) inside.push(spec.underlay[i]);
    uLo = percentile(inside, 0.02);
    uHi = percentile(inside, 0.98);
    if (!(uHi > uLo)) uHi = uLo + 1;
  }

  const layout = mosaicLayout({ across: W, down: H, slices: slices.length, scale: spec.scale, columns: spec.columns });
  const { scale, tileW, tileH, label, cols, cellW, cellH, gridW, gridH, margin, top } = layout;
  const barH = Math.max(140, Math.min(320, gridH - 40));
  const ticks = signed ? niceTicks(-vmax, vmax, 5) : niceTicks(0, vmax, 5);
  const step = ticks.length > 1 ? ticks[1] - ticks[0] : vmax;
  const tickW = Math.max(...ticks.map((t) => textWidth(tickLabel(t, step), 12)), textWidth(spec.quantity, 12));
  const { width } = mosaicSize(layout, tickW, 0);
  const noteLines = spec.note ? wrapText(spec.note, width - 2 * margin, 12) : [];
  const { height } = mosaicSize(layout, tickW, noteLines.length);
  if (width * height > MAX_MOSAIC_PIXELS) {
    throw new InvalidArgumentError(`${what}: a figure of ${width}×${height} pixels is over the ${MAX_MOSAIC_PIXELS}-pixel limit; lower scale (${scale}) or maxSlices (${slices.length} shown)`);
  }
  const png: Canvas = { width, height, data: new Uint8Array(width * height * 4) };
  const c = png;
  for (let i = 0; i < png.data.length; i += 4) {
    png.data[i] = BG[0];
    png.data[i + 1] = BG[1];
    png.data[i + 2] = BG[2];
    png.data[i + 3] = 255;
  }
  const fill = (x0: number, y0: number, w: number, h: number, rgb: Rgb) => {
    for (let y = Math.max(0, y0); y < Math.min(height, y0 + h); y++) {
      for (let x = Math.max(0, x0); x < Math.min(width, x0 + w); x++) {
        const o = (y * width + x) * 4;
        png.data[o] = rgb[0];
        png.data[o + 1] = rgb[1];
        png.data[o + 2] = rgb[2];
      }
    }
  };
  const colourOf = (v: number): Rgb | null => {
    if (!Number.isFinite(v) || Math.abs(v) < threshold || (!signed && v < 0)) return null;
    const span = vmax - threshold || 1;
    const t = (Math.min(Math.abs(v), vmax) - threshold) / span;
    return v < 0 ? cool(t) : warm(t);
  };

  drawText(c, margin, margin, spec.title, 15, INK);
  // slice spacing in mm: whole millimetres when the voxels are, else one decimal
  const sliceStep = Math.hypot(spec.affine[0][az], spec.affine[1][az], spec.affine[2][az]);
  const sliceMm: number[] = [];
  slices.forEach((s, k) => {
    const x0 = margin + (k % cols) * cellW;
    const y0 = top + Math.floor(k / cols) * cellH;
    fill(x0, y0, tileW, tileH, [0, 0, 0]);
    for (let v = 0; v < H; v++) {
      for (let u = 0; u < W; u++) {
        const i = index(u, v, s);
        let rgb: Rgb | null = colourOf(spec.volume[i]);
        if (!rgb) {
          if (spec.underlay) {
            const g = Math.round(255 * Math.max(0, Math.min(1, (spec.underlay[i] - uLo) / (uHi - uLo))));
            rgb = [g, g, g];
          } else if (spec.brain && spec.brain[i] > 0) rgb = [110, 110, 110];
          else rgb = [0, 0, 0];
        }
        fill(x0 + u * scale, y0 + v * scale, scale, scale, rgb);
      }
    }
    // the slice's world z at the grid's centre
    const centre = [(X - 1) / 2, (Y - 1) / 2, (Z - 1) / 2];
    centre[az] = sign[2] > 0 ? s : S - 1 - s;
    const zmm = applyAffine(spec.affine, centre[0], centre[1], centre[2])[2];
    sliceMm.push(zmm);
    drawText(c, x0 + tileW / 2, y0 + tileH + 2, `z = ${zLabel(zmm, sliceStep)} mm`, 12, MUTED, 'middle');
    if (k === 0) {
      // orientation labels on the first slice, in white over the black background
      drawText(c, x0 + 3, y0 + tileH / 2 - label / 2, 'L', 12, [255, 255, 255]);
      drawText(c, x0 + tileW - 3, y0 + tileH / 2 - label / 2, 'R', 12, [255, 255, 255], 'end');
      drawText(c, x0 + tileW / 2, y0 + 2, 'A', 12, [255, 255, 255], 'middle');
      drawText(c, x0 + tileW / 2, y0 + tileH - label - 1, 'P', 12, [255, 255, 255], 'middle');
    }
  });

  // colour bar: gradient, the sub-threshold band in grey, ticks with labels, the quantity on top
  const bx = margin + gridW + 30;
  const by = top + label + 6;
  drawText(c, bx + 8, top, spec.quantity, 12, INK, 'middle');
  const lo = signed ? -vmax : 0;
  const valueAt = (y: number) => vmax - ((y - by) / (barH - 1)) * (vmax - lo);
  for (let y = by; y < by + barH; y++) {
    const v = valueAt(y);
    const rgb = Math.abs(v) < threshold ? ([215, 215, 215] as Rgb) : v < 0 ? cool((Math.abs(v) - threshold) / (vmax - threshold || 1)) : warm((v - threshold) / (vmax - threshold || 1));
    fill(bx, y, 16, 1, rgb);
  }
  fill(bx - 1, by - 1, 18, 1, MUTED);
  fill(bx - 1, by + barH, 18, 1, MUTED);
  fill(bx - 1, by - 1, 1, barH + 2, MUTED);
  fill(bx + 16, by - 1, 1, barH + 2, MUTED);
  for (const t of ticks) {
    const y = Math.round(by + ((vmax - t) / (vmax - lo)) * (barH - 1));
    fill(bx + 16, y, 5, 1, INK);
    drawText(c, bx + 24, y - label / 2, tickLabel(t, step), 12, INK);
  }
  noteLines.forEach((line, k) => drawText(c, margin, top + gridH + 8 + k * textHeight(12), line, 12, MUTED));
  return { png, result: { width, height, vmax, threshold, sliceMm } };
}

/** Renders the figure and returns the PNG bytes (8-bit RGB). */
export function mosaicPng(spec: MosaicSpec): { bytes: Buffer; result: MosaicResult } {
  const { png: image, result } = renderMosaic(spec);
  // 8-bit RGB (colour type 2), as every PNG brainlatent writes: the figure is opaque, its alpha all 255
  return { bytes: encodeRgbPng(rgbFromRgba(image.data, image.width * image.height), image.width, image.height), result };
}
