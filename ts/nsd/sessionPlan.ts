/**
 * The sessions a run will read and the images they show, worked out as extractNsd would (the betas files in
 * the chosen format, the design) from file headers only: for the preflights, so that a session without betas
 * or beyond the design is reported before any work rather than by the extract stage.
 */
import type { Grid } from '../io/voxelMask.js';
import { otherFormatBetas, otherFormatNote } from './otherFormat.js';
import { assertHdf5Layout, availableSessions, betasGridAffine, formatSessionList, sessionBetasFile, sessionsBetasShape, type BetasFormatChoice, type GridAffine } from './betas.js';
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

/** Sessions missing between the first and the last of `present` (ascending): a gap, not the end of a subject's sessions. */
export function sessionGaps(present: readonly number[]): number[] {
  const have = new Set(present);
  const gaps: number[] = [];
  for (let s = present[0] + 1; s < present[present.length - 1]; s++) if (!have.has(s)) gaps.push(s);
  return gaps;
}

/**
 * The warning for sessions without betas between sessions that have them, when every session with betas is read
 * (nsd.sessions null, or a command's --sessions not given), or null when there is no gap. NSD subjects end at
 * different sessions (30 to 40), so fewer sessions at the end is normal; a hole in the middle is more likely a file
 * deleted or not yet copied, which would otherwise change what the run reads without a word. `present` is
 * availableSessions' answer. `field` names how the sessions are chosen: a config's field (nsd.sessions, null by
 * default) or a command's flag (--sessions, absent by default); the words are the same either way. `setSessions`
 * says how to choose `what` sessions where the caller's user cannot do it by `field` (reconstruct's flags-only form:
 * "use --config with nsd.sessions set to …").
 */
export function sessionGapWarning(
  nsd: { root: string; subject: number; format: BetasFormatChoice },
  present: readonly number[],
  field = 'nsd.sessions',
  setSessions?: (what: string) => string,
): string | null {
  const gaps = sessionGaps(present);
  if (gaps.length === 0) return null;
  const { root, subject, format } = nsd;
  const looked = format === 'auto' ? `${betasPath(root, subject, gaps[0], 'hdf5')} or .nii.gz` : betasPath(root, subject, gaps[0], format);
  const s = gaps.length > 1 ? 's' : '';
  const flag = field.startsWith('--');
  const what = 'the sessions you mean to read';
  return (
    `subject ${subject}: session${s} ${formatSessionList(gaps)} ha${gaps.length > 1 ? 've' : 's'} no betas (looked for ${looked}), ` +
    `though sessions before and after do: ${flag ? `without ${field}` : `with ${field} null`} the run reads only the sessions that have betas (${formatSessionList([...present])}); ` +
    `restore the file${s}, or ${setSessions ? setSessions(what) : flag ? `give ${field} ${what}` : `set ${field} to ${what}`}`
  );
}

/**
 * The session-gap warning of an extraction of these options (sessionGapWarning), or null: only one that reads every
 * session with betas (`sessions` not given) can have one. Reads directory listings only.
 */
export async function extractionGapWarning(o: { root: string; subject: number; sessions?: unknown; format?: BetasFormatChoice }, field = 'nsd.sessions'): Promise<string | null> {
  if (o.sessions !== undefined && o.sessions !== null) return null;
  const nsd = { root: o.root, subject: o.subject, format: o.format ?? 'auto' };
  return sessionGapWarning(nsd, await availableSessions(nsd.root, nsd.subject, nsd.format, DEFAULT_MAX_SESSION), field);
}

/**
 * Resolves `sessions` (null: every session with betas among 1–37, as the extract stage does) against the NSD
 * root and the design. Problems name `field` (e.g. "nsd.sessions"); the plan is null when there are any.
 * Warnings: with sessions null, a session missing between sessions that have betas (sessionGapWarning, which
 * `setSessions` is passed to).
 */
export async function planNsdSessions(
  nsd: { root: string; subject: number; sessions: string | number[] | null; format: BetasFormatChoice },
  design: NsdDesign,
  field = 'nsd.sessions',
  setSessions?: (what: string) => string,
): Promise<{ plan: NsdSessionPlan | null; problems: string[]; warnings: string[] }> {
  const { root, subject, format } = nsd;
  const fmt = format === 'auto' ? '.hdf5 or .nii.gz' : format === 'hdf5' ? '.hdf5' : '.nii.gz';
  let sessions: number[];
  const warnings: string[] = [];
  if (nsd.sessions === null) {
    sessions = await availableSessions(root, subject, format, DEFAULT_MAX_SESSION);
    if (sessions.length === 0) {
      // (the subject's betas in the other format: say so, and how to read them)
      const elsewhere = await otherFormatBetas(root, format, [subject], DEFAULT_MAX_SESSION);
      return {
        plan: null,
        warnings,
        problems: [
          `subject ${subject} has no betas in ${root} (nsd.format '${format}': looked for ${betasPath(root, subject, 1, format === 'nifti' ? 'nifti' : 'hdf5')} and the other sessions 1-${DEFAULT_MAX_SESSION})` +
            (elsewhere ? `; ${otherFormatNote(elsewhere, 'nsd.format')}` : ''),
        ],
      };
    }
    const gap = sessionGapWarning(nsd, sessions, field, setSessions);
    if (gap) warnings.push(gap);
  } else {
    try {
      sessions = typeof nsd.sessions === 'string' ? parseSessions(nsd.sessions, field) : [...new Set(nsd.sessions)].sort((a, b) => a - b);
    } catch (e) {
      // (parseSessions names the field itself)
      return { plan: null, warnings, problems: [(e as Error).message] };
    }
    const present = new Set(await availableSessions(root, subject, format, Math.max(DEFAULT_MAX_SESSION, ...sessions)));
    const missing = sessions.filter((s) => !present.has(s));
    if (missing.length) {
      const have = [...present].sort((a, b) => a - b);
      const elsewhere = await otherFormatBetas(root, format, [subject], Math.max(...missing), missing);
      return {
        plan: null,
        warnings,
        problems: [
          `${field}: session${missing.length > 1 ? 's' : ''} ${formatSessionList(missing)} of subject ${subject} ha${missing.length > 1 ? 've' : 's'} no betas (${fmt}) in ` +
            `${root} (looked for ${betasPath(root, subject, missing[0], format === 'nifti' ? 'nifti' : 'hdf5')}); ` +
            (have.length ? `sessions with betas: ${formatSessionList(have)}` : 'no session has betas there') +
            (elsewhere ? `; ${otherFormatNote(elsewhere, 'nsd.format')}` : ''),
        ],
      };
    }
  }
  try {
    const files = await Promise.all(sessions.map((s) => sessionBetasFile(root, subject, s, format)));
    const file = files[0];
    const { trials: T, grid } = await sessionsBetasShape(files);
    await assertHdf5Layout(root, subject, file, { trials: T, grid });
    const table = nsdTrialTable(design, subject, sessions, T, file.path);
    const ids = new Set<number>();
    const test = new Set<number>();
    table.imageId.forEach((id, k) => {
      ids.add(id);
      if (table.test[k]) test.add(id);
    });
    const affine = await betasGridAffine(root, subject, file, grid);
    return { plan: { sessions, trialsPerSession: T, imageIds: Int32Array.from(ids).sort(), testImages: test.size, grid, betasFile: file.path, affine }, problems: [], warnings };
  } catch (e) {
    return { plan: null, problems: [`${field}: ${(e as Error).message}`], warnings };
  }
}
