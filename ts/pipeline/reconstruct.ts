/**
 * `await reconstruct(config, {onProgress, signal})`: fMRI + an SD model → reconstructions, metrics and a
 * report in a run folder. Stages whose outputs exist are skipped (resume) unless `force`; `dryRun`
 * prints the plan and an estimate without doing the work.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { CancelledError } from '../errors.js';
import { packageRoot } from '../native/binding.js';
import { Diffusion } from '../sd/Diffusion.js';
import { configHash, resolveConfig, type ReconstructConfig, type ReconstructConfigInput } from './config.js';
import { preflight, type PreflightResult } from './preflight.js';
import { clearStages, markStage, readStageMarker, stageDone, STAGES, writeManifest, type StageName } from './runFolder.js';
import { STAGE_RUNNERS, type StageContext } from './stages.js';

export interface ReconstructProgress {
  stage: StageName;
  /** Stage number (1-based) and count. */
  index: number;
  stages: number;
  /** Within the stage, 0..1. */
  fraction: number;
  message?: string;
  status: 'running' | 'skipped' | 'done';
}

export interface ReconstructOptions {
  onProgress?: (p: ReconstructProgress) => void;
  signal?: AbortSignal;
  /** Redo every stage even when its outputs exist (and replace another run's outputs). */
  force?: boolean;
  /** Only report what would run and how long it should take. */
  dryRun?: boolean;
}

export interface StageReport {
  stage: StageName;
  status: 'ran' | 'skipped' | 'planned';
  seconds: number;
  summary?: Record<string, unknown>;
}

export interface ReconstructResult {
  out: string;
  config: ReconstructConfig;
  configHash: string;
  stages: StageReport[];
  testImages: number;
  /** Metrics of the z-only and final images (absent in a dry run). */
  metrics?: { zonly: Record<string, number>; final: Record<string, number> };
  /** Dry run: the plan in words. */
  plan?: string[];
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

/** Rough cost of the img2img stage: U-Net evaluations and seconds (CPU, from the U-Net's size). */
export function estimateImg2Img(config: ReconstructConfig, testImages: number): { unetEvaluations: number; seconds: number } {
  const g = config.img2img;
  const runSteps = Math.min(Math.floor(g.steps * g.strength), g.steps);
  const evals = testImages * g.seeds * runSteps * (g.guidance > 1 ? 2 : 1);
  let bytes = 3.4e9;
  try {
    bytes = statSync(join(config.model.dir, 'unet', 'model.onnx')).size;
    if (bytes < 1e8) {
      try {
        bytes += statSync(join(config.model.dir, 'unet', 'model.onnx_data')).size;
      } catch {
        // weights inline
      }
    }
  } catch {
    // estimate for SD 1.x
  }
  // ~1.5 s per 512² U-Net evaluation of SD 1.x (3.4 GB fp32) on a few CPU cores, scaling with size and pixels
  const perEval = 1.5 * (bytes / 3.4e9) * (g.size / 512) ** 2;
  return { unetEvaluations: evals, seconds: evals * perEval };
}

export async function reconstruct(input: ReconstructConfigInput | ReconstructConfig, options: ReconstructOptions = {}): Promise<ReconstructResult> {
  const config = resolveConfig(input);
  const hash = configHash(config);
  const pre: PreflightResult = await preflight(config, { force: options.force || options.dryRun });
  const plan: StageReport[] = [];
  const skip = new Map<StageName, boolean>();
  for (const s of STAGES) skip.set(s, !options.force && (await stageDone(config, s)));
  // a stage after one that must run runs too
  let mustRun = false;
  for (const s of STAGES) {
    if (!skip.get(s)) mustRun = true;
    if (mustRun) skip.set(s, false);
  }
  if (options.dryRun) {
    const n = config.nsd.testImages === null ? pre.testIds.length : Math.min(pre.testIds.length, config.nsd.testImages);
    const est = estimateImg2Img(config, n);
    const lines = [
      `run folder ${config.out} (config ${hash})`,
      `subject ${config.nsd.subject}: ${n} test images; z from '${config.decoders.z.roi}' (${pre.voxels.z} voxels), c from '${config.decoders.c.roi}' (${pre.voxels.c} voxels)`,
      ...STAGES.map((s) => `${skip.get(s) ? 'skip' : 'run '} ${s}`),
      `img2img: ${n} images × ${config.img2img.seeds} seeds × ${Math.floor(config.img2img.steps * config.img2img.strength)} steps = ${est.unetEvaluations} U-Net evaluations, about ${Math.round(est.seconds)} s on CPU (rough estimate from the U-Net's size)`,
    ];
    return {
      out: config.out,
      config,
      configHash: hash,
      stages: STAGES.map((s) => ({ stage: s, status: skip.get(s) ? 'skipped' : 'planned', seconds: 0 })),
      testImages: n,
      plan: lines,
    };
  }
  if (options.force) await clearStages(config.out);
  let sd: Diffusion | undefined;
  const diffusion = async (): Promise<Diffusion> => {
    sd ??= await Diffusion.load(config.model.dir, {
      provider: config.model.provider,
      ortLibrary: config.model.ortLibrary ?? undefined,
      intraOpThreads: config.model.threads || undefined,
    });
    return sd;
  };
  try {
    await writeManifest(config, versions());
    for (const [i, stage] of STAGES.entries()) {
      if (options.signal?.aborted) throw new CancelledError('reconstruct: cancelled');
      const base = { stage, index: i + 1, stages: STAGES.length };
      if (skip.get(stage)) {
        const m = await readStageMarker(config, stage);
        plan.push({ stage, status: 'skipped', seconds: 0, summary: m?.summary });
        options.onProgress?.({ ...base, fraction: 1, status: 'skipped' });
        continue;
      }
      const ctx: StageContext = {
        config,
        pre,
        diffusion,
        signal: options.signal,
        progress: (fraction, message) => options.onProgress?.({ ...base, fraction, message, status: 'running' }),
      };
      options.onProgress?.({ ...base, fraction: 0, status: 'running' });
      const t0 = performance.now();
      const r = await STAGE_RUNNERS[stage](ctx);
      const seconds = (performance.now() - t0) / 1000;
      await markStage(config, { stage, seconds, outputs: r.outputs, summary: r.summary });
      plan.push({ stage, status: 'ran', seconds, summary: r.summary });
      options.onProgress?.({ ...base, fraction: 1, status: 'done' });
    }
    if (sd) await writeManifest(config, versions(sd));
  } finally {
    sd?.dispose();
  }
  const ev = plan.find((s) => s.stage === 'evaluate')?.summary as ReconstructResult['metrics'] | undefined;
  return { out: config.out, config, configHash: hash, stages: plan, testImages: pre.testIds.length, metrics: ev };
}
