/**
 * A mosaic's canvas from its geometry: the one computation of the figure's size, for renderMosaic (which draws
 * in it) and encode's preflight (which refuses, before any fit, a `mosaic` config whose figures would pass
 * MAX_MOSAIC_PIXELS).
 */
import { textHeight } from './text.js';

/** Slices shown when `maxSlices` is not given. */
export const DEFAULT_MOSAIC_SLICES = 16;

const GAP = 6;
const MARGIN = 14;

export interface MosaicGeometry {
  /** Voxels across and down a slice on screen (the grid's axes nearest world x and y: axisLayout). */
  across: number;
  down: number;
  /** Slices drawn. */
  slices: number;
  /** Pixels per voxel; default: tiles about 180 px wide. */
  scale?: number;
  /** Slices per row; default: a roughly 4:3 figure. */
  columns?: number;
}

export interface MosaicLayout {
  scale: number;
  gap: number;
  margin: number;
  tileW: number;
  tileH: number;
  /** Height of a slice's z label. */
  label: number;
  cols: number;
  rows: number;
  cellW: number;
  cellH: number;
  /** The slices' grid, without the margins. */
  gridW: number;
  gridH: number;
  /** Top of the slices' grid (below the title). */
  top: number;
}

/** Where the slices go: the tiles, the rows and columns, and the grid they make. */
export function mosaicLayout(g: MosaicGeometry): MosaicLayout {
  const scale = g.scale ?? Math.max(2, Math.min(12, Math.round(180 / Math.max(g.across, g.down))));
  const tileW = g.across * scale, tileH = g.down * scale;
  const label = textHeight(12);
  const cols = Math.min(g.slices, g.columns ?? Math.max(1, Math.round(Math.sqrt(((g.slices * tileH) / tileW) * 1.4))));
  const rows = Math.ceil(g.slices / cols);
  const cellW = tileW + GAP, cellH = tileH + label + 4 + GAP;
  const top = MARGIN + textHeight(15) + 8;
  return { scale, gap: GAP, margin: MARGIN, tileW, tileH, label, cols, rows, cellW, cellH, gridW: cols * cellW - GAP, gridH: rows * cellH - GAP, top };
}

/** The colour bar's strip right of the slices: the bar, its ticks and their labels (`labelW`: the widest, or the quantity). */
export const colourBarWidth = (labelW: number): number => 30 + 16 + 6 + labelW + 10;

/**
 * The figure's size: the slices, the colour bar with labels `labelW` wide, and `noteLines` lines of note under
 * them (the note wraps at the width, so the renderer measures the width first).
 */
export function mosaicSize(layout: MosaicLayout, labelW: number, noteLines: number): { width: number; height: number } {
  const width = layout.margin * 2 + layout.gridW + colourBarWidth(labelW);
  const noteH = noteLines ? noteLines * textHeight(12) + 8 : 0;
  return { width, height: layout.top + layout.gridH + noteH + layout.margin };
}
