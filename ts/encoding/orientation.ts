/** Where a NIfTI grid's voxels are in the world (RAS+ mm), for labelled figures: the affine and the axis layout. */
import type { NiftiGeometry } from '../io/niftiHeader.js';

/** 3×4, voxel (i, j, k, 1) → world (x, y, z) mm, x to the right, y anterior, z superior (NIfTI's RAS+). */
export type Affine = number[][];

/** The sform when set, else the qform, else the voxel sizes alone (NIfTI's method 1). */
export function voxelToWorld(h: NiftiGeometry): Affine {
  if (h.sformCode > 0) return h.srow.map((r) => [...r]);
  const [dx, dy, dz] = [h.pixdim[1] || 1, h.pixdim[2] || 1, h.pixdim[3] || 1];
  if (h.qformCode > 0) {
    const [b, c, d] = h.quatern;
    const a = Math.sqrt(Math.max(0, 1 - b * b - c * c - d * d));
    const qfac = h.pixdim[0] < 0 ? -1 : 1;
    const R = [
      [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
      [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
      [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b],
    ];
    return R.map((row, i) => [row[0] * dx, row[1] * dy, row[2] * dz * qfac, h.qoffset[i]]);
  }
  return [
    [dx, 0, 0, 0],
    [0, dy, 0, 0],
    [0, 0, dz, 0],
  ];
}

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
