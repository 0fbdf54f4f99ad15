import { access, readdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { InvalidArgumentError, MissingFileError, ShapeError } from '../errors.js';
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
  // an atlas that is not there is said as such (its volume, and the label names its labels needed), not as a label problem
  if (r.kind === 'atlas' && !(await present(path))) throw await missingAtlas(root, r, path);
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

async function present(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}

/** The refusal of an atlas whose volume is absent: the volume, and the .ctab too when named labels needed it and it is absent. */
async function missingAtlas(root: string, r: Extract<RegionSpec, { kind: 'atlas' }>, volume: string): Promise<MissingFileError> {
  const spec = `${r.atlas}${r.labels ? `:${r.labels.join(',')}` : ''}`;
  const named = r.labels?.some((l) => !/^\d+$/.test(l)) ?? false;
  const ctab = ctabPath(root, r.atlas);
  const noNames = named && !BUILTIN_LABELS[labelAtlas(r.atlas)] && !(await present(ctab));
  return new MissingFileError(
    `region ${spec}: atlas ${r.atlas} not found: its volume ${volume}` + (noNames ? ` and its label names ${ctab} do not exist` : ' does not exist') + (await atlasHint(r.atlas, volume)),
  );
}

/**
 * The atlases the subject's folder has and, for a name that is a label of one of NSD's (V1, ventral), the region
 * meant: `--roi V1` was refused naming only the missing V1.nii.gz (review s45).
 */
async function atlasHint(name: string, volume: string): Promise<string> {
  const present = (await readdir(dirname(volume)).catch(() => [] as string[])).filter((f) => f.endsWith('.nii.gz')).map((f) => f.slice(0, -'.nii.gz'.length)).sort();
  const meant = Object.entries(BUILTIN_LABELS).filter(([atlas, labels]) => atlas !== name && name in labels && present.includes(atlas)).map(([atlas]) => `${atlas}:${name}`);
  return (meant.length ? `; did you mean ${meant.join(' or ')}?` : '') + (present.length ? ` (atlases here: ${present.join(', ')}; a region is ATLAS or ATLAS:LABEL)` : '');
}

/** Label names → values, from the atlas's .ctab when present, else the built-in NSD tables; numbers pass through. */
export async function resolveLabels(root: string, atlas: string, labels: string[]): Promise<number[]> {
  const { table, ctab } = await labelTable(root, atlas);
  const out = new Set<number>();
  for (const l of labels) {
    if (/^\d+$/.test(l)) {
      out.add(Number(l));
      continue;
    }
    const v = table[l] ?? table[Object.keys(table).find((k) => k.toLowerCase() === l.toLowerCase()) ?? ''];
    if (!v) {
      const known = Object.keys(table);
      // no names at all: the .ctab that would hold them is absent (and the atlas is none of the built-in ones)
      if (known.length === 0) {
        throw new MissingFileError(
          `region ${atlas}:${l}: no label names for ${atlas}: ${ctabPath(root, atlas)} does not exist (and ${labelAtlas(atlas)} is not one of the atlases ` +
            `with built-in names: ${Object.keys(BUILTIN_LABELS).join(', ')}); give label numbers (${atlas}:1,2) or add the .ctab`,
        );
      }
      throw new InvalidArgumentError(
        `region ${atlas}:${l}: no label "${l}" in ${atlas}; known labels: ${known.join(', ')}` + (ctab ? '' : ` (built-in names: ${ctabPath(root, atlas)} does not exist)`),
      );
    }
    v.forEach((x) => out.add(x));
  }
  return [...out].sort((a, b) => a - b);
}

/** The atlas's label names → values, and whether they came from its .ctab (false: the built-in table, or none). */
async function labelTable(root: string, atlas: string): Promise<{ table: Record<string, number[]>; ctab: boolean }> {
  // a hemisphere's volume (lh.streams) has the labels of its atlas (streams.mgz.ctab: ctabPath drops the prefix)
  const builtin = BUILTIN_LABELS[labelAtlas(atlas)] ?? {};
  let text: string;
  try {
    text = await readFile(ctabPath(root, atlas), 'utf8');
  } catch {
    return { table: builtin, ctab: false };
  }
  const table: Record<string, number[]> = { ...builtin };
  for (const line of text.split(/\r?\n/)) {
    const [v, name] = line.trim().split(/\s+/);
    if (name && /^-?\d+$/.test(v) && Number(v) > 0) table[name] = [Number(v)];
  }
  return { table, ctab: true };
}
