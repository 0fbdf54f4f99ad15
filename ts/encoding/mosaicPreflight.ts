/**
 * encode's mosaics against MAX_MOSAIC_PIXELS before any fit. The config alone cannot tell: a figure grows with
 * the slices' size in voxels and the number of slices that hold voxels, which only the mask says (every scale,
 * slices and columns the schema takes draws a small figure of a small grid). So the preflight checks it once it
 * has read nsd.roi, before the extraction and the fits; unchecked, the report stage refused the figure after them.
 */
import type { EncodeConfig } from '../config/encode.js';
import { fieldLabel } from '../config/problems.js';
import type { NiftiHeader } from '../io/niftiHeader.js';
import type { VoxelMask } from '../io/voxelMask.js';
import { MAX_MOSAIC_PIXELS } from './mosaicBounds.js';
import { DEFAULT_MOSAIC_SLICES, mosaicLayout, mosaicSize } from './mosaicLayout.js';
import { axisLayout, voxelToWorld } from './orientation.js';
import { textWidth } from './text.js';

/** Slices along the grid's axial axis (`az`) that hold a voxel of the mask. */
function heldSlices(mask: VoxelMask, az: number): number {
  const [X, Y] = mask.grid;
  const held = new Set<number>();
  for (const i of mask.indices) held.add(az === 0 ? i % X : az === 1 ? Math.floor(i / X) % Y : Math.floor(i / (X * Y)));
  return held.size;
}

/**
 * The problem with the config's `mosaic` for maps on `region` (the mask and the header the maps are written
 * with), or null. The maps hold values on the mask's voxels, so each figure shows the mask's slices (at most
 * mosaic.slices). Its colour-bar labels and its note depend on the map's values: the size checked is the least
 * any figure has (labels as narrow as "0", which every bar's ticks hold; one line of note, which every figure
 * has), so a config refused here is refused by renderMosaic too, and the few pixels left are its to refuse.
 */
export function mosaicPixelsProblem(
  c: Pick<EncodeConfig, 'mosaic' | 'nsd'>,
  region: { mask: VoxelMask; header: NiftiHeader },
  source = 'config',
): string | null {
  const { axis } = axisLayout(voxelToWorld(region.header));
  const grid = region.mask.grid;
  const held = Math.max(1, heldSlices(region.mask, axis[2]));
  const m = c.mosaic;
  const slices = Math.min(held, m.slices ?? DEFAULT_MOSAIC_SLICES);
  const layout = mosaicLayout({ across: grid[axis[0]], down: grid[axis[1]], slices, scale: m.scale, columns: m.columns });
  const { width, height } = mosaicSize(layout, textWidth('0', 12), 1);
  if (width * height <= MAX_MOSAIC_PIXELS) return null;
  const given = (v: number | undefined) => (v === undefined ? ' (default)' : '');
  const fields =
    `${fieldLabel(source, ['mosaic', 'scale'])} ${layout.scale}${given(m.scale)}, mosaic.slices ${m.slices ?? DEFAULT_MOSAIC_SLICES}${given(m.slices)}` +
    (m.columns === undefined ? '' : `, mosaic.columns ${m.columns}`);
  return (
    `${fields}: each map's figure would be at least ${width}×${height} = ${width * height} pixels ` +
    `(${slices} slices of ${grid[axis[0]]}×${grid[axis[1]]} voxels, of the ${held} that hold voxels of nsd.roi '${c.nsd.roi}', ${layout.cols} per row), ` +
    `over the limit of ${MAX_MOSAIC_PIXELS} pixels (2^28, 1 GiB of RGBA) that the report stage would refuse after every fit; lower mosaic.scale or mosaic.slices`
  );
}
