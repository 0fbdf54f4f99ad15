/**
 * A config's `ridge.memoryBudget` (bytes) against what the engine needs, known before anything runs: the least any
 * fit of the run takes, and each fit's memory plan from its shape (ts/ridge/memoryPlan.ts).
 */
import type { BandedSpec, EncodeConfig } from '../config/encode.js';
import type { BandedRidgeCVOptions } from '../ridge/BandedRidgeCV.js';
import type { RidgeCVOptions } from '../ridge/RidgeCV.js';
import { gib, planBandedFit, planRidgeFit, ridgeBudgetProblem, ridgePlanLine } from '../ridge/memoryPlan.js';
import type { TableSpec } from './runPaths.js';

/**
 * Parts of every ridge fit's fixed footprint that depend on nothing but the number of targets (native/core/src/ridge/
 * engine.cpp, attempt()): a 1 MiB reserve for small allocations, and each target's best score and alpha (doubles)
 * and index (int32), 20 bytes. X's prepared copy, the route's Grams and decompositions and the target batches come on
 * top, so a budget below this is refused by the engine whatever the features.
 */
const ENGINE_RESERVE = 2 ** 20;
const BYTES_PER_TARGET = 20;

/** The least memory budget, in bytes, that a ridge fit to `targets` targets (voxels) can have. */
export const ridgeBudgetFloor = (targets: number): number => ENGINE_RESERVE + BYTES_PER_TARGET * targets;

/** The preflight's problem with `ridge.memoryBudget` for fits to `voxels` voxels, or null. */
export function memoryBudgetProblem(budget: number | undefined, voxels: number): string | null {
  if (budget === undefined) return null;
  const floor = ridgeBudgetFloor(voxels);
  if (budget >= floor) return null;
  return (
    `ridge.memoryBudget is ${budget} bytes (${gib(budget)}), below the ${floor} bytes (${gib(floor)}) that every ridge fit of this run needs ` +
    `before X's copy and the route's work buffers (the engine's 1 MiB reserve and ${BYTES_PER_TARGET} bytes for each of the ${voxels} voxels): ` +
    'the budget is in bytes (2 GiB is 2147483648); leave it out for the engine\'s default'
  );
}

/** The options of encode's RidgeCV fits (fit.<table>): the fit stage's and the preflight's plan of it. */
export function encodeFitOptions(c: EncodeConfig, groups: ArrayLike<number>): RidgeCVOptions {
  return {
    alphas: c.ridge.alphas,
    folds: c.ridge.folds,
    groups,
    score: c.ridge.score,
    route: c.ridge.route,
    cvMethod: c.ridge.cvMethod,
    standardize: true,
    memoryBudget: c.ridge.memoryBudget,
  };
}

/** The options of encode's banded fits (banded.<name>, and its partitioning fits): under the same ridge.memoryBudget as the per-set fits. */
export function encodeBandedOptions(c: EncodeConfig, b: BandedSpec, groups: ArrayLike<number>): BandedRidgeCVOptions {
  return {
    alphas: b.alphas ?? c.ridge.alphas,
    nIter: b.nIter,
    seed: b.seed,
    groups,
    folds: c.ridge.folds,
    standardize: true,
    memoryBudget: c.ridge.memoryBudget,
  };
}

/** The fits' memory: the problems of a budget a fit would refuse, and the dry run's line per fit. */
export interface FitMemory {
  problems: string[];
  lines: string[];
}

/**
 * Each fit's memory plan at its shape: the training rows (`trainIds`, the 73k id of each, the groups of its folds)
 * × the table's columns (`widths` by table key; a table whose width is not known before its features are computed
 * is left to the fit) → `voxels`.
 */
export function encodeFitMemory(
  c: EncodeConfig,
  tables: readonly TableSpec[],
  widths: ReadonlyMap<string, number>,
  trainIds: Int32Array,
  voxels: number,
  banded: readonly { spec: BandedSpec; tables: readonly TableSpec[] }[] = [],
): FitMemory {
  const out: FitMemory = { problems: [], lines: [] };
  const options = encodeFitOptions(c, trainIds);
  for (const t of tables) {
    const cols = widths.get(t.key);
    if (cols === undefined || trainIds.length === 0 || voxels === 0) continue;
    const shape = { rows: trainIds.length, cols, targets: voxels };
    const what = `fit '${t.name}' (stage fit.${t.key})`;
    const problem = ridgeBudgetProblem(options, shape, { what, field: 'ridge.memoryBudget', unit: 'bytes', targets: 'voxels' });
    if (problem) out.problems.push(problem);
    else out.lines.push(ridgePlanLine(what, shape, planRidgeFit(options, shape), 'voxels'));
  }
  // a banded fit's X is its sets' tables side by side (its partitioning fits leave one out: smaller, so planned by it)
  for (const { spec: b, tables: sets } of banded) {
    const cols = sets.map((t) => widths.get(t.key));
    if (cols.some((w) => w === undefined) || trainIds.length === 0 || voxels === 0) continue;
    const o = encodeBandedOptions(c, b, trainIds);
    const bandedOptions: RidgeCVOptions = { alphas: o.alphas, folds: o.folds, groups: o.groups, standardize: o.standardize, memoryBudget: o.memoryBudget };
    const shape = { rows: trainIds.length, cols: (cols as number[]).reduce((a, w) => a + w, 0), targets: voxels };
    // (ridgeBudgetProblem plans at the budgets it tries: the fit's own options with each)
    const plan = (opts: RidgeCVOptions, s: typeof shape) => planBandedFit({ ...o, memoryBudget: opts.memoryBudget }, s, cols as number[]);
    const what = `banded fit '${b.name}' (stage banded.${b.name}, ${sets.length} bands)`;
    const problem = ridgeBudgetProblem(bandedOptions, shape, { what, field: 'ridge.memoryBudget', unit: 'bytes', targets: 'voxels' }, plan);
    if (problem) out.problems.push(problem);
    else out.lines.push(ridgePlanLine(what, shape, plan(bandedOptions, shape), 'voxels'));
  }
  return out;
}
