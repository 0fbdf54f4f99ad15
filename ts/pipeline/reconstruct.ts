/**
 * `await reconstruct(config, {onProgress, signal})`: fMRI + an SD model → reconstructions, metrics and a
 * report in a run folder. Stages whose outputs exist are skipped (resume) unless `force`; `dryRun`
 * prints the plan and an estimate without doing the work.
 */
import { readFile } from 'node:fs/promises';

import { checkControl } from '../callbackOptions.js';
import type { FieldFlags } from '../config/fieldNames.js';
import { ReconstructConfigSchema } from '../config/reconstruct.js';
import { InvalidArgumentError, ShapeError } from '../errors.js';
import { ortUsesSoFar, recordingOrtUse } from '../native/ortUse.js';
import { checkInteger } from '../ridge/options.js';
import { unetEvaluationsPerImage } from '../sd/samplingOptions.js';
import { configHash, resolveConfig, type ReconstructConfig, type ReconstructConfigInput } from './config.js';
import { estimateStages } from './estimate.js';
import { lazyDiffusion } from './lazyDiffusion.js';
import { formatSeconds, loadAverage, type StageEstimate } from './probe.js';
import { img2imgPlan, preflight, type PreflightResult } from './preflight.js';
import { clearingInterrupted, clearingPlan, clearRunFolder, lockRunFolder, paths, STAGES, writeManifest, type StageName } from './runFolder.js';
import { runOutputOverlaps } from './runFolderInputs.js';
import { ortVersions, runVersions } from './runVersions.js';
import { recordRunFailure } from './runRecord.js';
import { stageVersionsSummary } from './stageVersions.js';
import { reconstructStageInputs } from './stageInputs.js';
import { planStages, runStages, type StageDef, type StageProgress, type StageReport, type StageResult, type StageRunContext } from './stageRunner.js';
import { reconstructStageDeps, STAGE_RUNNERS } from './stages.js';
import { selectTestImages } from './testSubset.js';

/** Progress of a stage (stageRunner's; `count` in images or samples, `reused` a resumed img2img's), by its name. */
export interface ReconstructProgress extends StageProgress {
  stage: StageName;
}

export interface ReconstructOptions {
  onProgress?: (p: ReconstructProgress) => void;
  signal?: AbortSignal;
  /** Redo every stage even when its outputs exist (and replace another run's outputs). */
  force?: boolean;
  /** Only report what would run and how long each stage should take (from short measured probes). */
  dryRun?: boolean;
  /**
   * Called with each warning the preflight or a stage raises, e.g. a session missing between sessions with betas,
   * or a decoder whose chosen alphas crowd an edge of its grid (also for stages skipped on resume, from their
   * records). The warnings are in the result too.
   */
  onWarning?: (message: string) => void;
  /**
   * The command line the config came from, if any, for the preflight's problems and warnings in its words: a field
   * by its flag, how to set one in that form (PreflightOptions.fieldFlags). Without it, each field by its config name.
   */
  fieldFlags?: FieldFlags;
}

export interface ReconstructResult {
  out: string;
  config: ReconstructConfig;
  configHash: string;
  stages: StageReport<StageName>[];
  /** The test images reconstructed (with `nsd.testImages`, at most that many); a dry run's, those it would reconstruct. */
  testImages: number;
  /** Metrics of the z-only and final images (absent in a dry run). */
  metrics?: {
    zonly: Record<string, number>;
    final: Record<string, number>;
    better: Record<string, 'higher' | 'lower'>;
    /** Test images evaluated, and the images each metric left out of its mean having no correlation (absent in run folders from before they were counted). */
    images?: number;
    leftOut?: { zonly: Record<string, number>; final: Record<string, number> };
    /** 2WI metrics' comparisons (i ≠ j) left out, a correlation undefined; the final's summed over the seeds. */
    comparisonsLeftOut?: { zonly: Record<string, number>; final: Record<string, number> };
  };
  /** Dry run: the plan in words. */
  plan?: string[];
  /** Dry run: each stage's estimated time and what it was measured from. */
  estimates?: Record<StageName, StageEstimate>;
  /** Warnings the preflight and the stages raised (see ReconstructOptions.onWarning); a dry run's, the preflight's. */
  warnings: string[];
}

/** Warnings recorded in a stage's summary (the decoders': alphas on an edge of the grid). */
function stageWarnings(summary: Record<string, unknown> | undefined): string[] {
  if (!summary) return [];
  return Object.values(summary).flatMap((v) => (v && typeof v === 'object' && Array.isArray((v as { warnings?: unknown }).warnings) ? ((v as { warnings: string[] }).warnings) : []));
}

/**
 * The U-Net evaluations of one latent the img2img stage runs (images × seeds × the U-Net calls its plan makes per
 * image, × 2 with guidance: unetEvaluationsPerImage), e.g. for a steps-per-second figure. The plan is the run's own,
 * from the model folder's scheduler config (so PNDM's and Heun's extra calls count); a plan the run would refuse is
 * an InvalidArgumentError naming the config's field. The config is resolved first, as reconstruct() resolves it (an
 * invalid one is a ConfigError); `testImages` is an integer >= 0. Its time is estimated by `estimateStages` (a
 * measured probe), not from this count.
 */
export async function estimateImg2Img(input: ReconstructConfigInput | ReconstructConfig, testImages: number): Promise<{ unetEvaluations: number }> {
  // (a config without its defaults filled in, or a testImages of NaN, gave {"unetEvaluations": null}; -1 gave -400)
  const config = resolveConfig(input);
  checkInteger(testImages, 'testImages', 'estimateImg2Img', 0);
  const g = config.img2img;
  const planned = await img2imgPlan(config);
  if ('problem' in planned) throw new InvalidArgumentError(planned.problem);
  return { unetEvaluations: testImages * g.seeds * unetEvaluationsPerImage(planned.plan, g.guidance) };
}

/**
 * The reconstruction's stages as the stage runner (stageRunner.ts) takes them, in STAGES' order: each depends on
 * every stage before it, with the files it reads from outside the run folder (reconstructStageDeps: and the key of
 * what it reads of them). `run` does a stage's work.
 */
export async function reconstructStageDefs(config: ReconstructConfig, run: (stage: StageName, ctx: StageRunContext) => Promise<StageResult>): Promise<StageDef[]> {
  const defs: StageDef[] = [];
  for (const stage of STAGES) {
    defs.push({ ...reconstructStageDeps(config, stage), describe: stage, inputs: await reconstructStageInputs(config, stage), run: (ctx) => run(stage, ctx) });
  }
  return defs;
}

export async function reconstruct(input: ReconstructConfigInput | ReconstructConfig, options: ReconstructOptions = {}): Promise<ReconstructResult> {
  // (a bad callback would otherwise be a TypeError at the first progress report, with the run folder locked and half written)
  checkControl(options, 'reconstruct', ['onProgress', 'onWarning']);
  const config = resolveConfig(input);
  // a run folder that overlaps an input is refused before the lock creates it or anything is written (dry runs too)
  // (and so is an extraction cache, nsd.cacheDir, that overlaps one)
  const overlaps = await runOutputOverlaps(ReconstructConfigSchema, config);
  if (overlaps.length) throw new InvalidArgumentError(overlaps.join('\n'));
  if (options.dryRun) return runReconstruct(config, options);
  // A run holds its folder's lock from before it looks at the folder until it returns.
  const lock = await lockRunFolder(config.out);
  try {
    return await runReconstruct(config, options);
  } finally {
    await lock.release();
  }
}

async function runReconstruct(config: ReconstructConfig, options: ReconstructOptions): Promise<ReconstructResult> {
  const hash = configHash(config);
  // A --force that a kill interrupted is finished first: nothing of the old run counts as done.
  const force = options.force || (await clearingInterrupted(config.out));
  const pre: PreflightResult = await preflight(config, { force, fieldFlags: options.fieldFlags });
  // the stages' work needs the model, loaded on first use (a run whose model stages are all skipped never loads it)
  const model = lazyDiffusion(config);
  const stages = await reconstructStageDefs(config, (stage, ctx) => STAGE_RUNNERS[stage]({ config, pre, diffusion: model.get, ...ctx }));
  // a stage after one that runs runs too (each depends on all before it), unless what it reads of them is unchanged
  // (its depKey: the images features embeds; for the others, the extraction's content and the markers after it)
  const planned = await planStages(config, stages, force);
  const skip = new Map(STAGES.map((s) => [s, planned.get(s)!.skip]));
  const why = (s: StageName) => planned.get(s)?.why;
  if (options.dryRun) {
    const n = selectTestImages(pre.testIds, config.nsd.testImages).length;
    const est = await estimateStages(config, pre, skip, options.signal);
    const total = STAGES.reduce((a, s) => a + est[s].seconds, 0);
    const lines = [
      `run folder ${config.out} (config ${hash})`,
      ...(force ? [await clearingPlan(config.out)].filter((l): l is string => l !== null) : []),
      `subject ${config.nsd.subject}: ${n} test images; z from '${config.decoders.z.roi}' (${pre.voxels.z} voxels), c from '${config.decoders.c.roi}' (${pre.voxels.c} voxels)`,
      ...pre.warnings.map((w) => `warning: ${w}`),
      ...(pre.fits.length && !skip.get('decoders') ? ['decoders, their memory planned from the shapes (decoders.{z,c}.memoryBudget):', ...pre.fits.map((l) => `  ${l}`)] : []),
      `estimates from short probes on this machine (load average ${loadAverage()}):`,
      ...STAGES.map((s) => `${skip.get(s) ? 'skip' : 'run '} ${s.padEnd(9)} ${skip.get(s) ? '' : `~${formatSeconds(est[s].seconds).padStart(7)}  ${est[s].basis}${why(s) ? ` (again: ${why(s)})` : ''}`}`.trimEnd()),
      `total ~${formatSeconds(total)}`,
    ];
    return {
      out: config.out,
      config,
      configHash: hash,
      stages: STAGES.map((s) => ({ stage: s, status: skip.get(s) ? 'skipped' : 'planned', seconds: est[s].seconds })),
      testImages: n,
      plan: lines,
      estimates: est,
      warnings: pre.warnings,
    };
  }
  const warnings: string[] = [];
  const warn = (w: string) => {
    warnings.push(w);
    options.onWarning?.(w);
  };
  // what the preflight found suspicious but not wrong (a session missing between sessions with betas)
  pre.warnings.forEach(warn);
  // --force (or a --force that was interrupted) empties the folder of the old run's outputs before anything is written.
  if (force) await clearRunFolder(config.out);
  let reports: StageReport<StageName>[];
  try {
    await writeManifest(config, runVersions());
    // (the stage runner's loop, as encode's: a Ctrl-C names the stage it stopped, and that the stages before it are kept)
    const run = await recordingOrtUse(() =>
      runStages(config, stages, planned, {
        signal: options.signal,
        what: 'reconstruct',
        onProgress: options.onProgress && ((p) => options.onProgress!(p as ReconstructProgress)),
        // the decoders' warnings (alphas on an edge of the grid), from their records when skipped
        onStage: (r) => stageWarnings(r.summary).forEach(warn),
        // run.json says where and how it failed, and what computed the stages that finished
        onFailure: (stage, e, finished) => recordRunFailure(config, finished, stage, e, { ...runVersions(), ...ortVersions(ortUsesSoFar()) }),
      }),
    );
    reports = run.value as StageReport<StageName>[];
    // the ONNX Runtime this run's stages ran the model on ('not used' when every stage that runs it was kept), and
    // what computed each stage (one kept from an earlier run: that run's process)
    await writeManifest(config, { ...runVersions(), ...ortVersions(run.uses) }, await stageVersionsSummary(config, STAGES));
  } finally {
    model.dispose();
  }
  const ev = reports.find((s) => s.stage === 'evaluate')?.summary as ReconstructResult['metrics'] | undefined;
  return { out: config.out, config, configHash: hash, stages: reports, testImages: await reconstructedImages(config), metrics: ev, warnings };
}

/** How many test images the run reconstructed: the extract stage's list (nsd.testImages applied), not all the subject's. */
async function reconstructedImages(config: ReconstructConfig): Promise<number> {
  const file = paths(config.out).ids;
  const ids = (JSON.parse(await readFile(file, 'utf8')) as { test?: unknown }).test;
  if (!Array.isArray(ids)) throw new ShapeError(`${file}: 'test' should be the list of test image ids`);
  return ids.length;
}
