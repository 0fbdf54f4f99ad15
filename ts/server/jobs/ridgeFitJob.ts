/**
 * The ridge-fit job: RidgeCV on X and Y stored as .npy, written to a run folder as `model.safetensors` (the
 * format `brainlatent ridge predict` and `POST /v1/models` load) and `fit.json` (shapes, the chosen alphas,
 * mean CV score, the route taken).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

import { allInOrder } from '../../allInOrder.js';
import { writeJsonAtomic } from '../../io/atomicWrite.js';
import { checkOutputPath } from '../../cli/outputPath.js';
import { FlagProblems } from '../../cli/problems.js';
import { readIntVectorNpy, readMatrixNpy } from '../../io/npy.js';
import { checkFitBudget, checkFitInputs, type FitInputNames } from '../../ridge/fitPreflight.js';
import { RidgeCV, type RidgeCVOptions } from '../../ridge/RidgeCV.js';
import type { RidgeFitConfig } from '../../config/ridgeFit.js';

export const RIDGE_FIT_STAGES = ['load', 'fit', 'save'] as const;

export interface StageProgress {
  (stage: string, index: number, stages: number, fraction: number, message?: string): void;
}

/** The job's RidgeCV options: the config's, its budget in bytes (none: the engine's default, which grows to the fit). */
function ridgeFitOptions(c: RidgeFitConfig, groups: Int32Array | undefined): RidgeCVOptions {
  return {
    alphas: c.alphas,
    folds: c.folds,
    groups,
    score: c.score,
    fitIntercept: c.fitIntercept,
    standardize: c.standardize,
    route: c.route,
    cvMethod: c.cvMethod,
    eigPrecision: c.eigPrecision,
    // (whole bytes, as `ridge fit`'s --memory: 0.1 GiB is not a whole number of them)
    memoryBudget: c.memoryGiB === null ? undefined : Math.round(c.memoryGiB * 2 ** 30),
  };
}

/** The config's fields, as the service's refusals name them (`ridge fit` names its flags). */
const FIT_FIELDS: FitInputNames = {
  x: 'body.config.x',
  y: 'body.config.y',
  groups: 'body.config.groups',
  folds: 'body.config.folds',
  memory: 'body.config.memoryGiB',
  fit: 'body.config: the ridge fit',
};

/** What the job writes in its run folder, in the refusal of an `out` that cannot be one. */
const FIT_FOLDER = 'the fit (model.safetensors and fit.json)';

/**
 * At submission, what the job would refuse or fail on once it ran, each problem naming its field: an `out` that
 * cannot be a folder (an existing file: the whole fit ran, then its mkdir failed), and the checks `ridge fit` makes of
 * its inputs before reading them (ts/ridge/fitPreflight.ts: each file there, shapes, types, rows, folds, groups, the
 * memoryGiB against the fit's plan). Nothing is read but the headers and the groups.
 */
export async function ridgeFitProblems(c: RidgeFitConfig): Promise<string[]> {
  const p = new FlagProblems();
  const { groups, shape } = await checkOutAndInputs(p, { ...c, groups: c.groups ?? undefined });
  if (shape) checkFitBudget(p, ridgeFitOptions(c, groups), shape, FIT_FIELDS);
  return p.lines;
}

/** Of a config that failed its schema, the fields that are sound: the paths given as strings, folds when valid. */
export interface RidgeFitPaths {
  out?: string;
  x?: string;
  y?: string;
  groups?: string;
  folds?: number;
}

async function checkOutAndInputs(p: FlagProblems, c: RidgeFitPaths) {
  if (c.out !== undefined) await p.takeAsync(() => checkOutputPath('body.config.out', c.out!, 'folder', FIT_FOLDER));
  if (c.x === undefined || c.y === undefined) return {};
  return checkFitInputs(p, { x: c.x, y: c.y, groups: c.groups, folds: c.folds }, FIT_FIELDS);
}

/**
 * ridgeFitProblems' checks of the out folder and the inputs (those given; X and Y both, or neither), without the
 * budget's, which needs the whole config: for a config the schema refused, so that a 400 lists a missing X beside a
 * bad folds, as `ridge fit` does.
 */
export async function ridgeFitInputProblems(c: RidgeFitPaths): Promise<string[]> {
  const p = new FlagProblems();
  await checkOutAndInputs(p, c);
  return p.lines;
}

export async function runRidgeFit(c: RidgeFitConfig, control: { signal: AbortSignal; progress: StageProgress }): Promise<Record<string, unknown>> {
  const n = RIDGE_FIT_STAGES.length;
  control.progress('load', 1, n, 0);
  // allInOrder: with X and Y both bad, the job's error names X on every run, not whichever read failed first
  const [x, y, groups] = await allInOrder([
    readMatrixNpy(c.x, 'X'),
    readMatrixNpy(c.y, 'Y', { vector: 'column' }), // a 1-D y: one target, as scikit-learn takes it
    c.groups ? readIntVectorNpy(c.groups, 'groups') : Promise.resolve(undefined),
  ]);
  control.progress('load', 1, n, 1, `X ${x.rows}×${x.cols}, Y ${y.rows}×${y.cols}`);
  // the stage starts now, whether or not the engine reports progress before it ends
  control.progress('fit', 2, n, 0);
  const t0 = performance.now();
  const model = await new RidgeCV(
    ridgeFitOptions(c, groups),
  ).fit(x, y, { onProgress: (p) => control.progress('fit', 2, n, p.fraction, p.stage), signal: control.signal });
  const seconds = (performance.now() - t0) / 1000;
  control.progress('save', 3, n, 0);
  await mkdir(c.out, { recursive: true });
  await model.save(join(c.out, 'model.safetensors'));
  let mean = 0;
  for (const s of model.bestScores) mean += s / model.bestScores.length;
  const counts = new Map<number, number>();
  for (const a of model.bestAlphas) counts.set(a, (counts.get(a) ?? 0) + 1);
  const summary = {
    model: 'model.safetensors',
    samples: x.rows,
    features: x.cols,
    targets: y.cols,
    alphas: model.settings.alphas,
    targetsPerAlpha: model.settings.alphas.map((a) => counts.get(Math.fround(a)) ?? 0),
    meanCvScore: mean,
    score: c.score,
    seconds,
    route: model.info?.route,
    cvMethod: model.info?.cvMethod,
  };
  await writeJsonAtomic(join(c.out, 'fit.json'), summary);
  control.progress('save', 3, n, 1);
  return summary;
}
