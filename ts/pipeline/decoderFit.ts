/**
 * The RidgeCV fits of the decoders stage (voxels → z, voxels → c): their options, and their memory planned from
 * their shapes before anything runs (ts/ridge/memoryPlan.ts), so that a decoders.<t>.memoryBudget the fit would
 * refuse is refused by the preflight, not after the extraction and the features.
 */
import type { DecoderConfig, ReconstructConfig } from '../config/reconstruct.js';
import { fieldNames, type FieldNames } from '../config/fieldNames.js';
import type { RidgeCVOptions } from '../ridge/RidgeCV.js';
import { planRidgeFit, ridgeBudgetProblem, ridgePlanLine } from '../ridge/memoryPlan.js';
import { embeddingWidths } from '../sd/embeddingWidths.js';
import { trainFoldsProblem } from './trainFolds.js';

/** A decoder's RidgeCV options; `groups`: the 73k image id of each training row (folds of whole images). */
export function decoderFitOptions(d: DecoderConfig, groups: ArrayLike<number>): RidgeCVOptions {
  return { alphas: d.alphas, folds: d.folds, groups, score: d.score, fitIntercept: d.fitIntercept, standardize: d.standardize, memoryBudget: d.memoryBudget };
}

/**
 * Each decoder's memory problem (its budget below the fit's fixed part plus one target) and the dry run's plan line:
 * `trainIds` the image id of each training row (by decoder: averageTrain differs), `voxels` its region's voxels; the
 * targets are z's and c's columns as the model folder declares them (a decoder whose width is not declared is left
 * to its fit). A fold count the training rows cannot hold is the decoder's problem instead, worded by `names` for
 * the form that gave the config.
 */
export async function decoderFitMemory(
  c: ReconstructConfig,
  trainIds: Record<'z' | 'c', Int32Array>,
  voxels: Record<'z' | 'c', number>,
  names: FieldNames = fieldNames(),
): Promise<{ problems: string[]; lines: string[] }> {
  const out = { problems: [] as string[], lines: [] as string[] };
  const widths = await embeddingWidths(c.model.dir, c.features.zSize);
  for (const t of ['z', 'c'] as const) {
    const targets = widths[t];
    if (targets === null || trainIds[t].length === 0 || voxels[t] === 0) continue;
    const options = decoderFitOptions(c.decoders[t], trainIds[t]);
    const shape = { rows: trainIds[t].length, cols: voxels[t], targets };
    const what = `the ${t} decoder (decoders.${t})`;
    const folds = trainFoldsProblem(`decoders.${t}.folds`, c.decoders[t].folds, trainIds[t], c.decoders[t].averageTrain, names, `the ${t} decoder`);
    if (folds) {
      out.problems.push(folds);
      continue;
    }
    const problem = ridgeBudgetProblem(options, shape, { what, field: `decoders.${t}.memoryBudget`, unit: 'bytes', targets: `${t} features` });
    if (problem) out.problems.push(problem);
    else out.lines.push(ridgePlanLine(what, shape, planRidgeFit(options, shape), `${t} features`));
  }
  return out;
}
