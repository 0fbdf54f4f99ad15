/** Typings of the RidgeCV part of the addon (native/addon/addon_ridge.cpp). */
import type { CancelToken } from './engineTypes.js';

/** The routes of the ridge engine, by name. */
export type NativeRidgeSolver = 'per-fold-primal' | 'per-fold-kernel' | 'exact-primal' | 'exact-kernel';

export interface NativeRidgeOptions {
  alphas: Float64Array;
  folds: Int32Array;
  nFolds: number;
  score: 'r2' | 'pearson';
  fitIntercept: boolean;
  standardize: boolean;
  route: 'auto' | 'primal' | 'kernel';
  cvMethod: 'auto' | 'per-fold' | 'exact';
  /** A route by name; overrides route and cvMethod. */
  solver?: NativeRidgeSolver;
  backend: 'auto' | 'cpu' | 'cuda';
  eigPrecision: 'auto' | 'float32' | 'float64';
  /** Bytes of work buffers (0: the default). */
  memoryBudget: number;
  targetBatch: number;
}

/** What every fit of the ridge engine reports about its memory. */
export interface NativeMemoryInfo {
  /** Bytes the fit holds whatever the batch size: X's prepared copy, Grams, decompositions. */
  fixedBytes: number;
  /** Bytes of one target batch's buffers. */
  batchBytes: number;
  /** The budget it ran under. */
  budgetBytes: number;
  /** The most work-buffer bytes it held at once. */
  peakBytes: number;
}

/**
 * The memory plan of a RidgeCV fit from its shape alone (RidgeCV.costModel), as the fit makes it: its
 * fixedBytes, batchBytes, budgetBytes, targetBatch and nBatches are the fit's `info` figures. The fit is refused
 * (OutOfMemoryError) when fixedBytes + bytesPerTarget exceeds budgetBytes (`fits` false). Whether the eigensolver
 * may need float64 work space depends on X's values: counted unless X is standardised with an intercept or the
 * eig precision is fixed, so fixedBytes is the fit's own there and never below it elsewhere.
 */
export interface NativeMemoryPlan {
  /** Bytes held whatever the batch size: X's prepared copy, the route's Grams and decompositions, per-target results, a 1 MiB reserve. */
  fixedBytes: number;
  /** Of fixedBytes: X's prepared copy (4 bytes × samples × features). */
  xCopyBytes: number;
  /** Of fixedBytes: the route's Grams, decompositions and work buffers. */
  routeBytes: number;
  /** Bytes for each target of a batch. */
  bytesPerTarget: number;
  /** The budget the fit runs under: memoryBudget, else the default grown to the fixed part and a batch. */
  budgetBytes: number;
  /** Targets per batch, and the batches of all the targets. */
  targetBatch: number;
  nBatches: number;
  /** bytesPerTarget × targetBatch: fixedBytes + batchBytes is the planned peak. */
  batchBytes: number;
  /** fixedBytes + bytesPerTarget is within budgetBytes: the fit is not refused for its budget. */
  fits: boolean;
}

export interface NativeRidgeInfo extends NativeMemoryInfo {
  /** The route's name, e.g. 'per-fold-kernel'. */
  solver: NativeRidgeSolver;
  route: 'primal' | 'kernel';
  cvMethod: 'per-fold' | 'exact';
  eigPrecision: 'float32' | 'float64' | 'mixed';
  backend: string;
  targetBatch: number;
  nBatches: number;
  decompositions: number;
  gemmFlops: number;
  secondsDecompose: number;
  secondsCv: number;
  secondsRefit: number;
  secondsTotal: number;
  edgeLow: number;
  edgeHigh: number;
  /** Alphas below the float32 resolution of a (near) singular Gram: never chosen, cvScores NaN. */
  unresolvedAlphas: number;
  /** That resolution (1e-5·λ_max of the Gram), 0 when every alpha is resolved. */
  alphaResolution: number;
}

export interface NativeRidgeResult {
  nFeatures: number;
  nTargets: number;
  coef: Float32Array;
  intercept: Float32Array;
  xMean: Float32Array;
  xScale: Float32Array;
  bestAlphas: Float32Array;
  bestScores: Float32Array;
  cvScores: Float32Array;
  info: NativeRidgeInfo;
}

/** One problem of ridgeFitMany: X (n × p) and Y (n × t), read in place, and its options, as ridgeFit takes them. */
export interface NativeRidgeProblem {
  x: Float32Array;
  n: number;
  p: number;
  y: Float32Array;
  t: number;
  options: NativeRidgeOptions;
}

export interface RidgeBinding {
  /**
   * Independent fits as one job: up to `concurrency` at once, each on its own backend instance (on CUDA its own
   * stream and handles, an equal share of the device's memory). Results in the problems' order; progress is the mean
   * fraction over the problems; an error's message names its problem after `label` ('ridgeFitMany problem 2 (of 4): …'
   * by default), a cancellation none.
   */
  ridgeFitMany(
    problems: NativeRidgeProblem[],
    concurrency: number,
    onProgress?: (fraction: number, stage: string) => void,
    cancel?: CancelToken,
    label?: string,
  ): Promise<NativeRidgeResult[]>;
  ridgeFit(
    x: Float32Array,
    n: number,
    p: number,
    y: Float32Array,
    t: number,
    options: NativeRidgeOptions,
    onProgress?: (fraction: number, stage: string) => void,
    cancel?: CancelToken,
  ): Promise<NativeRidgeResult>;
  ridgePredict(
    x: Float32Array,
    n: number,
    p: number,
    coef: Float32Array,
    t: number,
    intercept: Float32Array,
    xMean: Float32Array,
    xScale: Float32Array,
    /** n × t, filled in place and returned: memory V8 owns, freed when collected (an engine buffer would be freed only when the event loop turns) */
    out: Float32Array,
  ): Float32Array;
  /**
   * The same prediction on a worker thread; progress (stage 'predict') after each of its GEMMs, the token checked
   * before each and after the last. With `label`, X is first checked for NaN/Inf on that thread (NonFinite, naming
   * `label`, the value, its row and its column).
   */
  ridgePredictAsync(
    x: Float32Array,
    n: number,
    p: number,
    coef: Float32Array,
    t: number,
    intercept: Float32Array,
    xMean: Float32Array,
    xScale: Float32Array,
    out: Float32Array,
    onProgress?: (fraction: number, stage: string) => void,
    cancel?: CancelToken,
    label?: string,
  ): Promise<Float32Array>;
  /**
   * The flop model and memory plan of the route a fit of this shape would take, from its dimensions alone: each fold's
   * number of samples in `foldSizes` (summing to n), in place of the options' folds.
   */
  ridgeCostEstimate(
    n: number,
    p: number,
    t: number,
    foldSizes: Float64Array,
    options: Omit<NativeRidgeOptions, 'folds' | 'nFolds'>,
  ): { route: NativeRidgeSolver; flops: number; memory: NativeMemoryPlan };
  contiguousFolds(n: number, k: number): Int32Array;
  /** The sizes of contiguousFolds(n, k)'s folds, without its n labels. */
  contiguousFoldSizes(n: number, k: number): Float64Array;
  groupFolds(groups: Int32Array, k: number): Int32Array;
}
