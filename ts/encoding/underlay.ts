/**
 * The anatomy under the brain maps: the subject's T1 on the functional grid (NSD's T1_to_func1pt8mm.nii.gz),
 * else the mean EPI (mean.nii.gz), else the brain mask; what was found is said in the report.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

import { niftiGrid, readNifti } from '../io/nifti.js';
import type { Grid } from '../io/voxelMask.js';
import { brainmaskPath, meanEpiPath, t1Path } from '../nsd/paths.js';

export interface Underlay {
  kind: 'T1' | 'mean EPI' | 'brain mask';
  path: string;
  /** The file's bytes (.nii.gz), embedded in the report for the viewer. */
  bytes: Buffer;
  /** Intensities on the maps' grid, or null when the file is on another grid (the viewer still aligns it by its affine). */
  volume: Float32Array | null;
}

export async function findUnderlay(root: string, subject: number, grid: Grid): Promise<Underlay | null> {
  const candidates: [Underlay['kind'], string][] = [
    ['T1', t1Path(root, subject)],
    ['mean EPI', meanEpiPath(root, subject)],
    ['brain mask', brainmaskPath(root, subject)],
  ];
  for (const [kind, path] of candidates) {
    if (!existsSync(path)) continue;
    const { header, data } = await readNifti(path);
    const g = niftiGrid(header);
    const same = g[0] === grid[0] && g[1] === grid[1] && g[2] === grid[2];
    return { kind, path, bytes: await readFile(path), volume: same ? data : null };
  }
  return null;
}
