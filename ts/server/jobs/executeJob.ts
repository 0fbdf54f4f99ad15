/**
 * What each kind of job runs: the library's own entry points (reconstruct, encode, RidgeCV, the demo), with the
 * job's AbortSignal (they stop at the next step, fold or batch) and their progress mapped onto numbered stages.
 */
import { runDemo } from '../../demo/runDemo.js';
import type { DemoWorldProgress } from '../../demo/world.js';

import { batchUnderRoots, type ResolvedBatch } from '../../batch/manifest.js';
import type { EncodeConfig } from '../../config/encode.js';
import { encodeResult } from '../../encoding/encode.js';
import type { ReconstructProgress, ReconstructResult } from '../../pipeline/reconstruct.js';
import type { ReconstructConfig } from '../../pipeline/config.js';
import { clearRunFolder, lockRunFolder, STAGES } from '../../pipeline/runFolder.js';
import { withModelRoots } from '../../sd/modelRoots.js';
import type { RidgeFitConfig } from '../../config/ridgeFit.js';
import type { JobSpec } from './JobRunner.js';
import { analysisStages } from '../../batch/graph.js';
import { batchOfOne, runOnBatchLayer } from './batchLayer.js';
import { encodeSummary } from './encodeSummary.js';
import { jobMetrics, reconstructOutcome } from './reconstructOutcome.js';
import { RIDGE_FIT_STAGES, runRidgeFit } from './ridgeFitJob.js';
import type { JobControl, JobKind } from './types.js';

// (in types.ts, which the batch layer shares without importing this module)
export type { JobControl, StageUpdate } from './types.js';

/** The validated input of each kind (paths absolute, inside the root). */
export interface DemoJobInput {
  out: string;
  seed: number;
  sessions: number;
  testImages: number;
  seeds: number;
  steps: number;
}
export type JobInput =
  | { kind: 'reconstruct'; config: ReconstructConfig; force: boolean; batchesDir: string }
  | { kind: 'encode'; config: EncodeConfig; force: boolean; batchesDir: string }
  | { kind: 'batch'; batch: ResolvedBatch }
  | { kind: 'ridge-fit'; config: RidgeFitConfig }
  | { kind: 'demo'; demo: DemoJobInput };

/** The stages a job goes through, as its view and events name them (an encode config's come from its feature sets). */
export function stagesOf(spec: Pick<JobSpec, 'kind' | 'input'>): string[] {
  const kind: JobKind = spec.kind;
  switch (kind) {
    case 'reconstruct':
      return ['betas', ...STAGES];
    case 'demo':
      return ['world', ...STAGES];
    case 'encode':
      return ['betas', ...analysisStages('encode', (spec.input as { config: EncodeConfig }).config)];
    case 'ridge-fit':
      return [...RIDGE_FIT_STAGES];
    case 'batch':
      return ['batch'];
  }
}

/**
 * A demo's reconstruction as its job's result, and its img2img stage's U-Net work to the steps/s metric when the stage
 * ran: what its summary says this run computed (an interrupted run's samples, reused, are not in it).
 */
function reconstructSummary(r: ReconstructResult, control: JobControl): Record<string, unknown> {
  const img2img = r.stages.find((s) => s.stage === 'img2img');
  const evaluations = Number(img2img?.summary?.unetEvaluations ?? 0);
  if (img2img?.status === 'ran' && evaluations > 0) control.unet?.(evaluations, Number(img2img.summary?.unetSeconds ?? 0));
  return {
    testImages: r.testImages,
    metrics: r.metrics ? jobMetrics(r.metrics) : null,
    stages: r.stages.map((s) => ({ stage: s.stage, status: s.status, seconds: s.seconds })),
    report: 'report.html',
    configHash: r.configHash,
  };
}

const fromReconstruct = (control: JobControl, shift = 0, total: number = STAGES.length) => (p: ReconstructProgress) =>
  control.progress({
    stage: p.stage, index: p.index + shift, stages: total, fraction: p.fraction, message: p.message, status: p.status,
    // (with the samples a resumed img2img reused: the board's rate leaves them out)
    ...(p.count ? { count: { done: p.count.done, total: p.count.total, ...(p.count.reused ? { reused: p.count.reused } : {}) } } : {}),
  });

/** The demo world's build as the job's first stage, 'world': its fraction, and the phase (with its count) as the message. */
const fromWorld = (control: JobControl, stages: number) => (p: DemoWorldProgress) =>
  control.progress({
    stage: 'world',
    index: 1,
    stages,
    fraction: p.fraction,
    message: p.phase === 'reused' ? 'reused the demo world (same parameters and code)' : p.count ? `${p.phase}: ${p.count.done}/${p.count.total} ${p.count.unit}` : p.phase,
    ...(p.phase === 'reused' ? { status: 'skipped' as const } : {}),
  });

/**
 * Runs a job, its model files held to its service's root (spec.modelRoots) here and in every job of its batch,
 * whichever process or worker runs them.
 */
export function executeJob(spec: JobSpec, control: JobControl): Promise<Record<string, unknown>> {
  return spec.modelRoots ? withModelRoots(spec.modelRoots, () => runJob(spec, control)) : runJob(spec, control);
}

async function runJob(spec: JobSpec, control: JobControl): Promise<Record<string, unknown>> {
  const input = spec.input as JobInput;
  // (the roots are part of the batch's identity: the same batch from a service with another root is not this one)
  const underRoots = (b: ResolvedBatch) => (spec.modelRoots?.length ? batchUnderRoots(b, spec.modelRoots) : b);
  switch (input.kind) {
    case 'reconstruct':
    case 'encode': {
      if (input.force) {
        // --force: the old run's outputs go before the new run writes anything, with the folder locked meanwhile.
        const lock = await lockRunFolder(input.config.out);
        try {
          await clearRunFolder(input.config.out);
        } finally {
          await lock.release();
        }
      }
      const batch = underRoots(batchOfOne(spec.id, input.kind, input.config, input.batchesDir));
      const r = await runOnBatchLayer(batch, input.kind, control, spec.queue);
      const outcome = input.kind === 'reconstruct' ? await reconstructOutcome(input.config) : { report: 'report.html', encoding: encodeSummary(await encodeResult(input.config)) };
      return { ...outcome, ...r };
    }
    case 'batch':
      return { ...(await runOnBatchLayer(underRoots(input.batch), null, control, spec.queue)), report: 'summary.json' };
    case 'demo': {
      const d = input.demo;
      const stages = STAGES.length + 1;
      // (the 'world' stage is announced by the build's first progress: 'skipped' when an identical world is reused)
      const r = await runDemo(
        { out: d.out, seed: d.seed, sessions: d.sessions, testImages: d.testImages, seeds: d.seeds, steps: d.steps },
        // the signal stops the world build at its next progress point too, and its progress is the 'world' stage's
        { onProgress: fromReconstruct(control, 1, stages), onWorldProgress: fromWorld(control, stages), signal: control.signal },
      );
      return { ...reconstructSummary(r.run, control), report: 'run/report.html', worldSeconds: r.worldSeconds, runSeconds: r.runSeconds };
    }
    case 'ridge-fit':
      return runRidgeFit(input.config, {
        signal: control.signal,
        progress: (stage, index, stages, fraction, message) => control.progress({ stage, index, stages, fraction, message }),
      });
  }
}
