/** encode()'s checks before any long work: every problem is collected and reported at once. */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';

import type { EncodeConfig } from '../config/encode.js';
import type { VoxelMask } from '../io/voxelMask.js';
import { loadNsdCaptions } from '../nsd/captions.js';
import { readNsdDesign } from '../nsd/expdesign.js';
import { expdesignPath } from '../nsd/paths.js';
import { loadRegionMask } from '../nsd/roi.js';
import { PreflightError } from '../pipeline/errors.js';
import { runFolderConflict } from '../pipeline/runFolder.js';
import { missingUnetLayers, unetSizeMismatch } from './unetLayers.js';

export interface EncodePreflight {
  mask: VoxelMask;
  voxels: number;
  /** Images the subject saw in the design (all sessions): the rows of the feature tables. */
  images: number;
  /** Lines for the dry run: model evaluations to come. */
  estimates: string[];
}

const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();

export async function preflightEncode(c: EncodeConfig, options: { force?: boolean } = {}): Promise<EncodePreflight> {
  const problems: string[] = [];
  const model = c.featureSets.filter((s) => s.kind !== 'file');
  if (model.length && c.model !== null) {
    if (!isDir(c.model)) problems.push(`model folder ${c.model} does not exist`);
    else {
      const parts = ['vae_encoder', 'text_encoder', ...(model.some((s) => s.kind === 'zc' || s.kind === 'unet') ? ['unet'] : [])];
      for (const part of parts) {
        if (!existsSync(join(c.model, part, 'model.onnx'))) problems.push(`model folder ${c.model} has no ${part}/model.onnx (expected a diffusers/optimum SD 1.x ONNX export)`);
      }
      if (model.some((s) => s.kind === 'zc' || s.kind === 'unet') && existsSync(join(c.model, 'unet', 'model.onnx'))) {
        try {
          const mismatch = await unetSizeMismatch(c.model, c.imageSize);
          if (mismatch) problems.push(mismatch);
        } catch (e) {
          problems.push((e as Error).message);
        }
      }
      for (const s of model) {
        if (s.kind !== 'unet' || !existsSync(join(c.model, 'unet', 'model.onnx'))) continue;
        try {
          const missing = await missingUnetLayers(c.model, s.layers);
          if (missing) problems.push(`feature set '${s.name}': ${missing}`);
        } catch (e) {
          problems.push(`feature set '${s.name}': ${(e as Error).message}`);
        }
      }
    }
  }
  for (const s of c.featureSets) {
    if (s.kind !== 'file') continue;
    if (!existsSync(s.path)) problems.push(`feature set '${s.name}': ${s.path} does not exist`);
    if (s.ids !== null && !existsSync(s.ids)) problems.push(`feature set '${s.name}': ids file ${s.ids} does not exist`);
  }
  if (!['auto', 'none', 'estimate'].includes(c.noiseCeiling) && !existsSync(c.noiseCeiling)) problems.push(`noiseCeiling: ${c.noiseCeiling} does not exist`);
  const conflict = await runFolderConflict(c, { force: options.force });
  if (conflict) problems.push(conflict);
  let mask: VoxelMask | null = null;
  let images = 0;
  if (!isDir(c.nsd.root)) problems.push(`NSD root ${c.nsd.root} does not exist`);
  else {
    try {
      mask = (await loadRegionMask(c.nsd.root, c.nsd.subject, c.nsd.roi)).mask;
      if (mask.indices.length === 0) problems.push(`nsd.roi '${c.nsd.roi}' has no voxels for subject ${c.nsd.subject}`);
    } catch (e) {
      problems.push(`nsd.roi '${c.nsd.roi}': ${(e as Error).message}`);
    }
    if (!existsSync(expdesignPath(c.nsd.root))) problems.push(`${expdesignPath(c.nsd.root)} does not exist (the NSD design file)`);
    else {
      try {
        const d = await readNsdDesign(c.nsd.root);
        const seen = new Set<number>();
        for (let k = 0; k < d.subjectimCols; k++) seen.add(d.subjectim[k * d.subjectimRows + (c.nsd.subject - 1)]);
        seen.delete(0);
        images = seen.size;
      } catch (e) {
        problems.push((e as Error).message);
      }
    }
    if (model.length) {
      try {
        await loadNsdCaptions(c.nsd.root, c.nsd.captions ?? undefined);
      } catch (e) {
        problems.push(`captions: ${(e as Error).message}`);
      }
    }
  }
  if (problems.length) throw new PreflightError(problems, 'encode');
  const estimates: string[] = [];
  if (model.length) estimates.push(`VAE and text encoder: ${images} images`);
  for (const s of model) {
    if (s.kind === 'zc') {
      const steps = Math.min(Math.floor(s.steps * s.strength), s.steps) * (s.guidance > 1 ? 2 : 1);
      estimates.push(`'${s.name}': ${images} images × ${steps} U-Net evaluations (img2img)`);
    }
    if (s.kind === 'unet') estimates.push(`'${s.name}': ${images} images × ${s.timesteps.length} U-Net evaluations`);
  }
  // every problem has been thrown by now, so the mask loaded
  return { mask: mask!, voxels: mask!.indices.length, images, estimates };
}
