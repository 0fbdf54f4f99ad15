/** The shape of what build/Release/brainlatent.node exports (hand-written, kept in step with native/addon). */

export interface NativeRidgeOptions {
  alphas: Float64Array;
  folds: Int32Array;
  nFolds: number;
  score: 'r2' | 'pearson';
  fitIntercept: boolean;
  standardize: boolean;
  route: 'auto' | 'primal' | 'kernel';
  cvMethod: 'auto' | 'per-fold' | 'exact';
  eigPrecision: 'auto' | 'float32' | 'float64';
  memoryBudget: number;
  targetBatch: number;
}

export interface NativeRidgeInfo {
  route: 'primal' | 'kernel';
  cvMethod: 'per-fold' | 'exact';
  eigPrecision: 'float32' | 'float64';
  targetBatch: number;
  nBatches: number;
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

/** Opaque handle of a native cancellation flag. */
export type CancelToken = { readonly __brand: 'CancelToken' };

/** One backend the engine knows: compiled in or not, usable here or not, and the device or the reason. */
export interface NativeBackendInfo {
  name: 'cpu' | 'cuda';
  compiled: boolean;
  available: boolean;
  /** The device and library when available, otherwise why not. */
  detail: string;
}

export interface NativeBuildInfo {
  blas: string;
  threads: number;
  /** The backends available on this machine, in preference order. */
  backends: string[];
  /** Every backend, with why each missing one is missing. */
  backendList: NativeBackendInfo[];
  cuda: boolean;
  cudaReason: string;
}

export interface RidgeBinding {
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
  ): Float32Array;
  createCancelToken(): CancelToken;
  cancel(token: CancelToken): void;
  contiguousFolds(n: number, k: number): Int32Array;
  groupFolds(groups: Int32Array, k: number): Int32Array;
  setThreads(n: number): number;
  getThreads(): number;
  buildInfo(): NativeBuildInfo;
  sgemmGflops(n: number, reps: number): number;
}

import type { MetricsBinding } from './metricsTypes.js';
import type { BandedBinding } from './bandedTypes.js';
import type { OnnxModelBinding, SamplerBinding } from './samplerTypes.js';

export type Binding = RidgeBinding & SamplerBinding & MetricsBinding & BandedBinding & OnnxModelBinding;
