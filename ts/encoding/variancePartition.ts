import { InvalidArgumentError } from '../errors.js';
import type { Matrix } from '../matrix.js';
import type { FitControl } from '../ridge/RidgeCV.js';
import { BandedRidgeCV, type BandedRidgeCVOptions } from './BandedRidgeCV.js';
import type { BandedRidgeModel } from './BandedRidgeModel.js';
import { columnPearson, columnR2 } from './metrics.js';

export interface VariancePartition {
  bandNames: string[];
  /** Held-out R² of the joint model (all spaces). */
  joint: Float32Array;
  /** Held-out R² of the joint model without space i, per space. */
  without: Float32Array[];
  /** Variance explained by space i alone and no other: R²(all) − R²(all but i). */
  unique: Float32Array[];
  /** What remains of R²(all) after the unique parts: R²(all) − Σᵢ uniqueᵢ (for two spaces, R²(A) + R²(B) − R²(A∪B)). */
  shared: Float32Array;
  /** Held-out Pearson r of the joint model. */
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
  const pred = model.predict(test);
  const joint = columnR2(pred, testY);
  const jointR = columnPearson(pred, testY);
  const without: Float32Array[] = [];
  for (let i = 0; i < names.length; i++) {
    const keep = names.filter((_, k) => k !== i);
    const sub = await new BandedRidgeCV(options).fit(pick(train, keep), trainY, step(i + 1));
    without.push(columnR2(sub.predict(pick(test, keep)), testY));
  }
  const unique = without.map((w) => joint.map((j, v) => j - w[v]));
  const shared = joint.map((j, v) => j - unique.reduce((s, u) => s + u[v], 0));
  return { bandNames: names, joint, without, unique, shared, jointR, model };
}
