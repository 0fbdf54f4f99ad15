import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { readNifti, niftiGrid } from '../io/nifti.js';
import type { VoxelMask } from '../io/voxelMask.js';
import { ctabPath, roiPath } from '../nsd/paths.js';
import { mean, sortedMedian } from './metrics.js';

/** Names used when an atlas's .ctab is absent (NSD's public code). */
const BUILTIN: Record<string, Record<number, string>> = {
  streams: { 1: 'early', 2: 'midventral', 3: 'midlateral', 4: 'midparietal', 5: 'ventral', 6: 'lateral', 7: 'parietal' },
  'prf-visualrois': { 1: 'V1v', 2: 'V1d', 3: 'V2v', 4: 'V2d', 5: 'V3v', 6: 'V3d', 7: 'hV4' },
  nsdgeneral: { 1: 'nsdgeneral' },
};

/** One atlas's label at every voxel of the analysis mask, and the label names. */
export interface RegionLabels {
  atlas: string;
  path: string;
  /** Label value per mask voxel (0 = none). */
  values: Int32Array;
  names: Map<number, string>;
}

/** Reads the atlas volumes that exist for the subject; missing atlases are skipped (and reported by name). */
export async function loadRegionLabels(root: string, subject: number, atlases: string[], mask: VoxelMask): Promise<{ labels: RegionLabels[]; missing: string[] }> {
  const labels: RegionLabels[] = [];
  const missing: string[] = [];
  for (const atlas of atlases) {
    const path = roiPath(root, subject, atlas);
    if (!existsSync(path)) {
      missing.push(atlas);
      continue;
    }
    const { header, data } = await readNifti(path);
    const g = niftiGrid(header);
    if (g[0] !== mask.grid[0] || g[1] !== mask.grid[1] || g[2] !== mask.grid[2]) {
      missing.push(`${atlas} (grid ${g.join('×')} differs from the mask's ${mask.grid.join('×')})`);
      continue;
    }
    const values = Int32Array.from(mask.indices, (i) => Math.max(0, Math.round(data[i])));
    labels.push({ atlas, path, values, names: await labelNames(root, atlas) });
  }
  return { labels, missing };
}

export async function labelNames(root: string, atlas: string): Promise<Map<number, string>> {
  const names = new Map<number, string>(Object.entries(BUILTIN[atlas] ?? {}).map(([k, v]) => [Number(k), v]));
  try {
    for (const line of (await readFile(ctabPath(root, atlas), 'utf8')).split(/\r?\n/)) {
      const [v, name] = line.trim().split(/\s+/);
      if (name && /^\d+$/.test(v) && Number(v) > 0) names.set(Number(v), name);
    }
  } catch {
    // no colour table: built-in names, else numbers
  }
  return names;
}

export interface RegionRow {
  featureSet: string;
  atlas: string;
  region: string;
  label: number;
  voxels: number;
  /** Mean and median of r over the region's voxels that have one (`voxels` − `constantVoxels`). */
  meanR: number;
  medianR: number;
  /**
   * Mean of r / √NC over the voxels with a ceiling above 0.01 (`voxelsOverCeiling` of them; NaN without a noise
   * ceiling). Voxels with a ceiling just above 0.01 divide by about 0.1 and dominate it: see `ratioOfMeans`.
   */
  meanRNormalised: number;
  /** How many voxels `meanRNormalised` and `ratioOfMeans` are over: those with a ceiling above 0.01 (null without a noise ceiling). */
  voxelsOverCeiling: number | null;
  /** Mean r / mean √NC over the same voxels: the robust summary (NaN without a noise ceiling). */
  ratioOfMeans: number;
  /**
   * Voxels of the region whose r is NaN, left out of every mean and median: their measured test betas are constant
   * (heldOutScores), so there is no variance to explain (0 in folders fitted before r was NaN there).
   */
  constantVoxels: number;
}

/** A ceiling must exceed this (a fraction of variance) for r/√NC to be taken: below it √NC is too small to divide by. */
export const CEILING_FLOOR = 0.01;

/** Mean accuracy per region (plus a row for the whole mask, atlas 'mask'), over the voxels with an r (constantVoxels counts the others). */
export function regionTable(featureSet: string, r: Float32Array, labels: RegionLabels[], ceiling: Float32Array | null): RegionRow[] {
  const rows: RegionRow[] = [];
  const row = (atlas: string, region: string, label: number, idx: number[]): RegionRow => {
    const vals = idx.map((j) => r[j]).filter(Number.isFinite).sort((a, b) => a - b);
    // both normalised summaries over one set of voxels: a ceiling above the floor and an r
    const over = ceiling ? idx.filter((j) => ceiling[j] > CEILING_FLOOR && Number.isFinite(r[j])) : [];
    const sqrtNc = over.map((j) => Math.sqrt(ceiling![j]));
    return {
      featureSet, atlas, region, label, voxels: idx.length,
      meanR: mean(vals),
      medianR: sortedMedian(vals),
      meanRNormalised: ceiling ? mean(over.map((j, k) => r[j] / sqrtNc[k])) : NaN,
      voxelsOverCeiling: ceiling ? over.length : null,
      ratioOfMeans: ceiling ? mean(r, over) / mean(sqrtNc) : NaN,
      constantVoxels: idx.length - vals.length,
    };
  };
  rows.push(row('mask', 'all', 0, Array.from({ length: r.length }, (_, j) => j)));
  for (const l of labels) {
    const by = new Map<number, number[]>();
    l.values.forEach((v, j) => {
      if (v > 0) (by.get(v) ?? by.set(v, []).get(v)!).push(j);
    });
    for (const v of [...by.keys()].sort((a, b) => a - b)) rows.push(row(l.atlas, l.names.get(v) ?? String(v), v, by.get(v)!));
  }
  return rows;
}

/**
 * regions.csv: `voxels` counts every voxel of the region; `mean_r` and `median_r` are over those with an r, all but the
 * `constant_voxels` whose test betas are constant (r NaN); `mean_r_over_ceiling` (mean of r/√NC),
 * `mean_r_over_mean_sqrt_nc` (mean r / mean √NC) over the `voxels_over_ceiling` voxels whose ceiling is above 1% and
 * that have an r (empty without a noise ceiling). The columns added later come last, so a reader that takes columns by
 * position still finds the first ones where they were.
 */
export function regionCsv(rows: RegionRow[]): string {
  const f = (v: number) => (Number.isFinite(v) ? v.toFixed(5) : '');
  const q = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  return (
    'feature_set,atlas,region,label,voxels,mean_r,median_r,mean_r_over_ceiling,voxels_over_ceiling,mean_r_over_mean_sqrt_nc,constant_voxels\n' +
    rows
      .map((r) => [q(r.featureSet), r.atlas, q(r.region), r.label, r.voxels, f(r.meanR), f(r.medianR), f(r.meanRNormalised), r.voxelsOverCeiling ?? '', f(r.ratioOfMeans), r.constantVoxels].join(','))
      .join('\n') +
    '\n'
  );
}

/**
 * The run's warning when some voxels' test betas are constant (`constant` of the mask's `voxels`): their r and R² are
 * NaN and left out, so "no variance to explain" is not reported as "explained nothing".
 */
export function constantVoxelsWarning(constant: number, voxels: number): string {
  const one = constant === 1;
  return (
    `${constant} of the mask's ${voxels} voxels ${one ? 'has' : 'have'} the same betas on every test image (constant up to float32 rounding): ` +
    `${one ? 'its' : 'their'} held-out r and R² are NaN (no variance to explain), no value in the maps, and left out of regions.csv's means and medians (counted in its constant_voxels column)`
  );
}
