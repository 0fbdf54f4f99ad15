/**
 * Betas in the format not chosen: with --format nifti on a root that holds only .hdf5 files, "no betas" is true of
 * the format asked for, but what the user needs to hear is that the other files are there, and how to read them.
 */
import { availableSessions, formatSessionList, type BetasFormatChoice } from './betas.js';
import type { BetasFormat } from './paths.js';

export interface OtherFormatBetas {
  /** The format the betas found are in (the one not chosen). */
  format: BetasFormat;
  /** Each subject with betas in it, and its sessions (among those looked at). */
  subjects: { subject: number; sessions: number[] }[];
}

/**
 * The subjects of `subjects` (and of their sessions 1..max, or only `sessions` when given) with betas in the format
 * `format` does not choose. Null for 'auto' (it reads either) or when there are none.
 */
export async function otherFormatBetas(
  root: string,
  format: BetasFormatChoice,
  subjects: readonly number[],
  max: number,
  sessions?: readonly number[],
): Promise<OtherFormatBetas | null> {
  if (format === 'auto') return null;
  const other: BetasFormat = format === 'nifti' ? 'hdf5' : 'nifti';
  const found: OtherFormatBetas['subjects'] = [];
  for (const subject of subjects) {
    let present = await availableSessions(root, subject, other, max);
    if (sessions) present = present.filter((s) => sessions.includes(s));
    if (present.length) found.push({ subject, sessions: present });
  }
  return found.length ? { format: other, subjects: found } : null;
}

/**
 * "the root has .hdf5 betas for subject 1 (sessions 1-3) and subject 2 (sessions 1-2): nsd.format 'hdf5' reads them
 * (or 'auto', either format)", naming the choice by `option` ('format', 'nsd.format'); `lead` replaces "the root has ".
 */
export function otherFormatNote(o: OtherFormatBetas, option: string, lead = 'the root has '): string {
  const ext = o.format === 'hdf5' ? '.hdf5' : '.nii.gz';
  const each = o.subjects.map((s) => `subject ${s.subject} (session${s.sessions.length > 1 ? 's' : ''} ${formatSessionList(s.sessions)})`);
  const list = each.length > 1 ? `${each.slice(0, -1).join(', ')} and ${each[each.length - 1]}` : each[0];
  return `${lead}${ext} betas for ${list}: ${option} '${o.format}' reads them (or 'auto', either format)`;
}
