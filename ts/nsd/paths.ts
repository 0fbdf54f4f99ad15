import { join } from 'node:path';

/** Where NSD keeps each file, relative to the dataset root (the S3 bucket's layout). */

export type BetasFormat = 'nifti' | 'hdf5';

/** The GLMsingle beta versions: b3 (the default), b2, b1. */
export type BetasVersion = 'betas_fithrf_GLMdenoise_RR' | 'betas_fithrf' | 'betas_assumehrf';

export const DEFAULT_BETAS_VERSION: BetasVersion = 'betas_fithrf_GLMdenoise_RR';

export function subjectDir(subject: number): string {
  return `subj${String(subject).padStart(2, '0')}`;
}

export function betasDir(root: string, subject: number, version: BetasVersion = DEFAULT_BETAS_VERSION): string {
  return join(root, 'nsddata_betas', 'ppdata', subjectDir(subject), 'func1pt8mm', version);
}

export function betasPath(root: string, subject: number, session: number, format: BetasFormat, version?: BetasVersion): string {
  const name = `betas_session${String(session).padStart(2, '0')}.${format === 'nifti' ? 'nii.gz' : 'hdf5'}`;
  return join(betasDir(root, subject, version), name);
}

/** NSD's noise-ceiling SNR per voxel, beside the betas (what encode's noiseCeiling 'auto' reads). */
export function ncsnrPath(root: string, subject: number): string {
  return join(betasDir(root, subject), 'ncsnr.nii.gz');
}

export function func1pt8Dir(root: string, subject: number): string {
  return join(root, 'nsddata', 'ppdata', subjectDir(subject), 'func1pt8mm');
}

export function brainmaskPath(root: string, subject: number): string {
  return join(func1pt8Dir(root, subject), 'brainmask.nii.gz');
}

/** The subject's T1 resampled to the functional grid (NSD's anatomical underlay for func1pt8mm maps). */
export function t1Path(root: string, subject: number): string {
  return join(func1pt8Dir(root, subject), 'T1_to_func1pt8mm.nii.gz');
}

/** The mean EPI volume on the functional grid. */
export function meanEpiPath(root: string, subject: number): string {
  return join(func1pt8Dir(root, subject), 'mean.nii.gz');
}

export function roiPath(root: string, subject: number, atlas: string): string {
  return join(func1pt8Dir(root, subject), 'roi', `${atlas}.nii.gz`);
}

/** The atlas whose label names a volume has: a hemisphere's (lh.streams, rh.prf-visualrois) are its atlas's. */
export function labelAtlas(atlas: string): string {
  return atlas.replace(/^[lr]h\./, '');
}

/** Label names for an atlas ("value name" per line); NSD ships one per atlas, none per hemisphere. */
export function ctabPath(root: string, atlas: string): string {
  return join(root, 'nsddata', 'freesurfer', 'fsaverage', 'label', `${labelAtlas(atlas)}.mgz.ctab`);
}

export function expdesignPath(root: string): string {
  return join(root, 'nsddata', 'experiments', 'nsd', 'nsd_expdesign.mat');
}

export function stimInfoPath(root: string): string {
  return join(root, 'nsddata', 'experiments', 'nsd', 'nsd_stim_info_merged.csv');
}

export function responsesPath(root: string, subject: number): string {
  return join(root, 'nsddata', 'ppdata', subjectDir(subject), 'behav', 'responses.tsv');
}

export function stimuliPath(root: string): string {
  return join(root, 'nsddata_stimuli', 'stimuli', 'nsd', 'nsd_stimuli.hdf5');
}

/** COCO 2017 caption files, where Takagi & Nishimoto's code expects them. */
export function cocoCaptionsPath(root: string, split: 'train2017' | 'val2017'): string {
  return join(root, 'nsddata_stimuli', 'stimuli', 'nsd', 'annotations', `captions_${split}.json`);
}

/** The miniature NSD's ground truth (not part of real NSD). */
export function synthTruthPath(root: string): string {
  return join(root, 'synth_truth.json');
}
