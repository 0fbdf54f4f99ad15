import { readdir, stat } from 'node:fs/promises';
import { InvalidArgumentError, MissingFileError } from '../errors.js';
import { availableSessions, exists } from './betas.js';
import * as P from './paths.js';

/** Sessions completed by each NSD subject (Allen et al. 2022). */
export const NSD_SESSIONS_COMPLETED = [40, 40, 32, 30, 40, 32, 40, 30];

export interface NsdSubjectInfo {
  subject: number;
  niftiSessions: number[];
  hdf5Sessions: number[];
  brainmask: boolean;
  rois: string[];
  /**
   * Files the adapter needs for this subject that are absent (only for subjects with any data). A session without
   * betas in either format is one entry naming both files: "<…>/betas_session02.nii.gz or <…>/betas_session02.hdf5".
   */
  missing: string[];
}

export interface NsdInfo {
  root: string;
  expdesign: boolean;
  stimInfo: boolean;
  stimuli: boolean;
  captions: string[];
  subjects: NsdSubjectInfo[];
  /** Dataset-wide files that are absent. */
  missing: string[];
}

/** What an NSD folder holds and lacks, per subject; reads only directory listings. */
export async function nsdInfo(root: string): Promise<NsdInfo> {
  if (!(await exists(root))) throw new MissingFileError(`${root}: NSD root folder not found`);
  // a file has no listing: every check below would say "missing" and the report look like an empty download
  if (!(await stat(root)).isDirectory()) throw new InvalidArgumentError(`${root} is a file; expected the NSD root folder (holding nsddata/, nsddata_betas/, …)`);
  const missing: string[] = [];
  const check = async (p: string) => {
    const ok = await exists(p);
    if (!ok) missing.push(p);
    return ok;
  };
  const expdesign = await check(P.expdesignPath(root));
  const stimInfo = await exists(P.stimInfoPath(root));
  const stimuli = await exists(P.stimuliPath(root));
  const captions: string[] = [];
  for (const s of ['train2017', 'val2017'] as const) if (await exists(P.cocoCaptionsPath(root, s))) captions.push(P.cocoCaptionsPath(root, s));
  const subjects: NsdSubjectInfo[] = [];
  for (let subject = 1; subject <= 8; subject++) {
    const niftiSessions = await availableSessions(root, subject, 'nifti');
    const hdf5Sessions = await availableSessions(root, subject, 'hdf5');
    const brainmask = await exists(P.brainmaskPath(root, subject));
    let rois: string[] = [];
    try {
      rois = (await readdir(P.func1pt8Dir(root, subject) + '/roi'))
        .filter((f) => f.endsWith('.nii.gz') && !/^(lh|rh)\./.test(f))
        .map((f) => f.replace(/\.nii\.gz$/, ''))
        .sort();
    } catch {
      rois = [];
    }
    const any = niftiSessions.length + hdf5Sessions.length > 0 || brainmask || rois.length > 0;
    if (!any) continue;
    const sMissing: string[] = [];
    if (!brainmask) sMissing.push(P.brainmaskPath(root, subject));
    for (const atlas of ['nsdgeneral', 'streams']) if (!rois.includes(atlas)) sMissing.push(P.roiPath(root, subject, atlas));
    const have = new Set([...niftiSessions, ...hdf5Sessions]);
    const last = Math.max(...have, 0);
    // a session is there in either format, so one that is absent is absent in both: both files are named
    const eitherFormat = (s: number) => `${P.betasPath(root, subject, s, 'nifti')} or ${P.betasPath(root, subject, s, 'hdf5')}`;
    for (let s = 1; s < last; s++) if (!have.has(s)) sMissing.push(eitherFormat(s));
    if (have.size === 0) sMissing.push(eitherFormat(1));
    subjects.push({ subject, niftiSessions, hdf5Sessions, brainmask, rois, missing: sMissing });
  }
  return { root, expdesign, stimInfo, stimuli, captions, subjects, missing };
}

/** Human-readable report for `brainlatent nsd info`. */
export function formatNsdInfo(info: NsdInfo): string {
  const ranges = (xs: number[]) => {
    if (!xs.length) return 'none';
    const out: string[] = [];
    for (let i = 0; i < xs.length; ) {
      let j = i;
      while (j + 1 < xs.length && xs[j + 1] === xs[j] + 1) j++;
      out.push(i === j ? `${xs[i]}` : `${xs[i]}-${xs[j]}`);
      i = j + 1;
    }
    return out.join(',');
  };
  const yes = (b: boolean) => (b ? 'yes' : 'MISSING');
  const lines = [
    `NSD root: ${info.root}`,
    `  design (nsd_expdesign.mat): ${yes(info.expdesign)}`,
    `  stimulus info CSV: ${info.stimInfo ? 'yes' : 'no'}`,
    `  stimuli (nsd_stimuli.hdf5): ${info.stimuli ? 'yes' : 'no'}`,
    `  COCO captions: ${info.captions.length ? info.captions.length + ' file(s)' : 'no'}`,
  ];
  if (!info.subjects.length) lines.push('  no subject data found');
  for (const s of info.subjects) {
    lines.push(
      `subject ${s.subject}: betas .nii.gz sessions ${ranges(s.niftiSessions)}; .hdf5 sessions ${ranges(s.hdf5Sessions)} ` +
        `(NSD has ${NSD_SESSIONS_COMPLETED[s.subject - 1]})`,
      `  brainmask: ${yes(s.brainmask)}; ROIs: ${s.rois.join(', ') || 'none'}`,
    );
    for (const m of s.missing) lines.push(`  missing: ${m}`);
  }
  for (const m of info.missing) lines.push(`missing: ${m}`);
  return lines.join('\n');
}
