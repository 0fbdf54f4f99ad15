/**
 * The sessions a run read, for the data section of its report.html: the list as the extraction recorded it, what
 * chose them, and the preflights' warning when a session is missing between sessions with betas (sessionGapWarning:
 * the same words the dry runs, `nsd extract` and the batch print).
 */
import { formatSessionList, type BetasFormatChoice } from '../nsd/betas.js';
import { sessionGapWarning } from '../nsd/sessionPlan.js';
import { esc } from './html.js';

export interface SessionsRead {
  /** The sessions the extraction read, ascending (its stage's record); absent in run folders from before it was kept. */
  sessions?: number[];
  /** The config's nsd: its sessions as given (null: every session with betas). */
  nsd: { root: string; subject: number; format: BetasFormatChoice; sessions: string | number[] | null };
}

/** The sessions line and the gap warning, or null when the run folder has no record of the sessions read. */
export function sessionsFact(r: SessionsRead): { text: string; warning: string | null } | null {
  if (!Array.isArray(r.sessions) || r.sessions.length === 0) return null;
  const chosen = r.nsd.sessions === null ? 'every session with betas (nsd.sessions null)' : `nsd.sessions ${Array.isArray(r.nsd.sessions) ? r.nsd.sessions.join(',') : r.nsd.sessions}`;
  const text = `${formatSessionList(r.sessions)} (${r.sessions.length} session${r.sessions.length === 1 ? '' : 's'}: ${chosen})`;
  // only a run that read every session with betas can have read around a lost file
  return { text, warning: r.nsd.sessions === null ? sessionGapWarning(r.nsd, r.sessions) : null };
}

/** The warning as the reports show one. */
export const warningBox = (w: string): string => `<div class="warning"><strong>Warning:</strong> ${esc(w)}</div>`;
