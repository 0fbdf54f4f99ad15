import { readFile } from 'node:fs/promises';
import { InvalidArgumentError, ShapeError } from '../errors.js';
import { readNifti, readNiftiHeader, niftiGrid, niftiVolumeCount, type NiftiHeader } from '../io/nifti.js';
import { maskFromVolume, type VoxelMask } from '../io/voxelMask.js';
import { ctabPath, labelAtlas, roiPath } from './paths.js';
import { parseRegionSpec, type RegionSpec } from './regionSpec.js';

export { parseRegionSpec, type RegionSpec } from './regionSpec.js';

/** Label tables used when the atlas's .ctab file is absent (values from NSD's public code). */
const BUILTIN_LABELS: Record<string, Record<string, number[]>> = {
  nsdgeneral: { nsdgeneral: [1] },
  streams: { early: [1], midventral: [2], midlateral: [3], midparietal: [4], ventral: [5], lateral: [6], parietal: [7] },
  'prf-visualrois': { V1v: [1], V1d: [2], V2v: [3], V2d: [4], V3v: [5], V3d: [6], hV4: [7], V1: [1, 2], V2: [3, 4], V3: [5, 6] },
};


export interface RegionMask {
  mask: VoxelMask;
  /** Header of the ROI volume: the geometry for maps written back. */
  header: NiftiHeader;
  /** The file the mask came from. */
  path: string;
  /** Label values selected (null: every value > 0). */
  values: number[] | null;
  /** One of NSD's atlases for the subject, or a mask file the user gave. */
  kind: RegionSpec['kind'];
}

/** Reads the ROI volume and keeps the region's voxels; a region without voxels is an error. */
export async function loadRegionMask(root: string, subject: number, spec: string | RegionSpec): Promise<RegionMask> {
  const r = typeof spec === 'string' ? parseRegionSpec(spec) : spec;
  const path = r.kind === 'file' ? r.path : roiPath(root, subject, r.atlas);
  const values = r.kind === 'atlas' && r.labels ? await resolveLabels(root, r.atlas, r.labels) : null;
  // a 4-D file of several volumes is no mask (the first volume alone was taken): refused before its data are read
  const first = await readNiftiHeader(path);
  const volumes = niftiVolumeCount(first);
  if (volumes > 1) {
    throw new ShapeError(`${path}: dims ${first.dims.join('×')} hold ${volumes} volumes; a region mask is one volume (X×Y×Z, or X×Y×Z×1)`);
  }
  const { header, data } = await readNifti(path);
  const grid = niftiGrid(header);
  const what = values ? `${path} labels ${values.join(',')}` : `${path} > 0`;
  const set = values ? new Set(values) : null;
  // NSD ROI volumes are −1 outside the brain and 0 unlabelled: select with > 0 or == label only.
  const mask = maskFromVolume(data, grid, set ? (v) => set.has(v) : (v) => v > 0, what);
  return { mask, header, path, values, kind: r.kind };
}

/** Label names → values, from the atlas's .ctab when present, else the built-in NSD tables; numbers pass through. */
export async function resolveLabels(root: string, atlas: string, labels: string[]): Promise<number[]> {
  const table = await labelTable(root, atlas);
  const out = new Set<number>();
  for (const l of labels) {
    if (/^\d+$/.test(l)) {
      out.add(Number(l));
      continue;
    }
    const v = table[l] ?? table[Object.keys(table).find((k) => k.toLowerCase() === l.toLowerCase()) ?? ''];
    if (!v) {
      throw new InvalidArgumentError(
        `region ${atlas}:${l}: no label "${l}" in ${atlas}; known labels: ${Object.keys(table).join(', ') || 'none (give numbers)'}`,
      );
    }
    v.forEach((x) => out.add(x));
  }
  return [...out].sort((a, b) => a - b);
}

async function labelTable(root: string, atlas: string): Promise<Record<string, number[]>> {
  // a hemisphere's volume (lh.streams) has the labels of its atlas (streams.mgz.ctab: ctabPath drops the prefix)
  const builtin = BUILTIN_LABELS[labelAtlas(atlas)] ?? {};
  let text: string;
  try {
    text = await readFile(ctabPath(root, atlas), 'utf8');
  } catch {
    return builtin;
  }
  const table: Record<string, number[]> = { ...builtin };
  for (const line of text.split(/\r?\n/)) {
    const [v, name] = line.trim().split(/\s+/);
    if (name && /^-?\d+$/.test(v) && Number(v) > 0) table[name] = [Number(v)];
  }
  return table;
}
