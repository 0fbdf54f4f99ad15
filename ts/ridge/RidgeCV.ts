import { ShapeError } from '../errors.js';
import { assertMatrix, type Matrix } from '../matrix.js';
import { nativeJob, nativeSync } from '../native/call.js';
import type { NativeMemoryPlan, NativeRidgeSolver } from '../native/ridgeTypes.js';
import { DEFAULT_ALPHAS } from './alphas.js';
import { assignFolds, shapeFolds } from './folds.js';
import { checkedAtSource } from './modelConsistency.js';
import { checkChoice, checkFitControl, checkInteger, checkSolverAgrees, COMMON_OPTION_KEYS, resolveRidgeOptions, type RidgeBackend, type RidgeCommonOptions, type ResolvedRidgeOptions } from './options.js';
import { RidgeModel, type RidgeFitSettings } from './RidgeModel.js';

export { DEFAULT_ALPHAS };
export type { RidgeBackend };

export interface RidgeCVOptions extends RidgeCommonOptions {
  /** 'per-fold' (one decomposition per fold) or 'exact' (one in all, closed-form CV); 'auto' picks the cheaper. */
  cvMethod?: 'auto' | 'per-fold' | 'exact';
  /**
   * One of the engine's routes by name, `<cvMethod>-<route>` (for tests and benchmarks). A route or cvMethod given
   * beside it must be 'auto' or agree with it ('exact-kernel' with route 'primal' is refused, naming both).
   */
  solver?: 'per-fold-primal' | 'per-fold-kernel' | 'exact-primal' | 'exact-kernel';
}

export interface RidgeProgress {
  fraction: number;
  stage: string;
}

export interface FitControl {
  /** Progress events, all delivered before the fit's promise settles. */
  onProgress?: (p: RidgeProgress) => void;
  /** Stops the fit within one of the engine's large operations (a decomposition, a GEMM). */
  signal?: AbortSignal;
}

/** Multi-target ridge regression with a per-target alpha chosen by K-fold cross-validation. */
export class RidgeCV {
  readonly options: Readonly<RidgeCVOptions>;
  private readonly resolved: ResolvedRidgeOptions;
  private readonly cvMethod: 'auto' | 'per-fold' | 'exact';
  private readonly solver?: RidgeCVOptions['solver'];

  constructor(options: RidgeCVOptions = {}) {
    this.resolved = resolveRidgeOptions(options, 'RidgeCV', [...COMMON_OPTION_KEYS, 'cvMethod', 'solver']);
    this.cvMethod = options.cvMethod === undefined ? 'auto' : checkChoice(options.cvMethod, 'cvMethod', 'RidgeCV', ['auto', 'per-fold', 'exact'] as const);
    if (options.solver !== undefined) {
      this.solver = checkChoice(options.solver, 'solver', 'RidgeCV', ['per-fold-primal', 'per-fold-kernel', 'exact-primal', 'exact-kernel'] as const);
      checkSolverAgrees(this.solver, { route: this.resolved.native.route, cvMethod: this.cvMethod }, 'RidgeCV');
    }
    this.options = { ...options, alphas: Array.from(this.resolved.alphas) };
  }

  /**
   * The engine's flop model (GEMM flops, eigensolves as GEMM-time equivalents) of the route this fit would take at
   * `rows` samples × `cols` features → `targets` targets, from the dimensions alone: how estimates scale a small
   * probe fit to the real shape (its cost is quadratic or cubic in the samples on the kernel routes). And its memory
   * plan under memoryBudget (NativeMemoryPlan): the fixed part, bytes per target, the target batches and whether the
   * fit would be refused for its budget, before any data is read. The folds are those of groups or foldIndex when
   * they label `rows` samples (the fit's own), else as many contiguous folds (their sizes can differ by a few samples
   * from grouped ones, and the route's buffers with them).
   */
  costModel(rows: number, cols: number, targets: number): { route: NativeRidgeSolver; flops: number; memory: NativeMemoryPlan } {
    const [n, p, t] = ([['rows', rows], ['cols', cols], ['targets', targets]] as const).map(([name, v]) => checkInteger(v, name, 'RidgeCV.costModel', 1));
    const r = this.resolved;
    const { folds, nFolds } = shapeFolds(n, r, 'RidgeCV.costModel');
    return nativeSync((b) => b.ridgeCostEstimate(n, p, t, { ...r.native, alphas: r.alphas, folds, nFolds, cvMethod: this.cvMethod, solver: this.solver }));
  }

  /** Fits X (samples × features) to Y (samples × targets). The arrays are read in place, not copied; do not modify them until the promise settles. */
  async fit(x: Matrix, y: Matrix, control: FitControl = {}): Promise<RidgeModel> {
    checkFitControl(control, 'RidgeCV.fit');
    assertMatrix(x, 'RidgeCV.fit: X');
    assertMatrix(y, 'RidgeCV.fit: Y');
    if (x.rows === 0 || x.cols === 0) throw new ShapeError(`RidgeCV.fit: X is empty (${x.rows}×${x.cols})`);
    if (y.rows === 0 || y.cols === 0) throw new ShapeError(`RidgeCV.fit: Y is empty (${y.rows}×${y.cols})`);
    if (x.rows !== y.rows) {
      throw new ShapeError(`RidgeCV.fit: X has ${x.rows} samples (rows) but Y has ${y.rows}; they must match`);
    }
    const r = this.resolved;
    const { folds, nFolds, kind } = assignFolds(x.rows, r, 'RidgeCV');
    const settings: RidgeFitSettings = {
      alphas: Array.from(r.alphas),
      nFolds,
      foldKind: kind,
      score: r.native.score,
      fitIntercept: r.native.fitIntercept,
      standardize: r.native.standardize,
    };
    const onProgress = control.onProgress;
    const res = await nativeJob(
      'RidgeCV.fit',
      (b, token) =>
        b.ridgeFit(
          x.data,
          x.rows,
          x.cols,
          y.data,
          y.cols,
          { ...r.native, alphas: r.alphas, folds, nFolds, cvMethod: this.cvMethod, solver: this.solver },
          onProgress ? (fraction, stage) => onProgress({ fraction, stage }) : undefined,
          token,
        ),
      control.signal,
    );
    return new RidgeModel(
      checkedAtSource({
        coef: { data: res.coef, rows: res.nFeatures, cols: res.nTargets },
        intercept: res.intercept,
        xMean: res.xMean,
        xScale: res.xScale,
        bestAlphas: res.bestAlphas,
        bestScores: res.bestScores,
        cvScores: { data: res.cvScores, rows: r.alphas.length, cols: res.nTargets },
        settings,
        info: res.info,
      }),
    );
  }
}

/** The most threads setThreads takes (the engine's own cap: a larger count was clamped to it in silence). */
export const MAX_ENGINE_THREADS = 4096;

/**
 * Sets the engine's thread count (BLAS and its own loops); 0 means all cores. Returns the count in use. A count
 * that is not an integer from 0 to MAX_ENGINE_THREADS (4096) is refused (InvalidArgumentError).
 */
export function setThreads(n: number): number {
  const threads = checkInteger(n, 'threads', 'setThreads', 0, MAX_ENGINE_THREADS);
  return nativeSync((b) => b.setThreads(threads));
}
