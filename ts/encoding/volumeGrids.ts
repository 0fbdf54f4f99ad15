/**
 * encode's other volumes read voxel by voxel with the mask's flat indices: the region table's atlases and the
 * noise-ceiling file. One on another grid than the betas gave each mask voxel another voxel's label or ncsnr
 * (same dimensions, another affine) or was only found late (other dimensions: the atlas left out of regions.csv,
 * the ceiling stage failing after the extract); the preflight now refuses it as it refuses the mask.
 */
import { existsSync } from 'node:fs';

import type { EncodeConfig } from '../config/encode.js';
import { niftiGrid, readNiftiHeader } from '../io/nifti.js';
import { maskGridMismatch, type BetasGrid } from '../nsd/grid.js';
import { ncsnrPath, roiPath } from '../nsd/paths.js';

interface Volume {
  field: string;
  path: string;
  what: string;
  /** 'atlas': one of NSD's files for the subject, checked by dimensions only (as maskGridMismatch does). */
  kind: 'atlas' | 'file';
}

/**
 * The grid problem of each atlas in `regions` and of the noise-ceiling file that exist (absent ones are reported
 * elsewhere), each naming its config key and file. Atlas names pick any .nii.gz in the subject's roi folder, so
 * their affine is checked too; noiseCeiling 'auto' reads NSD's ncsnr.nii.gz beside the betas, checked by
 * dimensions only, as NSD's own files are.
 */
export async function volumeGridProblems(c: Pick<EncodeConfig, 'nsd' | 'regions' | 'noiseCeiling'>, plan: BetasGrid): Promise<string[]> {
  const { root, subject } = c.nsd;
  const volumes: Volume[] = c.regions.map((atlas, i) => ({ field: `regions[${i}]`, path: roiPath(root, subject, atlas), what: 'atlas', kind: 'file' }));
  if (c.noiseCeiling === 'auto') volumes.push({ field: 'noiseCeiling', path: ncsnrPath(root, subject), what: 'noise-ceiling file', kind: 'atlas' });
  else if (c.noiseCeiling !== 'none' && c.noiseCeiling !== 'estimate') volumes.push({ field: 'noiseCeiling', path: c.noiseCeiling, what: 'noise-ceiling file', kind: 'file' });
  const problems: string[] = [];
  for (const v of volumes) {
    if (!existsSync(v.path)) continue;
    try {
      const header = await readNiftiHeader(v.path);
      const mismatch = maskGridMismatch({ mask: { grid: niftiGrid(header) }, path: v.path, header, kind: v.kind, what: v.what }, plan, v.field, subject);
      if (mismatch) problems.push(mismatch);
    } catch (e) {
      problems.push(`${v.field}: ${(e as Error).message}`);
    }
  }
  return problems;
}
