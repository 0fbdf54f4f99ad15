/**
 * The bounds of a mosaic's options, one place for renderMosaic and the encode config's `mosaic` (which refuses them
 * up front, not at the maps stage after every fit). No imports: the config schema reads these too.
 */

/**
 * The most pixels per voxel. The default tops out at 12 (tiles about 180 px wide); at 16 a 1 mm NSD grid's 16 slices
 * already make a figure of about 110 megapixels (440 MB of RGBA before the PNG is encoded).
 */
export const MAX_MOSAIC_SCALE = 16;

/** The most slices (and slices per row): more than any brain grid's axial slices (NSD's 1 mm grid has 148). */
export const MAX_MOSAIC_SLICES = 1024;

/** The largest figure drawn, in pixels: 2^28 (1 GiB of RGBA), past which the canvas cannot be held or encoded. */
export const MAX_MOSAIC_PIXELS = 2 ** 28;
