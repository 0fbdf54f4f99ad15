/**
 * The files a stage reads from outside its run folder, by stage: their identities go into the stage's marker, and a
 * changed one reruns the stage and what depends on it (runFolder's stageState). Paths only, nothing read here, so
 * the job runner can name them without loading the stage code.
 */
import type { ReconstructConfig } from '../config/reconstruct.js';
import type { BetasFormatChoice } from '../nsd/betas.js';
import { DEFAULT_MAX_SESSION, parseSessions } from '../nsd/extract.js';
import { betasPath, cocoCaptionsPath, ctabPath, expdesignPath, roiPath, stimInfoPath, stimuliPath, type BetasFormat } from '../nsd/paths.js';
import { parseRegionSpec } from '../nsd/regionSpec.js';

/** The NSD options an extraction's inputs depend on (as in the configs' `nsd`). */
export interface ExtractionSource {
  root: string;
  subject: number;
  /** null: every session present among 1–37. */
  sessions: string | number[] | null;
  format: BetasFormatChoice;
}

/**
 * The betas files an extraction may read: each session's file of the format, both for 'auto' (the .hdf5 when
 * present, else the .nii.gz), so that one appearing later counts too; not the rest of the folder (ncsnr.nii.gz …).
 */
function betasInputs(n: ExtractionSource): string[] {
  let sessions: number[];
  try {
    sessions = n.sessions === null ? Array.from({ length: DEFAULT_MAX_SESSION }, (_, i) => i + 1) : typeof n.sessions === 'string' ? parseSessions(n.sessions) : n.sessions;
  } catch {
    return []; // (a spec the config's check refuses)
  }
  const formats: BetasFormat[] = n.format === 'auto' ? ['hdf5', 'nifti'] : [n.format];
  return sessions.flatMap((s) => formats.map((f) => betasPath(n.root, n.subject, s, f)));
}

/**
 * What an NSD extraction for these regions reads: the design, each region's volume (and its atlas's label table when
 * labels are named), and the subject's betas files.
 */
export function extractionInputs(n: ExtractionSource, rois: readonly string[]): string[] {
  const { root, subject } = n;
  const files = [expdesignPath(root), ...betasInputs(n)];
  for (const roi of rois) {
    let r: ReturnType<typeof parseRegionSpec>;
    try {
      r = parseRegionSpec(roi);
    } catch {
      continue; // (a spec the config's check refuses: the stage fails on it anyway)
    }
    files.push(r.kind === 'file' ? r.path : roiPath(root, subject, r.atlas));
    if (r.kind === 'atlas' && r.labels) files.push(ctabPath(root, r.atlas));
  }
  return [...new Set(files)];
}

/** What embedding the stimuli reads: the model folder, the stimuli and the captions (a file of the user's, else COCO's). */
export function embeddingInputs(root: string, model: string, captions: string | null): string[] {
  const text = captions ? [captions] : [cocoCaptionsPath(root, 'train2017'), cocoCaptionsPath(root, 'val2017'), stimInfoPath(root)];
  return [model, stimuliPath(root), ...text];
}

/**
 * A reconstruction stage's inputs: the extraction's, the embedding's, and the evaluation's feature networks (each
 * network's model file and its external data files: its weights.pb replaced changes the metrics too). The other
 * later stages (the VAE decoder, the U-Net, the originals for the metrics) read the same model folder and stimuli as
 * the features stage, and run whenever it does.
 */
export async function reconstructStageInputs(c: ReconstructConfig, stage: string): Promise<string[]> {
  if (stage === 'extract') return extractionInputs(c.nsd, [c.decoders.z.roi, c.decoders.c.roi]);
  if (stage === 'features') return embeddingInputs(c.nsd.root, c.model.dir, c.nsd.captions);
  // (a network replaced by another changes the metrics, and nothing before them)
  if (stage === 'evaluate') {
    const files: string[] = [];
    for (const n of c.evaluation.networks) files.push(n.path, ...(await networkDataFiles(n.path)));
    return [...new Set(files)];
  }
  return [];
}

/**
 * A feature network's external data files (read from its graph's locations); none when it cannot be read: the
 * evaluation then fails naming it, and its model file is an input all the same.
 */
async function networkDataFiles(path: string): Promise<string[]> {
  const { externalDataFiles } = await import('../sd/onnxWeightRefs.js');
  return externalDataFiles(path).catch(() => []);
}

/** The file of a region spec's volume (an atlas's, or the user's mask); none for a spec the config's check refuses. */
export function regionVolume(root: string, subject: number, roi: string): string[] {
  try {
    const r = parseRegionSpec(roi);
    return [r.kind === 'file' ? r.path : roiPath(root, subject, r.atlas)];
  } catch {
    return [];
  }
}
