import { InvalidArgumentError, ShapeError } from '../errors.js';
import { binding } from '../native/binding.js';
import { fromNative } from '../native/nativeError.js';

export interface FoldSpec {
  /** Number of folds (contiguous, or whole groups when `groups` is given). Default 5. */
  folds?: number;
  /** A group label per sample (e.g. the image id): a group never straddles training and validation. */
  groups?: ArrayLike<number>;
  /** Explicit fold index (0..k-1) per sample; overrides folds/groups. */
  foldIndex?: ArrayLike<number>;
}

export interface FoldAssignment {
  folds: Int32Array;
  nFolds: number;
  kind: 'contiguous' | 'groups' | 'custom';
}

/** Fold index per sample from a FoldSpec, with the engine's contiguous/grouped rules (as RidgeCV). */
export function assignFolds(n: number, spec: FoldSpec, what: string): FoldAssignment {
  if (spec.foldIndex !== undefined) {
    if (spec.foldIndex.length !== n) throw new ShapeError(`${what}: foldIndex has ${spec.foldIndex.length} entries for ${n} samples`);
    const folds = Int32Array.from(spec.foldIndex);
    let k = 0;
    for (const f of folds) {
      if (!Number.isInteger(f) || f < 0) throw new InvalidArgumentError(`${what}: foldIndex values must be integers >= 0, got ${f}`);
      k = Math.max(k, f + 1);
    }
    return { folds, nFolds: k, kind: 'custom' };
  }
  const k = spec.folds ?? 5;
  if (!Number.isInteger(k) || k < 2) throw new InvalidArgumentError(`${what}: folds must be an integer >= 2, got ${k}`);
  if (k > n) throw new InvalidArgumentError(`${what}: ${k} folds but only ${n} samples`);
  try {
    if (spec.groups !== undefined) {
      if (spec.groups.length !== n) {
        throw new ShapeError(`${what}: groups has ${spec.groups.length} entries but there are ${n} samples; one group label per sample is expected`);
      }
      return { folds: binding().groupFolds(Int32Array.from(spec.groups), k), nFolds: k, kind: 'groups' };
    }
    return { folds: binding().contiguousFolds(n, k), nFolds: k, kind: 'contiguous' };
  } catch (err) {
    throw fromNative(err);
  }
}
