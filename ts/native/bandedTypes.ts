/** What native/addon/addon_banded.cpp exports (hand-written, kept in step with it). */
import type { CancelToken } from './engineTypes.js';
import type { NativeMemoryInfo, NativeMemoryPlan, NativeRidgeOptions } from './ridgeTypes.js';

/** RidgeCV's options (less the CV method: banded ridge always scores per fold) plus the bands. */
export interface NativeBandedOptions extends Omit<NativeRidgeOptions, 'cvMethod' | 'solver'> {
  /** 'per-fold-primal' or 'per-fold-kernel'; overrides route. */
  solver?: 'per-fold-primal' | 'per-fold-kernel';
  /** Columns per band (consecutive blocks of X), as doubles. */
  bandSizes: Float64Array;
  /** Candidate γ rows (nGammas × nBands); absent: nIter Dirichlet draws. */
  gammas?: Float64Array;
  nIter: number;
  concentrations: Float64Array;
  seed: number;
}

export interface NativeBandedInfo extends NativeMemoryInfo {
  solver: 'per-fold-primal' | 'per-fold-kernel';
  route: 'primal' | 'kernel';
  eigPrecision: 'float32' | 'float64' | 'mixed';
  backend: string;
  nGammas: number;
  targetBatch: number;
  nBatches: number;
  eigendecompositions: number;
  refitGroups: number;
  /** (candidate γ, target batch) pairs skipped: no alpha above the float32 resolution of their Gram. */
  skippedCandidates: number;
  gemmFlops: number;
  secondsGram: number;
  secondsSearch: number;
  secondsRefit: number;
  secondsTotal: number;
}

export interface NativeBandedResult {
  nFeatures: number;
  nTargets: number;
  nBands: number;
  coef: Float32Array;
  intercept: Float32Array;
  xMean: Float32Array;
  xScale: Float32Array;
  gammas: Float64Array;
  bestGamma: Int32Array;
  bestAlpha: Float32Array;
  bestScores: Float32Array;
  gammaScores: Float32Array;
  info: NativeBandedInfo;
}

export interface BandedBinding {
  bandedRidgeFit(
    x: Float32Array,
    n: number,
    p: number,
    y: Float32Array,
    t: number,
    options: NativeBandedOptions,
    onProgress?: (fraction: number, stage: string) => void,
    cancel?: CancelToken,
  ): Promise<NativeBandedResult>;
  /** The per-fold route a banded fit of this shape would take, its flop model and its memory plan, from its dimensions alone (foldSizes as ridgeCostEstimate's). */
  bandedRidgeCostEstimate(
    n: number,
    p: number,
    t: number,
    foldSizes: Float64Array,
    options: Omit<NativeBandedOptions, 'folds' | 'nFolds'>,
  ): { route: 'per-fold-primal' | 'per-fold-kernel'; flops: number; memory: NativeMemoryPlan };
  dirichletGammas(nSamples: number, nBands: number, concentrations: Float64Array, seed: number): Float64Array;
}
