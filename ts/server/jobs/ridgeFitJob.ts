/**
 * The ridge-fit job: RidgeCV on X and Y stored as .npy, written to a run folder as `model.safetensors` (the
 * format `brainlatent ridge predict` and `POST /v1/models` load) and `fit.json` (shapes, the chosen alphas,
 * mean CV score, the route taken).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

import { allInOrder } from '../../allInOrder.js';
import { writeJsonAtomic } from '../../io/atomicWrite.js';
import { matrixShapeOf, readIntVectorNpy, readMatrixNpy, readNpyHeader } from '../../io/npy.js';
import { ridgeBudgetProblem } from '../../ridge/memoryPlan.js';
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
    memoryBudget: c.memoryGiB === null ? undefined : c.memoryGiB * 2 ** 30,
  };
}

/**
 * At submission: the problem of a memoryGiB the fit would refuse when it starts (its fixed part plus one target over
 * the budget), planned by the engine from the inputs' .npy headers, or null. Inputs that cannot be read or do not
 * agree are the job's to report (it names the file), as before: null.
 */
export async function ridgeFitBudgetProblem(c: RidgeFitConfig): Promise<string | null> {
  if (c.memoryGiB === null) return null;
  let x, y, groups;
  try {
    [x, y] = await Promise.all([readNpyHeader(c.x), readNpyHeader(c.y)]);
    if (x.shape.length !== 2 || !matrixShapeOf(y.shape, { vector: 'column' }) || x.shape[0] !== y.shape[0]) return null;
    groups = c.groups ? await readIntVectorNpy(c.groups, 'groups') : undefined;
  } catch {
    return null;
  }
  const shape = { rows: x.shape[0], cols: x.shape[1], targets: matrixShapeOf(y.shape, { vector: 'column' })![1] };
  return ridgeBudgetProblem(ridgeFitOptions(c, groups), shape, { what: 'body.config: the ridge fit', field: 'body.config.memoryGiB', unit: 'GiB' });
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
