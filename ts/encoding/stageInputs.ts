/**
 * The files each of encode()'s stages reads from outside the run folder (see ts/pipeline/stageInputs.ts): a file
 * feature set's table and ids, the model folder, the noise ceiling's ncsnr, the mask and the atlases, the anatomy of
 * the report; the noise ceiling's 'estimate', the extraction's files (it reads their single test trials). The ceiling
 * reads the mask too, for its voxels only: the extraction's content holds them.
 */
import { join } from 'node:path';

import type { EncodeConfig } from '../config/encode.js';
import { brainmaskPath, ctabPath, meanEpiPath, ncsnrPath, roiPath, t1Path } from '../nsd/paths.js';
import { embeddingInputs, extractionInputs, regionVolume } from '../pipeline/stageInputs.js';
import { tableSpecs } from './runPaths.js';

/** A 'file' feature set's files (the table and its ids); none for the sets a stage computes. */
function featureFiles(c: EncodeConfig, set: string): string[] {
  const s = c.featureSets.find((f) => f.name === set);
  return s?.kind === 'file' ? [s.path, ...(s.ids ? [s.ids] : [])] : [];
}

/** The atlases of the region table (their volumes and label tables), which the maps and the report read. */
function atlasInputs(c: EncodeConfig): string[] {
  return c.regions.flatMap((atlas) => [roiPath(c.nsd.root, c.nsd.subject, atlas), ctabPath(c.nsd.root, atlas)]);
}

/** The inputs of the stage `id` of encodeStages(c). */
export function encodeStageInputs(c: EncodeConfig, id: string): string[] {
  const { root, subject } = c.nsd;
  if (id === 'extract') return extractionInputs(c.nsd, [c.nsd.roi]);
  if (id === 'ceiling') {
    if (c.noiseCeiling === 'auto') return [ncsnrPath(root, subject)];
    // 'estimate' extracts the single test trials itself, from the extraction's files: the extract stage's content
    // key covers their averages only, which changed trials can leave as they were (z-scoring off)
    if (c.noiseCeiling === 'estimate') return extractionInputs(c.nsd, [c.nsd.roi]);
    return c.noiseCeiling === 'none' ? [] : [c.noiseCeiling];
  }
  if (id === 'embed') return c.model ? embeddingInputs(root, c.model, c.nsd.captions) : [];
  if (id.startsWith('features.')) return c.model ? [c.model] : [];
  if (id.startsWith('fit.')) {
    const t = tableSpecs(c).find((s) => `fit.${s.key}` === id);
    return t ? featureFiles(c, t.spec.name) : [];
  }
  if (id.startsWith('banded.')) return (c.banded.find((b) => `banded.${b.name}` === id)?.sets ?? []).flatMap((s) => featureFiles(c, s));
  // the maps are written in the geometry of the mask's volume (its header), which the extraction's content does not
  // hold: a volume moved in space with the same voxels rewrites them (the report reads the mask too)
  const mask = regionVolume(root, subject, c.nsd.roi);
  if (id === 'maps') return [...new Set([...mask, ...atlasInputs(c)])];
  if (id === 'report') return [...new Set([...mask, ...atlasInputs(c)]), t1Path(root, subject), meanEpiPath(root, subject), brainmaskPath(root, subject)];
  return [];
}
