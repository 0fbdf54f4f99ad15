/**
 * The maps an encoding run writes and how they are named: one record per NIfTI map (what it shows, for which
 * feature set or joint model), kept in encoding.json so the report — and anyone else — reads the list back
 * instead of guessing file names.
 */
import { join } from 'node:path';

export type MapKind =
  | 'r'
  | 'r-over-sqrt-nc'
  | 'alpha'
  | 'noise-ceiling'
  | 'banded-r'
  | 'banded-r2'
  | 'banded-r2-without'
  | 'banded-alpha'
  | 'band-weight'
  | 'unique'
  | 'shared';

export interface MapRecord {
  kind: MapKind;
  /** The map, relative to the run folder (maps/…nii.gz). */
  file: string;
  /** Its static figure, relative to the run folder (mosaics/…png). */
  mosaic: string;
  /** A short name for menus and titles. */
  label: string;
  description: string;
  /** The feature set (kinds r, r-over-sqrt-nc, alpha: log10 of the alpha chosen per voxel). */
  featureSet?: string;
  /**
   * The joint model (kinds banded-r; banded-r2, its held-out R²; banded-r2-without, that of the model without
   * `space`; banded-alpha, log10 of its alpha; band-weight, the γ of `space`; unique, shared).
   */
  banded?: string;
  /** The feature space the map is about (kinds unique, banded-r2-without, band-weight). */
  space?: string;
}

/** Options of the static figures (config `mosaic`): they apply to the held-out r maps. */
export interface MosaicOptions {
  /** Colour range top (default: the 99th percentile of |r|). */
  vmax?: number;
  /** |r| below this is not drawn (default: r significant at p < 0.05, one-sided, uncorrected, for the test images). */
  threshold?: number;
  /** Pixels per voxel (default: tiles about 180 px wide). */
  scale?: number;
  /** Slices per row (default: a roughly 4:3 figure). */
  columns?: number;
  /** Axial slices shown at most (default 16). */
  slices?: number;
}

/** encoding.json. */
export interface EncodingSummary {
  format: 'brainlatent-encoding';
  version: 2;
  createdAt: string;
  config: { out: string; nsd: { root: string; subject: number }; regions: string[]; mosaic?: MosaicOptions } & Record<string, unknown>;
  subject: number;
  roi: string;
  voxels: number;
  /**
   * Voxels of the mask whose betas are the same on every test image: their held-out r and R² are NaN, left out of the
   * region means (regions.csv's constant_voxels); absent in folders from before they were counted.
   */
  constantVoxels?: number;
  /** Distinct training images (before s45: the fits' rows, trials with averageTrain false). */
  trainImages: number;
  /** Rows of the fits: the training images, or their trials with averageTrain false; absent in folders from before s45. */
  trainRows?: number;
  testImages: number;
  /** The sessions whose betas the run read (the extract stage's record); absent in folders from before it was kept. */
  sessions?: number[];
  voxelOrder: string;
  noiseCeiling: boolean;
  atlasesMissing: string[];
  /** How unique and shared variance are defined (variancePartition.ts). */
  partitionConvention: string;
  maps: MapRecord[];
  featureSets: { name: string; description: string; features: number; route: string; meanR: number; map: string; mosaic: string }[];
  banded: { name: string; sets: string[]; maps: Record<string, string>; meanUnique: Record<string, number> }[];
}

/** A file-name part: characters other than letters, digits and _ . - + become '_' (so 'z+c' stays 'z+c'). */
export const fileStem = (s: string): string => s.replace(/[^A-Za-z0-9_.+-]+/g, '_');

/**
 * The file names of a map. Feature-set maps keep the set's name (maps/z.nii.gz, maps/zc.nii.gz); joint-model
 * maps keep the model's name with its '+' (maps/z+c.nii.gz, maps/z+c_unique-z.nii.gz), so the img2img feature
 * set 'zc' and the joint model 'z+c' can no longer be mistaken for one another (earlier versions wrote the
 * joint model as maps/z_c.nii.gz; their encoding.json still lists those names and the report reads them).
 */
export function mapFile(r: Pick<MapRecord, 'kind' | 'featureSet' | 'banded' | 'space'>): { file: string; mosaic: string } {
  const set = () => fileStem(r.featureSet!);
  const joint = () => fileStem(r.banded!);
  const space = () => fileStem(r.space!);
  const stems: Record<MapKind, () => string> = {
    'noise-ceiling': () => 'noise-ceiling',
    r: set,
    'r-over-sqrt-nc': () => `${set()}_r-over-sqrt-nc`,
    alpha: () => `${set()}_log10-alpha`,
    'banded-r': joint,
    'banded-r2': () => `${joint()}_r2`,
    'banded-r2-without': () => `${joint()}_r2-without-${space()}`,
    'banded-alpha': () => `${joint()}_log10-alpha`,
    'band-weight': () => `${joint()}_gamma-${space()}`,
    unique: () => `${joint()}_unique-${space()}`,
    shared: () => `${joint()}_shared`,
  };
  const stem = stems[r.kind]();
  return { file: join('maps', `${stem}.nii.gz`), mosaic: join('mosaics', `${stem}.png`) };
}

/**
 * A joint model's map's key in encoding.json's `banded[].maps` and EncodeResult's `banded[].maps`: r, r2,
 * r2-without-<set>, alpha, gamma-<set>, shared, unique-<set>.
 */
export function bandedMapKey(r: Pick<MapRecord, 'kind' | 'space'>): string {
  switch (r.kind) {
    case 'banded-r':
      return 'r';
    case 'banded-r2':
      return 'r2';
    case 'banded-r2-without':
      return `r2-without-${r.space}`;
    case 'banded-alpha':
      return 'alpha';
    case 'band-weight':
      return `gamma-${r.space}`;
    case 'shared':
      return 'shared';
    case 'unique':
      return `unique-${r.space}`;
    default:
      throw new Error(`bandedMapKey: a '${r.kind}' map is not a joint model's`);
  }
}
