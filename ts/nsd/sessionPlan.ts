/**
 * The sessions a run will read and the images they show, worked out as extractNsd would (the betas files in
 * the chosen format, the design) from file headers only: for the preflights, so that a session without betas
 * or beyond the design is reported before any work rather than by the extract stage.
 */
import type { Grid } from '../io/voxelMask.js';
import { availableSessions, betasGridAffine, formatSessionList, sessionBetasFile, sessionBetasShape, type BetasFormatChoice, type GridAffine } from './betas.js';
import { nsdTrialTable, type NsdDesign } from './expdesign.js';
import { maskGridMismatch } from './grid.js';
import { DEFAULT_MAX_SESSION, parseSessions } from './extract.js';
import { betasPath } from './paths.js';

export interface NsdSessionPlan {
  sessions: number[];
  trialsPerSession: number;
  /** 73k ids of the images shown in those sessions (the rows the run will have betas for), ascending. */
  imageIds: Int32Array;
  /** How many of them are test (shared) images. */
  testImages: number;
  /** The voxel grid (X, Y, Z) of the first session's betas, and that file: what a region mask must match. */
  grid: Grid;
  betasFile: string;
  /** Where that grid sits in the world (betasGridAffine); null when no file tells (HDF5 betas without a reference NIfTI). */
  affine: GridAffine | null;
}

export { formatSessionList, maskGridMismatch };

/**
 * Resolves `sessions` (null: every session with betas among 1–37, as the extract stage does) against the NSD
 * root and the design. Problems name `field` (e.g. "nsd.sessions"); the plan is null when there are any.
 */
export async function planNsdSessions(
  nsd: { root: string; subject: number; sessions: string | number[] | null; format: BetasFormatChoice },
  design: NsdDesign,
  field = 'nsd.sessions',
): Promise<{ plan: NsdSessionPlan | null; problems: string[] }> {
  const { root, subject, format } = nsd;
  const fmt = format === 'auto' ? '.hdf5 or .nii.gz' : format === 'hdf5' ? '.hdf5' : '.nii.gz';
  let sessions: number[];
  if (nsd.sessions === null) {
    sessions = await availableSessions(root, subject, format, DEFAULT_MAX_SESSION);
    if (sessions.length === 0) {
      return { plan: null, problems: [`subject ${subject} has no betas in ${root} (nsd.format '${format}': looked for ${betasPath(root, subject, 1, format === 'nifti' ? 'nifti' : 'hdf5')} and the other sessions 1-${DEFAULT_MAX_SESSION})`] };
    }
  } else {
    try {
      sessions = typeof nsd.sessions === 'string' ? parseSessions(nsd.sessions, field) : [...new Set(nsd.sessions)].sort((a, b) => a - b);
    } catch (e) {
      // (parseSessions names the field itself)
      return { plan: null, problems: [(e as Error).message] };
    }
    const present = new Set(await availableSessions(root, subject, format, Math.max(DEFAULT_MAX_SESSION, ...sessions)));
    const missing = sessions.filter((s) => !present.has(s));
    if (missing.length) {
      const have = [...present].sort((a, b) => a - b);
      return {
        plan: null,
        problems: [
          `${field}: session${missing.length > 1 ? 's' : ''} ${formatSessionList(missing)} of subject ${subject} ha${missing.length > 1 ? 've' : 's'} no betas (${fmt}) in ` +
            `${root} (looked for ${betasPath(root, subject, missing[0], format === 'nifti' ? 'nifti' : 'hdf5')}); ` +
            (have.length ? `sessions with betas: ${formatSessionList(have)}` : 'no session has betas there'),
        ],
      };
    }
  }
  try {
    const file = await sessionBetasFile(root, subject, sessions[0], format);
    const { trials: T, grid } = await sessionBetasShape(file);
    const table = nsdTrialTable(design, subject, sessions, T);
    const ids = new Set<number>();
    const test = new Set<number>();
    table.imageId.forEach((id, k) => {
      ids.add(id);
      if (table.test[k]) test.add(id);
    });
    const affine = await betasGridAffine(root, subject, file, grid);
    return { plan: { sessions, trialsPerSession: T, imageIds: Int32Array.from(ids).sort(), testImages: test.size, grid, betasFile: file.path, affine }, problems: [] };
  } catch (e) {
    return { plan: null, problems: [`${field}: ${(e as Error).message}`] };
  }
}
