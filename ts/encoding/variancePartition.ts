import { InvalidArgumentError } from '../errors.js';
import type { Matrix } from '../matrix.js';
import type { FitControl } from '../ridge/RidgeCV.js';
import { BandedRidgeCV, type BandedRidgeCVOptions } from '../ridge/BandedRidgeCV.js';
import type { BandedRidgeModel } from '../ridge/BandedRidgeModel.js';
import { constantColumns, heldOutScores } from './metrics.js';

/**
 * The convention (docs/encoding.md, "Variance partitioning"): every model's held-out R² is floored at 0 before
 * partitioning — a model that predicts the test data worse than their mean explains no variance — and the
 * partition is defined only where the joint model explains some (R²(all) > 0); elsewhere unique and shared are
 * NaN. Then unique(i) ≤ R²(all) ≤ 1 always; a negative unique or shared value (removing a space helped, through
 * shrinkage or noise) is kept as it is, not clipped.
 */
export const PARTITION_CONVENTION =
  'held-out R² of each model floored at 0 before partitioning; partition defined only where the joint model has R² > 0 (NaN elsewhere); negative parts kept, not clipped';

export interface VariancePartition {
  bandNames: string[];
  /** Held-out R² of the joint model (all spaces), as measured (not floored); NaN where the test column is constant. */
  joint: Float32Array;
  /** Held-out R² of the joint model without space i, per space, as measured; NaN where the test column is constant. */
  without: Float32Array[];
  /** Variance explained by space i and no other: R²₊(all) − R²₊(all but i), R²₊ = max(R², 0); NaN where R²(all) ≤ 0 or is NaN. */
  unique: Float32Array[];
  /** What remains of R²₊(all) after the unique parts: R²₊(all) − Σᵢ uniqueᵢ (two spaces: R²₊(A) + R²₊(B) − R²₊(A∪B)); NaN where R²(all) ≤ 0 or is NaN. */
  shared: Float32Array;
  /** Held-out Pearson r of the joint model; NaN where the test column is constant (heldOutScores). */
  jointR: Float32Array;
  model: BandedRidgeModel;
}

/**
 * Variance partitioning by held-out R² (Lescroart et al. 2015; de Heer et al. 2017): the joint banded model
 * and one banded model per leave-one-space-out subset, each fitted on the training rows and scored on the test rows.
 */
export async function partitionVariance(
  train: Record<string, Matrix>,
  trainY: Matrix,
  test: Record<string, Matrix>,
  testY: Matrix,
  options: BandedRidgeCVOptions = {},
  control: FitControl = {},
): Promise<VariancePartition> {
  const names = Object.keys(train);
  if (names.length < 2) throw new InvalidArgumentError(`variance partitioning needs at least two feature spaces, got ${names.length} (${names.join(', ')})`);
  for (const n of names) if (!test[n]) throw new InvalidArgumentError(`variance partitioning: feature space '${n}' has training rows but no test rows`);
  const steps = names.length + 1;
  const step = (k: number): FitControl => ({
    signal: control.signal,
    onProgress: control.onProgress ? (p) => control.onProgress?.({ fraction: (k + p.fraction) / steps, stage: p.stage }) : undefined,
  });
  const pick = (src: Record<string, Matrix>, keep: string[]) => Object.fromEntries(keep.map((n) => [n, src[n]]));
  const model = await new BandedRidgeCV(options).fit(train, trainY, step(0));
  // every score NaN where the test betas are constant (no variance to partition), and so are unique and shared there
  const flat = constantColumns(testY, 'partitionVariance: testY');
  const { r: jointR, r2: joint } = heldOutScores(model.predict(test), testY, flat);
  const without: Float32Array[] = [];
  for (let i = 0; i < names.length; i++) {
    const keep = names.filter((_, k) => k !== i);
    const sub = await new BandedRidgeCV(options).fit(pick(train, keep), trainY, step(i + 1));
    without.push(heldOutScores(sub.predict(pick(test, keep)), testY, flat).r2);
  }
  const floor = (r: number) => (r > 0 ? r : 0);
  const unique = without.map((w) => joint.map((j, v) => (j > 0 ? j - floor(w[v]) : NaN)));
  const shared = joint.map((j, v) => (j > 0 ? j - unique.reduce((s, u) => s + u[v], 0) : NaN));
  return { bandNames: names, joint, without, unique, shared, jointR, model };
}
