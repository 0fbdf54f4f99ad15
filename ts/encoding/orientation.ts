/** Where a NIfTI grid's voxels are in the world (RAS+ mm), for labelled figures: the affine and the axis layout. */
import type { Affine } from '../io/niftiHeader.js';

export { voxelToWorld, type Affine } from '../io/niftiHeader.js';

export function applyAffine(a: Affine, i: number, j: number, k: number): [number, number, number] {
  return [0, 1, 2].map((r) => a[r][0] * i + a[r][1] * j + a[r][2] * k + a[r][3]) as [number, number, number];
}

/**
 * For each world axis (x, y, z), the voxel axis that runs closest to it and whether the voxel index grows in the
 * world axis's direction. Oblique grids are shown along their nearest axes (a figure convention, like nilearn's).
 */
export function axisLayout(a: Affine): { axis: [number, number, number]; sign: [number, number, number] } {
  const axis: number[] = [];
  const sign: number[] = [];
  const used = new Set<number>();
  for (let w = 0; w < 3; w++) {
    let best = -1;
    for (let v = 0; v < 3; v++) if (!used.has(v) && (best < 0 || Math.abs(a[w][v]) > Math.abs(a[w][best]))) best = v;
    used.add(best);
    axis.push(best);
    sign.push(a[w][best] < 0 ? -1 : 1);
  }
  return { axis: axis as [number, number, number], sign: sign as [number, number, number] };
}
