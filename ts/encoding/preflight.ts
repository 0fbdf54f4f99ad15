/** encode()'s checks before any long work: every problem is collected and reported at once. */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { EncodeConfigSchema, type EncodeConfig, type FeatureSetSpec } from '../config/encode.js';
import { readIntVectorNpy, readNpyHeader, type NpyHeader } from '../io/npy.js';
import { scanNpyNonFinite } from '../io/npyScan.js';
import type { VoxelMask } from '../io/voxelMask.js';
import { modelFileProblem } from '../sd/modelRoots.js';
import { externalDataProblems } from '../sd/onnxWeightRefs.js';
import { loadNsdCaptions } from '../nsd/captions.js';
import { nsdTrialTable, readNsdDesign, type NsdDesign } from '../nsd/expdesign.js';
import { trainRowImageIds } from '../nsd/extract.js';
import { formatSessionList, maskGridMismatch, planNsdSessions, type NsdSessionPlan } from '../nsd/sessionPlan.js';
import { nsd73kIdProblem, rowsAs73kIdsProblem } from '../nsd/ids.js';
import { expdesignPath, func1pt8Dir, ncsnrPath, roiPath } from '../nsd/paths.js';
import { loadRegionMask, type RegionMask } from '../nsd/roi.js';
import { PreflightError } from '../pipeline/errors.js';
import { trainFoldsProblem } from '../pipeline/trainFolds.js';
import { runFolderConflict } from '../pipeline/runFolder.js';
import { runOutputOverlaps } from '../pipeline/runFolderInputs.js';
import { mosaicPixelsProblem } from './mosaicPreflight.js';
import { encodeFitMemory, memoryBudgetProblem } from './ridgeMemory.js';
import { tableSpecs } from './runPaths.js';
import { knownTableWidths } from './tableWidths.js';
import { checkUnetLayers, missingUnetLayers, unetSizeMismatch } from './unetLayers.js';
import { volumeGridProblems } from './volumeGrids.js';
import { planLabels, planRun, resolvePlanOptions, unetEvaluationsPerImage } from '../sd/samplingOptions.js';
import type { SamplerPlanInfo } from '../native/samplerTypes.js';
import { readScheduleConfig } from '../sd/schedulerConfig.js';

export interface EncodePreflight {
  mask: VoxelMask;
  voxels: number;
  /** Images with betas in the sessions the run reads: the images the feature tables and models cover. */
  images: number;
  /** Images the subject saw in the design (all sessions, with betas or not). */
  designImages: number;
  /** Lines for the dry run: model evaluations to come. */
  estimates: string[];
  /**
   * Lines for the dry run: each ridge fit to run whose features' width is known now, its route, shape and memory
   * plan (planned peak, target batches) under ridge.memoryBudget.
   */
  fits: string[];
  /** What is suspicious but not wrong: a session missing between sessions that have betas (planNsdSessions). */
  warnings: string[];
  /** What the run will leave out though nothing is wrong, said before it runs: no noise ceiling under 'auto' (noiseCeilingNote). */
  notes: string[];
}

/**
 * Under noiseCeiling 'auto' (the default) without NSD's ncsnr.nii.gz beside the betas, the run has no noise ceiling:
 * regions.csv's ceiling columns stay empty and no r/√NC maps are written. Said in one line, with the way to get one.
 */
export function noiseCeilingNote(c: EncodeConfig): string | null {
  if (c.noiseCeiling !== 'auto') return null;
  const path = ncsnrPath(c.nsd.root, c.nsd.subject);
  if (existsSync(path)) return null;
  return (
    `noiseCeiling 'auto': no ${path}, so no noise ceiling (regions.csv's ceiling columns empty, no r/√NC maps); ` +
    "noiseCeiling 'estimate' computes one from the test images' repetitions, 'none' says there is none"
  );
}

const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();

export interface EncodePreflightOptions {
  force?: boolean;
  /** How a folder holding another run's outputs is to be resolved, in the caller's words (runFolderConflict; default: encode's flags). */
  remedy?: string;
  /**
   * The 'unet' feature sets whose features stage will run (default: all). Only their layers are run through the
   * U-Net (checkUnetLayers loads it with the layers exposed: seconds to minutes on a real export), so a resumed run whose U-Net
   * features are done does not pay for it; the features stage checks each layer's output again as it computes.
   */
  unetSetsToRun?: ReadonlySet<string>;
  /**
   * The ids of the stages that will run (default: all): `estimates` lists the model work of those only — the VAE
   * and text encoder when 'embed' runs, a 'zc' or 'unet' set's U-Net evaluations when its 'features.<name>' runs —
   * so a dry run of a resumed run does not announce evaluations that are done.
   */
  stagesToRun?: ReadonlySet<string>;
  /** Names the config in the messages that name its fields (a file name; default 'config'), as resolveEncodeConfig's `source`. */
  source?: string;
}

export async function preflightEncode(c: EncodeConfig, options: EncodePreflightOptions = {}): Promise<EncodePreflight> {
  const problems: string[] = [];
  const warnings: string[] = [];
  const model = c.featureSets.filter((s) => s.kind !== 'file');
  // U-Net layers' output shapes on the probe batch (their tables' widths)
  let unetShapes = new Map<string, number[]>();
  // each 'zc' set's img2img plan (its U-Net calls for the estimates)
  const zcPlans = new Map<string, SamplerPlanInfo>();
  if (model.length && c.model !== null) {
    if (!isDir(c.model)) problems.push(`model folder ${c.model} does not exist`);
    else {
      const parts = ['vae_encoder', 'text_encoder', ...(model.some((s) => s.kind === 'zc' || s.kind === 'unet') ? ['unet'] : [])];
      let unetThere = false;
      for (const part of parts) {
        // (under a service's model roots a link out of them is refused alike whether or not its target exists)
        const problem = await modelFileProblem(join(c.model, part, 'model.onnx'), `model folder ${c.model} has no ${part}/model.onnx (expected a diffusers/optimum SD 1.x ONNX export)`);
        if (problem) problems.push(problem);
        else if (part === 'unet') unetThere = true;
      }
      // (under a service's model roots: external data linked out of them, refused now as the load would refuse it)
      if (problems.length === 0) problems.push(...(await externalDataProblems(parts.map((part) => join(c.model!, part, 'model.onnx')))));
      if (unetThere) {
        const u = await unetProblems(c, options.unetSetsToRun);
        problems.push(...u.problems);
        unetShapes = u.shapes;
      }
      // a z_c set's DDIM plan on the folder's schedule, as its run plans it (zcFeatures: ddim, the diffusers rule): its
      // steps against the schedule, a strength that runs no step (named by the fields), and its U-Net calls
      const zcSets = c.featureSets.flatMap((s, i) => (s.kind === 'zc' ? [{ s, i }] : []));
      if (zcSets.length) {
        try {
          const schedule = await readScheduleConfig(c.model);
          for (const { s, i } of zcSets) {
            try {
              zcPlans.set(s.name, planRun(resolvePlanOptions({ schedule, scheduler: 'ddim' }, { scheduler: 'ddim', steps: s.steps, strength: s.strength }, planLabels(`featureSets[${i}].`))));
            } catch (e) {
              problems.push((e as Error).message);
            }
          }
        } catch (e) {
          problems.push((e as Error).message);
        }
      }
    }
  }
  if (!['auto', 'none', 'estimate'].includes(c.noiseCeiling) && !existsSync(c.noiseCeiling)) problems.push(`noiseCeiling: ${c.noiseCeiling} does not exist`);
  problems.push(...(await runOutputOverlaps(EncodeConfigSchema, c)));
  const conflict = await runFolderConflict(c, { force: options.force, remedy: options.remedy });
  if (conflict) problems.push(conflict);
  let mask: VoxelMask | null = null;
  let region: RegionMask | null = null;
  let images = 0;
  let designImages = 0;
  let plan: NsdSessionPlan | null = null;
  let design: NsdDesign | null = null;
  let budgetFloor: string | null = null;
  if (!isDir(c.nsd.root)) problems.push(`NSD root ${c.nsd.root} does not exist`);
  else {
    try {
      region = await loadRegionMask(c.nsd.root, c.nsd.subject, c.nsd.roi);
      mask = region.mask;
      if (mask.indices.length === 0) problems.push(`nsd.roi '${c.nsd.roi}' has no voxels for subject ${c.nsd.subject}`);
      // the mosaics' size is known once the mask is: refused now, not by the report stage after every fit
      else {
        const tooBig = mosaicPixelsProblem(c, region, options.source);
        if (tooBig) problems.push(tooBig);
      }
      // a budget every fit would refuse, after the extraction and the embeddings had run
      budgetFloor = memoryBudgetProblem(c.ridge.memoryBudget, mask.indices.length);
      if (budgetFloor) problems.push(budgetFloor);
    } catch (e) {
      problems.push(`nsd.roi '${c.nsd.roi}': ${(e as Error).message}`);
    }
    problems.push(...regionAtlasProblems(c));
    if (!existsSync(expdesignPath(c.nsd.root))) problems.push(`${expdesignPath(c.nsd.root)} does not exist (the NSD design file)`);
    else {
      try {
        const d = await readNsdDesign(c.nsd.root);
        design = d;
        const seen = new Set<number>();
        for (let k = 0; k < d.subjectimCols; k++) seen.add(d.subjectim[k * d.subjectimRows + (c.nsd.subject - 1)]);
        seen.delete(0);
        designImages = images = seen.size;
        // the sessions the extract stage will read, and the images they show: what every feature set must cover
        const sessions = await planNsdSessions(c.nsd, d);
        problems.push(...sessions.problems);
        warnings.push(...sessions.warnings);
        plan = sessions.plan;
        // the models see the images of these sessions only (the subject's design lists all it will ever see)
        if (plan) images = plan.imageIds.length;
        // a mask on another grid would pass until the extract stage reads the betas
        const mismatch = region && plan ? maskGridMismatch(region, plan, 'nsd.roi', c.nsd.subject) : null;
        if (mismatch) problems.push(mismatch);
        // the atlases and the noise-ceiling file are read with the mask's voxel indices: the same grid is required
        if (plan) problems.push(...(await volumeGridProblems(c, plan)));
      } catch (e) {
        problems.push((e as Error).message);
      }
    }
    if (model.length) {
      try {
        const captions = await loadNsdCaptions(c.nsd.root, c.nsd.captions ?? undefined);
        // every image the sessions show is embedded with its captions: a gap failed after the extraction and the ceiling
        const missing = plan ? Array.from(plan.imageIds).filter((id) => captions.get(id).length === 0).sort((a, b) => a - b) : [];
        if (missing.length) {
          problems.push(
            `${missing.length} image(s) have no captions in ${captions.source} (73k ids ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', …' : ''}); ` +
              'the model feature sets cannot embed them',
          );
        }
      } catch (e) {
        problems.push(`captions: ${(e as Error).message}`);
      }
    }
  }
  for (const s of c.featureSets) if (s.kind === 'file') problems.push(...(await featureFileProblems(s, plan, c.nsd.subject)));
  const runs = (stage: string) => !options.stagesToRun || options.stagesToRun.has(stage);
  // each fit's memory plan at its shape: a budget a fit would refuse is refused now, not after the extraction and the
  // features (an hour in a batch); the budget below every fit's floor is named once, above
  let fits: string[] = [];
  if (mask && mask.indices.length > 0 && plan && design && !budgetFloor) {
    let trainIds: Int32Array | null = null;
    try {
      trainIds = trainRowImageIds(nsdTrialTable(design, c.nsd.subject, plan.sessions, plan.trialsPerSession), c.nsd.averageTrain);
    } catch {
      // the sessions' problems with the design are named above
    }
    // (folds the training rows cannot hold: the plan below would throw RidgeCV's message, naming no field)
    const folds = trainIds ? trainFoldsProblem('ridge.folds', c.ridge.folds, trainIds, c.nsd.averageTrain) : null;
    if (folds) problems.push(folds);
    if (trainIds && !folds) {
      const widths = await knownTableWidths(c, unetShapes, options.stagesToRun);
      const tables = tableSpecs(c);
      const banded = c.banded.filter((b) => runs(`banded.${b.name}`)).map((spec) => ({ spec, tables: spec.sets.map((n) => tables.find((t) => t.name === n)!) }));
      const memory = encodeFitMemory(c, tables.filter((t) => runs(`fit.${t.key}`)), widths, trainIds, mask.indices.length, banded);
      problems.push(...memory.problems);
      fits = memory.lines;
    }
  }
  if (problems.length) throw new PreflightError(problems, 'encode');
  const estimates: string[] = [];
  if (model.length && runs('embed')) estimates.push(`VAE and text encoder: ${images} images`);
  for (const s of model) {
    if ((s.kind === 'zc' || s.kind === 'unet') && !runs(`features.${s.name}`)) continue;
    if (s.kind === 'zc') {
      const plan = zcPlans.get(s.name);
      if (plan) estimates.push(`'${s.name}': ${images} images × ${unetEvaluationsPerImage(plan, s.guidance)} U-Net evaluations (img2img)`);
    }
    if (s.kind === 'unet') estimates.push(`'${s.name}': ${images} images × ${s.timesteps.length} U-Net evaluations`);
  }
  // every problem has been thrown by now, so the mask loaded
  const note = noiseCeilingNote(c);
  return { mask: mask!, voxels: mask!.indices.length, images, designImages, estimates, fits, warnings, notes: note ? [note] : [] };
}

/**
 * The U-Net's problems for the run: a latent size it does not take, layer names it does not have, and layers that
 * cannot be features (not float32, or without a row per image: `checkUnetLayers` loads the U-Net with them
 * exposed, from memory, and runs it once on a batch of 2). The layers of every 'unet' set are
 * checked together, each problem under the sets that name the layer.
 */
async function unetProblems(c: EncodeConfig, toRun?: ReadonlySet<string>): Promise<{ problems: string[]; shapes: Map<string, number[]> }> {
  const dir = c.model!;
  const problems: string[] = [];
  const shapes = new Map<string, number[]>();
  let sized = false;
  try {
    const mismatch = await unetSizeMismatch(dir, c.imageSize);
    if (mismatch) problems.push(mismatch);
    else sized = true;
  } catch (e) {
    problems.push((e as Error).message);
  }
  const sets = c.featureSets.filter((s): s is Extract<FeatureSetSpec, { kind: 'unet' }> => s.kind === 'unet');
  let named = true;
  for (const s of sets) {
    try {
      const missing = await missingUnetLayers(dir, s.layers);
      if (missing) problems.push(`feature set '${s.name}': ${missing}`);
      named &&= !missing;
    } catch (e) {
      problems.push(`feature set '${s.name}': ${(e as Error).message}`);
      named = false;
    }
  }
  // the probe runs the U-Net: only at a size it takes, with every name found, for the sets still to compute
  const probed = toRun ? sets.filter((s) => toRun.has(s.name)) : sets;
  if (!probed.length || !sized || !named) return { problems, shapes };
  const names = probed.map((s) => `'${s.name}'`).join(', ');
  try {
    const layers = [...new Set(probed.flatMap((s) => s.layers))];
    const check = await checkUnetLayers(dir, layers, { imageSize: c.imageSize, timestep: probed[0].timesteps[0] });
    if (check.problem) problems.push(`feature set${probed.length > 1 ? 's' : ''} ${names}: ${check.problem}`);
    for (const l of check.layers) for (const s of probed) if (l.problem && s.layers.includes(l.name)) problems.push(`feature set '${s.name}': ${l.problem}`);
    for (const l of check.layers) if (!l.problem && l.probeShape) shapes.set(l.name, l.probeShape);
  } catch (e) {
    problems.push(`feature set${probed.length > 1 ? 's' : ''} ${names}: ${(e as Error).message}`);
  }
  return { problems, shapes };
}

/**
 * Every atlas named in `regions` must have its volume for the subject: the region table skipped a missing one in
 * silence (regions.csv held the whole mask alone). The atlases available are the .nii.gz files of the subject's
 * func1pt8mm/roi folder, as loadRegionLabels reads them. (An atlas on another grid than the betas is refused by
 * volumeGridProblems, once the betas' grid is known.)
 */
export function regionAtlasProblems(c: Pick<EncodeConfig, 'nsd' | 'regions'>): string[] {
  const missing = c.regions.map((atlas, i) => ({ atlas, i, path: roiPath(c.nsd.root, c.nsd.subject, atlas) })).filter((a) => !existsSync(a.path));
  if (!missing.length) return [];
  const dir = join(func1pt8Dir(c.nsd.root, c.nsd.subject), 'roi');
  let available: string[] = [];
  try {
    available = readdirSync(dir).filter((f) => f.endsWith('.nii.gz')).map((f) => f.slice(0, -'.nii.gz'.length)).sort();
  } catch {
    // no roi folder: none available
  }
  const have = available.length ? `atlases available: ${available.join(', ')}` : `no atlas is available (${dir} holds no .nii.gz)`;
  return missing.map(({ atlas, i, path }) => `regions[${i}]: no atlas '${atlas}' for subject ${c.nsd.subject} (${path} does not exist); ${have}`);
}

const listIds = (ids: ArrayLike<number>, n = 8) => `${Array.from(ids).slice(0, n).join(', ')}${ids.length > n ? ', …' : ''}`;

/**
 * What the fit stage would refuse in a 'file' feature set, found from the file without loading it: the table's
 * shape and type, its ids (one per row; none given: rows are 73k ids 1..N), whether its rows cover every image
 * the run has betas for (`plan`; not checked when the sessions could not be worked out), and whether every value
 * is finite (the file is read in slabs).
 */
export async function featureFileProblems(s: Extract<FeatureSetSpec, { kind: 'file' }>, plan: NsdSessionPlan | null, subject: number): Promise<string[]> {
  const at = `feature set '${s.name}'`;
  const problems: string[] = [];
  if (s.ids !== null && !existsSync(s.ids)) problems.push(`${at}: ids file ${s.ids} does not exist`);
  if (!existsSync(s.path)) return [`${at}: ${s.path} does not exist`, ...problems];
  let header: NpyHeader;
  try {
    header = await readNpyHeader(s.path);
  } catch (e) {
    return [`${at}: ${(e as Error).message}`, ...problems];
  }
  if (header.shape.length !== 2) problems.push(`${at}: ${s.path} has shape (${header.shape.join(', ')}), expected a 2-D array (images × features)`);
  // (its fit failed after extraction, or the dry run's timing probe, as 'RidgeCV.fit: X is empty (69×0)'; review s44)
  else if (header.shape[1] === 0) problems.push(`${at}: ${s.path} has shape (${header.shape.join(', ')}), expected at least one feature column`);
  if (header.dtype !== 'float32' && header.dtype !== 'float64') problems.push(`${at}: ${s.path} holds ${header.dtype} values, expected float32 or float64`);
  if (problems.length) return problems;
  const [rows, cols] = header.shape;
  let ids: Int32Array;
  if (s.ids === null) {
    ids = Int32Array.from({ length: rows }, (_, i) => i + 1);
    const beyond = rowsAs73kIdsProblem(rows, s.path, at);
    if (beyond) problems.push(beyond);
  } else {
    try {
      ids = await readIntVectorNpy(s.ids, `${at} ids`);
    } catch (e) {
      return [`${at}: ${(e as Error).message}`];
    }
    // a 0-based nsdId for a 73k id would pair every row with the next image's betas, and pass every check below
    const notId = nsd73kIdProblem(ids, s.ids, 'ids file');
    if (notId) problems.push(`${at}: ${notId}`);
    if (ids.length !== rows) problems.push(`${at}: ids file ${s.ids} has ${ids.length} ids for the ${rows} rows of ${s.path}; expected one 73k id per row`);
    const firstRow = new Map<number, number>();
    for (let i = 0; i < ids.length; i++) {
      const r = firstRow.get(ids[i]);
      if (r !== undefined) {
        problems.push(`${at}: ids file ${s.ids} lists 73k id ${ids[i]} twice (elements ${r} and ${i}); expected one row per image`);
        break;
      }
      firstRow.set(ids[i], i);
    }
  }
  if (plan && problems.length === 0) {
    const have = new Set(ids);
    const missing = plan.imageIds.filter((id) => !have.has(id));
    const seen = `subject ${subject}'s ${plan.imageIds.length} images in sessions ${formatSessionList(plan.sessions)} (the images with betas)`;
    const rowsAre = s.ids === null ? `its ${rows} rows, read as 73k ids 1..${rows} (no ids file)` : `its ${rows} rows (73k ids ${listIds(ids, 5)} in ${s.ids})`;
    // ids that would cover every image once shifted by one are 0-based nsdIds given for 73k ids
    const shifted = s.ids !== null && plan.imageIds.every((id) => have.has(id - 1)) ? '; with every id + 1 all would be covered: are they 0-based nsdIds? (73k id = nsdId + 1)' : '';
    if (missing.length === plan.imageIds.length) {
      problems.push(`${at}: ${s.path} has features for images that have no betas: none of ${rowsAre} is among ${seen}, 73k ids ${listIds(plan.imageIds, 5)}${shifted}`);
    } else if (missing.length) {
      const hint = s.ids === null ? `; give ids (an .npy of each row's 73k id) or one row per 73k id up to ${plan.imageIds[plan.imageIds.length - 1]}` : shifted;
      problems.push(`${at}: ${s.path} lacks features for ${missing.length} of ${seen} (73k ids ${listIds(missing)}): ${rowsAre}${hint}`);
    }
  }
  const bad = await scanNpyNonFinite(s.path, header);
  if (bad) {
    const where = `[row ${Math.floor(bad.index / cols)}, column ${bad.index % cols}]`;
    problems.push(
      `${at}: ${s.path}: element ${where} is ${bad.value}` +
        (bad.beyondFloat32 ? ", beyond float32's range (±3.4e38)" : '') +
        (bad.count > 1 ? ` (${bad.count} of ${rows * cols} values are not finite float32 numbers)` : '') +
        '; finite numbers are required',
    );
  }
  return problems;
}
