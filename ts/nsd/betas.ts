import { access } from 'node:fs/promises';
import { MissingFileError, ShapeError } from '../errors.js';
import { assertFinite } from '../io/finite.js';
import { Hdf5Reader, readHdf5Masked } from '../io/hdf5.js';
import { niftiGrid, niftiVolumeCount, readNiftiHeader, readNiftiMasked } from '../io/nifti.js';
import { affineMethod, voxelToWorld, type NiftiGeometry } from '../io/niftiHeader.js';
import type { Grid, VoxelMask } from '../io/voxelMask.js';
import type { Matrix } from '../matrix.js';
import { checkInteger } from '../ridge/options.js';
import { sessionAffineMismatch, type GridAffine } from './grid.js';
import { betasPath, brainmaskPath, meanEpiPath, roiPath, t1Path, type BetasFormat, type BetasVersion } from './paths.js';

/** 'auto' takes the .hdf5 when present (per-voxel chunks read fastest), else the .nii.gz. */
export type BetasFormatChoice = BetasFormat | 'auto';

export async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** The file holding one session's betas in the chosen format; a missing one is a MissingFileError naming the path(s). */
export async function sessionBetasFile(
  root: string,
  subject: number,
  session: number,
  format: BetasFormatChoice,
  version?: BetasVersion,
): Promise<{ path: string; format: BetasFormat }> {
  const order: BetasFormat[] = format === 'auto' ? ['hdf5', 'nifti'] : [format];
  for (const f of order) {
    const path = betasPath(root, subject, session, f, version);
    if (await exists(path)) return { path, format: f };
  }
  const tried = order.map((f) => betasPath(root, subject, session, f, version));
  throw new MissingFileError(`subject ${subject} session ${session}: betas file not found (looked for ${tried.join(' and ')})`);
}

export { formatSessionList } from './sessionList.js';

/** Sessions 1..max whose betas exist in the chosen format. */
export async function availableSessions(root: string, subject: number, format: BetasFormatChoice, max = 40, version?: BetasVersion): Promise<number[]> {
  // (a subject of 2.5 looked for subj2.5's files and found none; a NaN max none either)
  checkInteger(subject, 'subject', 'availableSessions', 1);
  checkInteger(max, 'max', 'availableSessions', 0);
  const out: number[] = [];
  for (let s = 1; s <= max; s++) {
    const formats: BetasFormat[] = format === 'auto' ? ['hdf5', 'nifti'] : [format];
    for (const f of formats) {
      if (await exists(betasPath(root, subject, s, f, version))) {
        out.push(s);
        break;
      }
    }
  }
  return out;
}

/** Number of trials (volumes) in a session file, from its header or dataset shape only. */
export async function sessionTrialCount(file: { path: string; format: BetasFormat }): Promise<number> {
  return (await sessionBetasShape(file)).trials;
}

/** Trials and voxel grid (X, Y, Z) of a session file, from its header or dataset shape only. */
export async function sessionBetasShape(file: { path: string; format: BetasFormat }): Promise<{ trials: number; grid: Grid; header?: NiftiGeometry }> {
  if (file.format === 'nifti') {
    const h = await readNiftiHeader(file.path);
    if (h.dims.length < 4) throw new ShapeError(`${file.path}: betas are ${h.dims.join('×')}, expected a 4-D X×Y×Z×trials image`);
    return { trials: niftiVolumeCount(h), grid: [h.dims[0], h.dims[1], h.dims[2]], header: h };
  }
  const r = await Hdf5Reader.open(file.path);
  try {
    // (T, Z, Y, X): the row-major view of MATLAB's X×Y×Z×T
    const [T, Z, Y, X] = r.shape('betas', [-1, -1, -1, -1]);
    return { trials: T, grid: [X, Y, Z] };
  } finally {
    r.close();
  }
}

/**
 * The shape of a run's sessions, from every session file's header: each must open (a truncated HDF5 is refused by
 * the preflight, not by the extraction an hour in, after the sessions before it were read) and hold the first's
 * trial count and grid (the extraction reads them as one table). Throws the first problem, naming the file.
 */
export async function sessionsBetasShape(files: readonly { path: string; format: BetasFormat }[]): Promise<{ trials: number; grid: Grid }> {
  const first = await sessionBetasShape(files[0]);
  // (NIfTI sessions carry their own affines: each must place the grid where the first NIfTI session does; HDF5 carry none)
  let placed: { path: string; header: NiftiGeometry } | null = null;
  for (const [i, file] of files.entries()) {
    const { trials, grid, header } = i === 0 ? first : await sessionBetasShape(file);
    if (trials !== first.trials) throw new ShapeError(`${file.path}: ${trials} trials, expected ${first.trials} like ${files[0].path}`);
    if (grid.some((n, i) => n !== first.grid[i])) {
      throw new ShapeError(`${file.path}: voxel grid ${grid.join('×')}, expected ${first.grid.join('×')} like ${files[0].path}`);
    }
    if (!header) continue;
    if (placed === null) placed = { path: file.path, header };
    else {
      const elsewhere = sessionAffineMismatch(file.path, header, placed.path, placed.header, grid);
      if (elsewhere) throw new ShapeError(elsewhere);
    }
  }
  return first;
}

export type { GridAffine } from './grid.js';

/**
 * The affine of the betas' grid (`grid`, from sessionBetasShape). A NIfTI session file carries its own. NSD's
 * HDF5 betas hold a bare MATLAB array, no affine, so it is taken from a NIfTI of the subject on the same grid
 * (nsdgeneral, whose geometry the encoding maps take by default, else brainmask, mean EPI, T1 on the functional
 * grid: the first present with these dimensions); null when there is none, and then only the dimensions of a
 * mask can be checked.
 */
export async function betasGridAffine(root: string, subject: number, file: { path: string; format: BetasFormat }, grid: Grid): Promise<GridAffine | null> {
  const candidates = file.format === 'nifti' ? [file.path] : [roiPath(root, subject, 'nsdgeneral'), brainmaskPath(root, subject), meanEpiPath(root, subject), t1Path(root, subject)];
  for (const path of candidates) {
    if (!(await exists(path))) continue;
    const h = await readNiftiHeader(path);
    const g = niftiGrid(h);
    if (g[0] !== grid[0] || g[1] !== grid[1] || g[2] !== grid[2]) continue;
    return { affine: voxelToWorld(h), method: affineMethod(h), file: path };
  }
  return null;
}

/**
 * HDF5 betas are read as NSD's (trials, Z, Y, X). One stored as (X, Y, Z, trials) reads as another grid, and the
 * design check then blamed its trial count, or the mask check the mask (review s44): when the subject's reference
 * NIfTI (as betasGridAffine picks them) is on the grid of the dataset's first three dimensions instead, throws a
 * ShapeError saying so, naming the file, its shape and the layout expected.
 */
export async function assertHdf5Layout(root: string, subject: number, file: { path: string; format: BetasFormat }, shape: { trials: number; grid: Grid }): Promise<void> {
  if (file.format !== 'hdf5') return;
  const stored = [shape.trials, shape.grid[2], shape.grid[1], shape.grid[0]];
  for (const path of [roiPath(root, subject, 'nsdgeneral'), brainmaskPath(root, subject), meanEpiPath(root, subject), t1Path(root, subject)]) {
    if (!(await exists(path))) continue;
    const g = niftiGrid(await readNiftiHeader(path));
    if (g[0] === shape.grid[0] && g[1] === shape.grid[1] && g[2] === shape.grid[2]) return;
    if (g[0] === stored[0] && g[1] === stored[1] && g[2] === stored[2]) {
      throw new ShapeError(
        `${file.path}: its dataset 'betas' has shape (${stored.join(', ')}): the ${g.join('×')} grid of subject ${subject}'s ${path} then ${stored[3]} volumes, ` +
          `stored as (X, Y, Z, trials); expected NSD's HDF5 layout (trials, Z, Y, X) (transpose it, or use the session's .nii.gz)`,
      );
    }
    return;
  }
}

/** Masked betas of one session: trials × voxels float32, each value ÷ divisor. */
export async function readSessionBetas(file: { path: string; format: BetasFormat }, mask: VoxelMask, divisor: number): Promise<Matrix> {
  const betas = file.format === 'nifti' ? (await readNiftiMasked(file.path, mask, { divisor })).betas : (await readHdf5Masked(file.path, mask, { divisor })).betas;
  // float betas (and scl_slope/inter) can hold NaN or Inf: refuse them here, naming the trial and the voxel in the file.
  assertFinite(betas.data, `betas (${file.path})`, { where: (flat) => maskedBetaPosition(flat, betas.cols, mask) });
  return betas;
}

/**
 * An element of a session's trials × mask-voxels matrix as its reader finds it in the file: the trial, the voxel's
 * (i, j, k) and its NIfTI flat index i + X·(j + Y·k) (as data.md defines it), and its column among the mask's voxels.
 */
export function maskedBetaPosition(flat: number, voxels: number, mask: VoxelMask): string {
  const trial = Math.floor(flat / voxels);
  const column = flat % voxels;
  const index = mask.indices[column];
  const [X, Y] = mask.grid;
  const ijk = [index % X, Math.floor(index / X) % Y, Math.floor(index / (X * Y))];
  return `[trial ${trial}, voxel (i, j, k) = (${ijk.join(', ')})] (NIfTI flat index ${index}; mask voxel ${column})`;
}
