/** Whether a region mask is on the subject's functional grid: its dimensions and where it sits in the world. */
import { affineMethod, voxelToWorld, type Affine, type NiftiGeometry } from '../io/niftiHeader.js';
import type { Grid } from '../io/voxelMask.js';

/** Where the subject's functional grid sits in the world: its voxel-to-world affine, and the file and transform it came from. */
export interface GridAffine {
  affine: Affine;
  /** 'sform', 'qform' or 'voxel sizes (no sform or qform)' (affineMethod). */
  method: string;
  file: string;
}

/** The betas' grid (sessionBetasShape), their file, and the grid's affine where known (betasGridAffine). */
export interface BetasGrid {
  grid: Grid;
  betasFile: string;
  affine: GridAffine | null;
  /** Volumes per session, where known: an HDF5 dataset's shape is then told in a refusal. */
  trialsPerSession?: number;
}

/** How far (mm) a mask's voxels may sit from the subject's: float32 headers of one grid agree to about 1e-5 mm. */
export const GRID_TOLERANCE_MM = 1e-3;

/**
 * The problem with a region mask on another grid than the subject's betas (a mask file made for another subject
 * or dataset, or resampled elsewhere), naming both grids and both files; null when they match. The dimensions
 * must be equal, and for a mask file (not one of NSD's atlases for the subject, the subject's own files) where
 * the subject's affine is known (plan.affine) the mask's voxel-to-world affine (sform, else qform) must put every
 * voxel within GRID_TOLERANCE_MM of the subject's: the maps are written with the mask's geometry, so a mask of
 * the right size but another affine gave maps in the wrong place or of the wrong voxel size. `field` names the
 * config field (nsd.roi, …). Other volumes read voxel by voxel with the mask's indices (an atlas of the region
 * table, a noise-ceiling file) take the same check, `what` naming them in the message (default 'mask').
 */
export function maskGridMismatch(
  region: { mask: { grid: Grid }; path: string; header: NiftiGeometry; kind: 'atlas' | 'file'; what?: string },
  plan: BetasGrid,
  field: string | null,
  subject: number,
): string | null {
  const at = field === null ? '' : `${field}: `;
  const what = region.what ?? 'mask';
  const [m, b] = [region.mask.grid, plan.grid];
  if (m[0] !== b[0] || m[1] !== b[1] || m[2] !== b[2]) {
    if (/\.h(df)?5$/i.test(plan.betasFile) && plan.trialsPerSession !== undefined) {
      // an HDF5 dataset is read as NSD's (trials, Z, Y, X): one stored as (X, Y, Z, trials) reads as another grid, and
      // the refusal blamed the mask, naming a grid no file has (review s44)
      const shape = [plan.trialsPerSession, b[2], b[1], b[0]];
      if (shape[0] === m[0] && shape[1] === m[1] && shape[2] === m[2]) {
        return (
          `subject ${subject}'s betas ${plan.betasFile}: its dataset 'betas' has shape (${shape.join(', ')}), the ${m.join('×')} grid of the ${what} ` +
          `${region.path} then ${shape[3]} volumes: stored as (X, Y, Z, trials); expected NSD's HDF5 layout (trials, Z, Y, X) (transpose it, or use the session's .nii.gz)`
        );
      }
      return (
        `${at}the ${what} ${region.path} is on a ${m.join('×')} grid but subject ${subject}'s betas (${plan.betasFile}, its dataset 'betas' of shape ` +
        `(${shape.join(', ')}) read as NSD's (trials, Z, Y, X)) are on ${b.join('×')}; expected ${article(what)} ${what} on the subject's grid`
      );
    }
    return (
      `${at}the ${what} ${region.path} is on a ${m.join('×')} grid but subject ${subject}'s betas (${plan.betasFile}) are on ${b.join('×')}; ` +
      `expected ${article(what)} ${what} on the subject's grid`
    );
  }
  if (!plan.affine || region.kind === 'atlas') return null;
  const mine = voxelToWorld(region.header);
  const shift = cornerShift(mine, plan.affine.affine, b);
  if (shift <= GRID_TOLERANCE_MM) return null;
  const theirs = plan.affine.file === plan.betasFile ? `the betas' ${plan.affine.method}` : `the ${plan.affine.method} of ${plan.affine.file}, as HDF5 betas carry no affine`;
  return (
    `${at}the ${what} ${region.path} has the ${b.join('×')} dimensions of subject ${subject}'s betas (${plan.betasFile}) but another voxel-to-world affine: ` +
    `${formatAffine(mine)} (its ${affineMethod(region.header)}) against ${formatAffine(plan.affine.affine)} (${theirs}); ` +
    `its voxels lie up to ${shift.toPrecision(3)} mm from the subject's; expected ${article(what)} ${what} on the subject's grid`
  );
}

const article = (noun: string) => (/^[aeiou]/i.test(noun) ? 'an' : 'a');

/**
 * The problem with a session's betas placed elsewhere in the world than the first session's (the same dimensions, but
 * another voxel-to-world affine: a session resampled or flipped on its own), naming both files; null when they agree
 * within GRID_TOLERANCE_MM. The extraction reads the sessions voxel by voxel as one table: a mirrored session's rows
 * came from the mirrored voxels, with no error (review s44).
 */
export function sessionAffineMismatch(file: string, header: NiftiGeometry, firstFile: string, firstHeader: NiftiGeometry, grid: Grid): string | null {
  const [mine, theirs] = [voxelToWorld(header), voxelToWorld(firstHeader)];
  const shift = cornerShift(mine, theirs, grid);
  if (shift <= GRID_TOLERANCE_MM) return null;
  return (
    `${file}: voxel-to-world affine ${formatAffine(mine)} (its ${affineMethod(header)}) differs from ${formatAffine(theirs)} of ${firstFile} ` +
    `(its ${affineMethod(firstHeader)}): the same voxel lies up to ${shift.toPrecision(3)} mm apart in the two; expected every session's betas on one grid`
  );
}

/** The largest distance (mm) between where two affines put a voxel of `grid`: an affine map's extremes are at the corners. */
function cornerShift(a: Affine, b: Affine, [X, Y, Z]: Grid): number {
  let worst = 0;
  for (const i of [0, X - 1]) {
    for (const j of [0, Y - 1]) {
      for (const k of [0, Z - 1]) {
        const d = [0, 1, 2].map((r) => (a[r][0] - b[r][0]) * i + (a[r][1] - b[r][1]) * j + (a[r][2] - b[r][2]) * k + (a[r][3] - b[r][3]));
        worst = Math.max(worst, Math.hypot(d[0], d[1], d[2]));
      }
    }
  }
  return worst;
}

/** "[1.8 0 0 -17.1; 0 1.8 0 -20.7; 0 0 1.8 -13.5]": the 3×4 rows, to 4 decimals. */
function formatAffine(a: Affine): string {
  return `[${a.slice(0, 3).map((r) => r.slice(0, 4).map((v) => String(Number(v.toFixed(4)) || 0)).join(' ')).join('; ')}]`;
}
