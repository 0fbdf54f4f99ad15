/** Checks made before any long work: every problem is collected and reported at once. */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { unetSizeMismatch } from '../encoding/unetLayers.js';
import { featureNetworkProblems } from '../eval/featureNetworkSignature.js';
import { loadNsdCaptions, type NsdCaptions } from '../nsd/captions.js';
import { nsdTrialTable, readNsdDesign } from '../nsd/expdesign.js';
import { trainRowImageIds } from '../nsd/extract.js';
import { expdesignPath } from '../nsd/paths.js';
import { maskGridMismatch, planNsdSessions } from '../nsd/sessionPlan.js';
import { onnxruntimeNodeInstalled } from '../native/onnxruntimeNode.js';
import { onnxruntimeNodeInstallLine } from '../optionalDependencies.js';
import { loadRegionMask, type RegionMask } from '../nsd/roi.js';
import { fieldNames, type FieldFlags, type FieldNames } from '../config/fieldNames.js';
import { ReconstructConfigSchema } from '../config/reconstruct.js';
import { PLAN_OPTION_KEYS, planLabels, planRun, resolvePlanOptions } from '../sd/samplingOptions.js';
import { sdLayoutProblems } from '../sd/layoutSignature.js';
import { modelFileProblem } from '../sd/modelRoots.js';
import { externalDataProblems, externalDataRootsProblem } from '../sd/onnxWeightRefs.js';
import { readSchedulerConfig } from '../sd/schedulerConfig.js';
import type { SamplerPlanInfo } from '../sd/index.js';
import type { ReconstructConfig } from './config.js';
import { decoderFitMemory } from './decoderFit.js';
import { PreflightError } from './errors.js';
import { runFolderConflict, type RunFolderConflictOptions } from './runFolder.js';
import { imageSpaceCheck, runImageOutputs, type PlannedImages } from './outputSpace.js';
import { runOutputOverlaps } from './runFolderInputs.js';
import { testImagesShortfall } from './testImagesShortfall.js';
import { selectTestImages } from './testSubset.js';

/** What the checks before a reconstruction found: the test images and the inputs the stages will read. */
export interface PreflightResult {
  /**
   * Shared (test) image ids (73k, 1-based) shown in the sessions the run reads (nsd.sessions), in id order: the
   * extraction's test rows. (Every shared image in the subject's design when the sessions could not be planned.)
   */
  testIds: number[];
  /** Voxels of the z and c regions. */
  voxels: { z: number; c: number };
  captions: NsdCaptions;
  /** Lines for the dry run: each decoder's route, shape and memory plan (planned peak, target batches) under its memoryBudget. */
  fits: string[];
  /**
   * What is suspicious but not wrong: a session missing between sessions that have betas (planNsdSessions); more
   * test images asked for (nsd.testImages) than the sessions read hold (testImagesShortfall); img2img steps too few
   * for the 'compvis' noise rule (fewStepsWarning).
   */
  warnings: string[];
  /** The run's images and where it writes them, where it writes any (a batch checks its runs on one file system together: sharedSpaceCheck). */
  images?: PlannedImages;
}

const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();

const SD_PARTS = ['vae_encoder', 'vae_decoder', 'text_encoder', 'unet'];

export interface PreflightOptions extends RunFolderConflictOptions {
  /**
   * The command line the config came from, if any: its problems and warnings then name a field by its flag where a
   * flag gave it (or there is no config file), and say how to set one in that form (fieldNames: "use --rule
   * diffusers", "use --config with nsd.sessions set to …"). Without it, each field by its name in a config.
   */
  fieldFlags?: FieldFlags;
}

/**
 * `options`: --force, how a folder of another run is to be resolved (runFolderConflict) and the command line that
 * gave the config (fieldFlags), for messages in its words.
 */
export async function preflight(config: ReconstructConfig, options: PreflightOptions = {}): Promise<PreflightResult> {
  const names = fieldNames(options.fieldFlags);
  const problems: string[] = [];
  const warnings: string[] = [];
  const { nsd, model } = config;
  if (!isDir(model.dir)) problems.push(`model folder ${model.dir} does not exist`);
  else {
    for (const part of SD_PARTS) {
      // (under a service's model roots a link out of them is refused alike whether or not its target exists)
      const problem = await modelFileProblem(join(model.dir, part, 'model.onnx'), `model folder ${model.dir} has no ${part}/model.onnx (expected a diffusers/optimum SD 1.x ONNX export)`);
      if (problem) problems.push(problem);
    }
    // each component's declared inputs and outputs, as the engine checks them when it loads the folder (a U-Net
    // that is really the VAE decoder fails here, not at the features stage after extraction ran)
    const found = problems.length === 0;
    const layout = found ? await sdLayoutProblems(model.dir) : [];
    problems.push(...layout);
    // (under a service's model roots: external data linked out of them, refused now as the load would refuse it,
    // not at the features stage after extraction ran)
    if (found) problems.push(...(await externalDataProblems(SD_PARTS.map((part) => join(model.dir, part, 'model.onnx')))));
    // a U-Net exported at one latent size (the demo world's) runs img2img only at img2img.size = 8 × that size
    // (only once every component was found: existsSync here would read a U-Net linked out of a service's root)
    if (layout.length === 0 && found) {
      try {
        const mismatch = await unetSizeMismatch(model.dir, config.img2img.size, names.name('img2img.size'), (size) => names.setTo('img2img.size', size));
        if (mismatch) problems.push(mismatch);
      } catch (e) {
        problems.push((e as Error).message);
      }
    }
  }
  // the img2img stage's plan (DDIM's eta against the schedule's maxEta, …), from the folder's scheduler config as the
  // run loads it, without the U-Net: here, not when the stage starts after extraction, features and decoders ran
  if (isDir(model.dir)) {
    const planned = await img2imgPlan(config, names);
    if ('problem' in planned) problems.push(planned.problem);
    else {
      const few = fewStepsWarning(config.img2img, planned.plan, names);
      if (few) warnings.push(few);
    }
  }
  for (const [i, n] of config.evaluation.networks.entries()) {
    const problem = (await modelFileProblem(n.path, `feature network '${n.name}': ${n.path} does not exist`)) ?? (await externalDataRootsProblem(n.path, `feature network '${n.name}'`));
    if (problem) problems.push(problem);
    // (its declared output and image size: a wrong name failed at the evaluation stage, after img2img)
    else problems.push(...(await featureNetworkProblems(n, `evaluation.networks[${i}]`)));
  }
  if (config.evaluation.networks.length > 0 && !onnxruntimeNodeInstalled()) {
    problems.push(`evaluation.networks: feature networks run on onnxruntime-node, which is not installed (${onnxruntimeNodeInstallLine()})`);
  }
  problems.push(...(await runOutputOverlaps(ReconstructConfigSchema, config)));
  const conflict = await runFolderConflict(config, options);
  if (conflict) problems.push(conflict);
  const voxels = { z: 0, c: 0 };
  let testIds: number[] = [];
  // every image of the sessions read (training and test): the features stage needs captions for all of them
  let planIds: number[] = [];
  let captions: NsdCaptions = { get: () => [], size: 0, source: '' };
  let fits: string[] = [];
  if (!isDir(nsd.root)) {
    problems.push(`NSD root ${nsd.root} does not exist`);
  } else {
    const regions: Partial<Record<'z' | 'c', RegionMask>> = {};
    for (const t of ['z', 'c'] as const) {
      const roi = config.decoders[t].roi;
      try {
        regions[t] = await loadRegionMask(nsd.root, nsd.subject, roi);
        voxels[t] = regions[t].mask.indices.length;
        if (voxels[t] === 0) problems.push(`region '${roi}' (decoders.${t}.roi) has no voxels for subject ${nsd.subject}`);
      } catch (e) {
        problems.push(`decoders.${t}.roi '${roi}': ${(e as Error).message}`);
      }
    }
    if (!existsSync(expdesignPath(nsd.root))) problems.push(`${expdesignPath(nsd.root)} does not exist (the NSD design file)`);
    else {
      try {
        const d = await readNsdDesign(nsd.root);
        const seen = new Set<number>();
        for (let c = 0; c < d.subjectimCols; c++) seen.add(d.subjectim[c * d.subjectimRows + (nsd.subject - 1)]);
        testIds = Array.from(d.sharedix).filter((id) => seen.has(id)).sort((a, b) => a - b);
        // the sessions the extract stage will read: each must have betas, within the design
        const sessions = await planNsdSessions(nsd, d, names.name('nsd.sessions'), (sessions) => names.setTo('nsd.sessions', { words: sessions }));
        problems.push(...sessions.problems);
        warnings.push(...sessions.warnings);
        // the test images are those the sessions read show (the extraction's test rows), not every shared image of the
        // design: the dry run's 'N test images' and the shortfall warning count the same ones
        if (sessions.plan) {
          const shared = new Set<number>(Array.from(d.sharedix));
          testIds = Array.from(sessions.plan.imageIds).filter((id) => shared.has(id));
          planIds = Array.from(sessions.plan.imageIds);
        }
        const fewer = testImagesShortfall(nsd.testImages, testIds.length, nsd.subject, names.nameAndFlag('nsd.testImages'));
        if (fewer) warnings.push(fewer);
        // a mask on another grid would pass until the extract stage reads the betas
        for (const t of ['z', 'c'] as const) {
          const region = regions[t];
          const mismatch = region && sessions.plan ? maskGridMismatch(region, sessions.plan, `decoders.${t}.roi`, nsd.subject) : null;
          if (mismatch) problems.push(mismatch);
        }
        // each decoder's memory at its shape: a budget its fit would refuse is refused now, not after the extraction
        // and the features (the training rows from the design, in the extraction's order: the folds' groups)
        const plan = sessions.plan;
        if (plan && isDir(model.dir)) {
          const table = nsdTrialTable(d, nsd.subject, plan.sessions, plan.trialsPerSession);
          const trainIds = { z: trainRowImageIds(table, config.decoders.z.averageTrain), c: trainRowImageIds(table, config.decoders.c.averageTrain) };
          const memory = await decoderFitMemory(config, trainIds, voxels, names);
          problems.push(...memory.problems);
          fits = memory.lines;
        }
      } catch (e) {
        problems.push((e as Error).message);
      }
    }
    try {
      captions = await loadNsdCaptions(nsd.root, nsd.captions ?? undefined);
      // (training images too: without their captions the features stage failed after the extraction)
      const test = new Set(testIds);
      const missing = [...new Set([...testIds, ...planIds])].filter((id) => captions.get(id).length === 0).sort((a, b) => a - b);
      if (missing.length) {
        const nTest = missing.filter((id) => test.has(id)).length;
        const which = nTest === missing.length ? 'test image(s)' : nTest === 0 ? 'training image(s)' : `image(s) (${nTest} test, ${missing.length - nTest} training)`;
        problems.push(
          `${missing.length} ${which} have no captions in ${captions.source} (73k ids ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', …' : ''}); c cannot be computed for them`,
        );
      }
    } catch (e) {
      problems.push(`captions: ${(e as Error).message}`);
    }
  }
  // the images fit where the run writes them (a seed count with zeros too many ran for days, then filled the disk)
  const nTest = selectTestImages(testIds, config.nsd.testImages).length;
  let images: PlannedImages | undefined;
  if (nTest > 0) {
    const g = config.img2img;
    images = { out: config.out, images: runImageOutputs(nTest, g.seeds, g.size, config.features.zSize) };
    try {
      const space = await imageSpaceCheck(config.out, images.images, { testImages: nTest, seeds: g.seeds, size: g.size }, names);
      if (space?.problem) problems.push(space.problem);
      if (space?.warning) warnings.push(space.warning);
    } catch (e) {
      // (a file system that cannot say its free space: the run goes on as before)
      warnings.push(`the free space where ${config.out} is could not be read (${(e as Error).message}); the run's images were not checked against it`);
    }
  }
  if (problems.length) throw new PreflightError(problems);
  return { testIds, voxels, captions, fits, warnings, ...(images ? { images } : {}) };
}

/** The plan options' fields in a reconstruction config. */
const IMG2IMG_FIELDS = planLabels('img2img.');

/**
 * The img2img stage's plan, or what it refuses, naming the config's fields as `names` does (default: as a config
 * does): an eta above the largest the schedule allows ('img2img.eta 1.5 is too large for this schedule: … up to eta
 * 1.00… here'; the flags-only command line's '--eta 1.5'), a schedule the engine cannot plan, a scheduler_config.json
 * it cannot read. The schedule is the model folder's (img2img.scheduler runs whatever class the file names, as
 * lazyDiffusion loads it), read as the CLI's `sd img2img` reads it before loading.
 */
export async function img2imgPlan(config: Pick<ReconstructConfig, 'model' | 'img2img'>, names: FieldNames = fieldNames()): Promise<{ plan: SamplerPlanInfo } | { problem: string }> {
  const g = config.img2img;
  const labels = Object.fromEntries(PLAN_OPTION_KEYS.map((k) => [k, names.name(IMG2IMG_FIELDS[k])]));
  let plan;
  try {
    const file = await readSchedulerConfig(config.model.dir, { scheduler: g.scheduler });
    plan = resolvePlanOptions(
      { schedule: file.schedule, scheduler: file.scheduler },
      { scheduler: g.scheduler, karras: g.karras, steps: g.steps, strength: g.strength, eta: g.eta, img2imgRule: g.rule },
      labels,
    );
  } catch (e) {
    return { problem: (e as Error).message };
  }
  try {
    return { plan: planRun(plan) };
  } catch (e) {
    // (the engine's words name no field: the settings it planned from are named instead)
    return { problem: `img2img (${g.scheduler}, steps ${g.steps}, strength ${g.strength}): ${(e as Error).message}` };
  }
}

/** Below this many steps the 'compvis' rule's extra step of noise is left in the images (docs/pipeline.md, "Few img2img steps"). */
export const COMPVIS_MIN_STEPS = 8;

/**
 * The warning for img2img under the 'compvis' rule (the default: TN's noise level) with fewer than COMPVIS_MIN_STEPS
 * steps. That rule noises z one DDIM step above the first step that runs; the step is 1000/steps timesteps, so with
 * a handful of steps the sampler starts from a latent noisier than it believes and the noise stays in the images
 * (the demo's final PixCorr 0.29 at 4 steps, below z-only's 0.82). The 'diffusers' rule noises to the first step.
 * `names` names the fields and says how to set the rule (default: as a config does; the CLI's "use --rule diffusers").
 */
export function fewStepsWarning(
  g: Pick<ReconstructConfig['img2img'], 'rule' | 'steps'>,
  plan: Pick<SamplerPlanInfo, 'noiseTimestep' | 'runs'>,
  names: FieldNames = fieldNames(),
): string | null {
  if (g.rule !== 'compvis' || g.steps >= COMPVIS_MIN_STEPS || plan.runs.length === 0) return null;
  return (
    `${names.valued('img2img.steps', g.steps)} with ${names.valued('img2img.rule', 'compvis')} (the default, TN's noise level): the latent is noised to t = ${plan.noiseTimestep} ` +
    `but the first step denoises it as t = ${plan.runs[0].timestep}, and with fewer than ${COMPVIS_MIN_STEPS} steps that noise stays in the ` +
    `images (worse than z-only); ${names.setTo('img2img.rule', 'diffusers')} (noise at the first step that runs), or use ${COMPVIS_MIN_STEPS} steps or more`
  );
}
