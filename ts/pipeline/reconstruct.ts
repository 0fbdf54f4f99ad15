/**
 * `await reconstruct(config, {onProgress, signal})`: fMRI + an SD model → reconstructions, metrics and a
 * report in a run folder. Stages whose outputs exist are skipped (resume) unless `force`; `dryRun`
 * prints the plan and an estimate without doing the work.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { checkControl } from '../callbackOptions.js';
import { ReconstructConfigSchema } from '../config/reconstruct.js';
import { CancelledError, InvalidArgumentError, ShapeError } from '../errors.js';
import { packageRoot } from '../native/binding.js';
import type { Diffusion } from '../sd/Diffusion.js';
import { configHash, resolveConfig, type ReconstructConfig, type ReconstructConfigInput } from './config.js';
import { estimateStages } from './estimate.js';
import { lazyDiffusion } from './lazyDiffusion.js';
import { formatSeconds, loadAverage, type StageEstimate } from './probe.js';
import { preflight, type PreflightResult } from './preflight.js';
import { inputIdentities } from '../io/fileIdentity.js';
import { clearingInterrupted, clearingPlan, clearRunFolder, depKeyHolds, lockRunFolder, markStage, paths, readStageMarker, stageState, STAGES, writeManifest, type StageName } from './runFolder.js';
import { runOutputOverlaps } from './runFolderInputs.js';
import { reconstructStageInputs } from './stageInputs.js';
import { DEP_KEY_NOTE, type StageReport } from './stageRunner.js';
import { STAGE_DEP_KEYS, STAGE_RUNNERS, type StageContext } from './stages.js';
import { selectTestImages } from './testSubset.js';

export interface ReconstructProgress {
  stage: StageName;
  /** Stage number (1-based) and count. */
  index: number;
  stages: number;
  /** Within the stage, 0..1. */
  fraction: number;
  message?: string;
  /** Items done in the stage, when it counts them (images, samples): gives a rate in that unit. */
  count?: { done: number; total: number; unit: string };
  status: 'running' | 'skipped' | 'done';
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
}

export interface ReconstructResult {
  out: string;
  config: ReconstructConfig;
  configHash: string;
  stages: StageReport<StageName>[];
  /** The test images reconstructed (with `nsd.testImages`, at most that many); a dry run's, those it would reconstruct. */
  testImages: number;
  /** Metrics of the z-only and final images (absent in a dry run). */
  metrics?: { zonly: Record<string, number>; final: Record<string, number>; better: Record<string, 'higher' | 'lower'> };
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

function versions(sd?: Diffusion): Record<string, string> {
  let pkg = 'unknown';
  try {
    pkg = (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    // not in a package tree
  }
  const v: Record<string, string> = { brainlatent: pkg, node: process.version, platform: `${process.platform} ${process.arch}` };
  if (sd) {
    v.onnxruntime = sd.runtime.version;
    v.onnxruntimeLibrary = sd.runtime.libraryPath;
  }
  return v;
}

/**
 * The U-Net evaluations the img2img stage runs (images × seeds × steps that run × 2 with guidance), e.g. for
 * a steps-per-second figure. Its time is estimated by `estimateStages` (a measured probe), not from this count.
 */
export function estimateImg2Img(config: ReconstructConfig, testImages: number): { unetEvaluations: number } {
  const g = config.img2img;
  const runSteps = Math.min(Math.floor(g.steps * g.strength), g.steps);
  return { unetEvaluations: testImages * g.seeds * runSteps * (g.guidance > 1 ? 2 : 1) };
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
  const pre: PreflightResult = await preflight(config, { force });
  const plan: StageReport<StageName>[] = [];
  const skip = new Map<StageName, boolean>();
  // why a stage that ran before runs again (for the dry run): an input file changed, or a stage before it runs
  const why = new Map<StageName, string>();
  // stages whose own record holds that run for a stage before them, but read only a key's worth of it (features: the
  // images): decided when they come, once the stages before them have run (STAGE_DEP_KEYS)
  const keyed = new Set<StageName>();
  let first: StageName | null = null;
  for (const s of STAGES) {
    const state = force ? { done: false } : await stageState(config, s, reconstructStageInputs(config, s));
    // a stage after one that must run runs too
    skip.set(s, first === null && state.done);
    if (state.why) why.set(s, state.why);
    else if (first !== null && state.done) why.set(s, `${first} runs${STAGE_DEP_KEYS[s] ? DEP_KEY_NOTE : ''}`);
    if (first !== null && state.done && STAGE_DEP_KEYS[s]) keyed.add(s);
    if (!state.done) first ??= s;
  }
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
      ...STAGES.map((s) => `${skip.get(s) ? 'skip' : 'run '} ${s.padEnd(9)} ${skip.get(s) ? '' : `~${formatSeconds(est[s].seconds).padStart(7)}  ${est[s].basis}${why.has(s) ? ` (again: ${why.get(s)})` : ''}`}`.trimEnd()),
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
  const model = lazyDiffusion(config);
  try {
    await writeManifest(config, versions());
    for (const [i, stage] of STAGES.entries()) {
      if (options.signal?.aborted) throw new CancelledError('reconstruct: cancelled');
      const base = { stage, index: i + 1, stages: STAGES.length };
      const depKey = STAGE_DEP_KEYS[stage];
      // (the only stage before features is extract: the key is all it reads of it)
      if (skip.get(stage) || (keyed.has(stage) && (await depKeyHolds(config, stage, await depKey!(config))))) {
        const m = await readStageMarker(config, stage);
        plan.push({ stage, status: 'skipped', seconds: 0, summary: m?.summary });
        stageWarnings(m?.summary).forEach(warn);
        options.onProgress?.({ ...base, fraction: 1, status: 'skipped' });
        continue;
      }
      const ctx: StageContext = {
        config,
        pre,
        diffusion: model.get,
        signal: options.signal,
        progress: (fraction, message, count) => options.onProgress?.({ ...base, fraction, message, count, status: 'running' }),
      };
      options.onProgress?.({ ...base, fraction: 0, status: 'running' });
      const t0 = performance.now();
      const inputs = await inputIdentities(reconstructStageInputs(config, stage));
      const key = depKey ? await depKey(config) : undefined;
      const r = await STAGE_RUNNERS[stage](ctx);
      const seconds = (performance.now() - t0) / 1000;
      await markStage(config, { stage, seconds, outputs: r.outputs, summary: r.summary, inputs, ...(key === undefined ? {} : { depKey: key }) });
      plan.push({ stage, status: 'ran', seconds, summary: r.summary });
      stageWarnings(r.summary).forEach(warn);
      options.onProgress?.({ ...base, fraction: 1, status: 'done' });
    }
    const sd = model.loaded();
    if (sd) await writeManifest(config, versions(sd));
  } finally {
    model.dispose();
  }
  const ev = plan.find((s) => s.stage === 'evaluate')?.summary as ReconstructResult['metrics'] | undefined;
  return { out: config.out, config, configHash: hash, stages: plan, testImages: await reconstructedImages(config), metrics: ev, warnings };
}

/** How many test images the run reconstructed: the extract stage's list (nsd.testImages applied), not all the subject's. */
async function reconstructedImages(config: ReconstructConfig): Promise<number> {
  const file = paths(config.out).ids;
  const ids = (JSON.parse(await readFile(file, 'utf8')) as { test?: unknown }).test;
  if (!Array.isArray(ids)) throw new ShapeError(`${file}: 'test' should be the list of test image ids`);
  return ids.length;
}
