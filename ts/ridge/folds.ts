/** The fold of every sample, from the validated fold options of a ridge fit, with the engine's rules. */
import { InvalidArgumentError, ShapeError } from '../errors.js';
import { nativeSync } from '../native/call.js';

export interface FoldSpec {
  /** Number of folds (contiguous, or whole groups when `groups` is given). Default 5. */
  folds?: number;
  /** A group label per sample (e.g. the image id): a group never straddles training and validation. */
  groups?: ArrayLike<number>;
  /** Explicit fold index (0..k-1) per sample; RidgeCV and BandedRidgeCV refuse it together with folds or groups. */
  foldIndex?: ArrayLike<number>;
}

export interface FoldAssignment {
  folds: Int32Array;
  nFolds: number;
  kind: 'contiguous' | 'groups' | 'custom';
}

/**
 * The folds' sizes a plan made from a shape alone assumes at `n` samples: those of foldIndex or groups when they label
 * `n` samples (the fit's own), else of as many contiguous folds as the fit would make (foldIndex's largest index + 1),
 * computed from n and k alone: a plan at 1e9 samples must not make a label per sample.
 */
export function shapeFoldSizes(n: number, r: { folds: number; groups?: ArrayLike<number>; foldIndex?: ArrayLike<number> }, what: string): { sizes: Float64Array; nFolds: number } {
  if (r.foldIndex?.length === n || r.groups?.length === n) {
    const a = assignFolds(n, r.foldIndex?.length === n ? { folds: r.folds, foldIndex: r.foldIndex } : { folds: r.folds, groups: r.groups }, what);
    return { sizes: Float64Array.from(foldSizes(a)), nFolds: a.nFolds };
  }
  let k = r.folds;
  if (r.foldIndex) {
    k = 0;
    for (let i = 0; i < r.foldIndex.length; i++) k = Math.max(k, r.foldIndex[i] + 1);
  }
  if (k > n) throw new InvalidArgumentError(`${what}: ${k} folds but only ${n} samples`);
  // (checked from n and k before the sizes are made: k may be near n, and n as large as the shape asked about)
  const least = Math.floor(n / k);
  // (fold n % k is the first of `least` samples: the first n % k folds hold one more)
  if (least < 2) throw foldTooSmall(n % k, least, `${what} folds`, `at most ${Math.floor(n / 2)} folds for ${n} samples`);
  const sizes = nativeSync((b) => b.contiguousFoldSizes(n, k));
  checkSizes(sizes, `${what} folds`, `at most ${Math.floor(n / 2)} folds for ${n} samples`);
  return { sizes, nFolds: k };
}

/**
 * Fold index per sample for n samples: explicit (foldIndex), whole groups in contiguous runs of
 * near-equal size, or contiguous KFold. The spec's values were validated by resolveRidgeOptions;
 * what depends on n is checked here.
 */
export function assignFolds(n: number, spec: { folds: number; groups?: ArrayLike<number>; foldIndex?: ArrayLike<number> }, what: string): FoldAssignment {
  if (spec.foldIndex !== undefined) {
    if (spec.foldIndex.length !== n) throw new ShapeError(`${what}: foldIndex has ${spec.foldIndex.length} entries for ${n} samples`);
    const folds = Int32Array.from(spec.foldIndex);
    let k = 0;
    for (const f of folds) k = Math.max(k, f + 1);
    // the folds are 0..k-1 (k from the largest value): each must hold samples, and there must be two at least
    const used = new Uint8Array(k);
    for (const f of folds) used[f] = 1;
    const empty: number[] = [];
    used.forEach((u, f) => {
      if (!u) empty.push(f);
    });
    if (empty.length > 0) {
      const shown = empty.length > 8 ? `${empty.slice(0, 8).join(', ')}, … (${empty.length} in all)` : empty.join(', ');
      throw new InvalidArgumentError(
        `${what} foldIndex: expected the fold of each sample as 0..k-1 with every fold holding samples; its largest value is ${k - 1} (so ${k} folds) but fold${empty.length > 1 ? 's' : ''} ${shown} ${empty.length > 1 ? 'have' : 'has'} none`,
      );
    }
    if (k < 2) throw new InvalidArgumentError(`${what} foldIndex: expected at least 2 folds (values 0 and 1 at least), got every sample in fold 0`);
    return checkFoldSizes({ folds, nFolds: k, kind: 'custom' }, `${what} foldIndex`, 'fewer folds');
  }
  const k = spec.folds;
  if (k > n) throw new InvalidArgumentError(`${what}: ${k} folds but only ${n} samples`);
  if (spec.groups !== undefined) {
    if (spec.groups.length !== n) {
      throw new ShapeError(`${what}: groups has ${spec.groups.length} entries but X has ${n} samples; one group label per sample is expected`);
    }
    const groups = Int32Array.from(spec.groups);
    return checkFoldSizes({ folds: nativeSync((b) => b.groupFolds(groups, k)), nFolds: k, kind: 'groups' }, `${what} folds (of whole groups)`, 'fewer folds');
  }
  return checkFoldSizes({ folds: nativeSync((b) => b.contiguousFolds(n, k)), nFolds: k, kind: 'contiguous' }, `${what} folds`, `at most ${Math.floor(n / 2)} folds for ${n} samples`);
}

/**
 * Every validation fold needs two samples: a fold's score (R² about the fold's mean, or Pearson's r) over one sample
 * is undefined — the engine scores it 0 at every alpha, so leave-one-out would pick the grid's last alpha for every
 * target, silently.
 */
function checkFoldSizes(a: FoldAssignment, what: string, remedy: string): FoldAssignment {
  checkSizes(foldSizes(a), what, remedy);
  return a;
}

function checkSizes(size: ArrayLike<number>, what: string, remedy: string): void {
  const v = Array.prototype.findIndex.call(size, (s: number) => s < 2);
  if (v >= 0) throw foldTooSmall(v, size[v], what, remedy);
}

function foldTooSmall(fold: number, size: number, what: string, remedy: string): InvalidArgumentError {
  return new InvalidArgumentError(`${what}: fold ${fold} holds ${size} sample; each validation fold needs 2 samples at least (a score over one sample is undefined): use ${remedy}`);
}

/** The number of samples in each fold. */
function foldSizes(a: FoldAssignment): Int32Array {
  const size = new Int32Array(a.nFolds);
  for (const f of a.folds) size[f]++;
  return size;
}
