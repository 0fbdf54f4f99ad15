import { InvalidArgumentError, ShapeError } from '../errors.js';
import { assertMatrix, type Matrix } from '../matrix.js';
import { nativeJob, nativeSync } from '../native/call.js';
import type { NativeMemoryPlan, NativeRidgeProblem, NativeRidgeResult, NativeRidgeSolver } from '../native/ridgeTypes.js';
import { DEFAULT_ALPHAS, describeNumber } from './alphas.js';
import { assignFolds, shapeFoldSizes } from './folds.js';
import { checkedAtSource } from './modelConsistency.js';
import {
  checkChoice,
  checkFitControl,
  checkInteger,
  checkKnownKeys,
  checkSolverAgrees,
  COMMON_OPTION_KEYS,
  resolveRidgeOptions,
  type RidgeBackend,
  type RidgeCommonOptions,
  type ResolvedRidgeOptions,
} from './options.js';
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

/** One problem of RidgeCV.fitMany: X (samples × features) and Y (samples × targets), and its RidgeCV options. */
export interface RidgeProblem {
  x: Matrix;
  y: Matrix;
  /** As `new RidgeCV(options)` takes them (default: RidgeCV's defaults). */
  options?: RidgeCVOptions;
}

export interface FitManyControl extends FitControl {
  /**
   * Problems fitted at once (each on its own backend instance: on CUDA its own stream and handles, the device's free
   * memory shared between the fits running). Default: as many as the problems, at most 4, when every problem's backend is CUDA ('auto'
   * where CUDA is available); else 1, since on the CPU each fit's BLAS already uses every core.
   */
  concurrency?: number;
}

/** The default concurrency of fitMany on CUDA, at most: 4 problems of 24,980×6,000→1,600 took 5.15 s one by one, 3.74 s at once (H200). */
const CUDA_CONCURRENCY = 4;

/** A RidgeCV's options, validated (`what` names the class, or the problem of fitMany, in errors). */
interface RidgeCVSetup {
  resolved: ResolvedRidgeOptions;
  cvMethod: 'auto' | 'per-fold' | 'exact';
  solver?: RidgeCVOptions['solver'];
}

function ridgeCVSetup(options: RidgeCVOptions, what: string): RidgeCVSetup {
  const resolved = resolveRidgeOptions(options, what, [...COMMON_OPTION_KEYS, 'cvMethod', 'solver']);
  const cvMethod = options.cvMethod === undefined ? 'auto' : checkChoice(options.cvMethod, 'cvMethod', what, ['auto', 'per-fold', 'exact'] as const);
  if (options.solver === undefined) return { resolved, cvMethod };
  const solver = checkChoice(options.solver, 'solver', what, ['per-fold-primal', 'per-fold-kernel', 'exact-primal', 'exact-kernel'] as const);
  checkSolverAgrees(solver, { route: resolved.native.route, cvMethod }, what);
  return { resolved, cvMethod, solver };
}

/** A fit ready for the engine: its arguments and the settings its model records. */
interface PreparedFit {
  problem: NativeRidgeProblem;
  settings: RidgeFitSettings;
}

/** Checks X and Y (errors name `what`) and assigns the folds (errors name `foldsWhat`). */
function prepareFit(s: RidgeCVSetup, x: Matrix, y: Matrix, what: string, foldsWhat: string): PreparedFit {
  assertMatrix(x, `${what}: X`);
  assertMatrix(y, `${what}: Y`);
  if (x.rows === 0 || x.cols === 0) throw new ShapeError(`${what}: X is empty (${x.rows}×${x.cols})`);
  if (y.rows === 0 || y.cols === 0) throw new ShapeError(`${what}: Y is empty (${y.rows}×${y.cols})`);
  if (x.rows !== y.rows) {
    throw new ShapeError(`${what}: X has ${x.rows} samples (rows) but Y has ${y.rows}; they must match`);
  }
  const r = s.resolved;
  const { folds, nFolds, kind } = assignFolds(x.rows, r, foldsWhat);
  return {
    problem: {
      x: x.data,
      n: x.rows,
      p: x.cols,
      y: y.data,
      t: y.cols,
      options: { ...r.native, alphas: r.alphas, folds, nFolds, cvMethod: s.cvMethod, solver: s.solver },
    },
    settings: {
      alphas: Array.from(r.alphas),
      nFolds,
      foldKind: kind,
      score: r.native.score,
      fitIntercept: r.native.fitIntercept,
      standardize: r.native.standardize,
    },
  };
}

function modelOf(res: NativeRidgeResult, fit: PreparedFit): RidgeModel {
  return new RidgeModel(
    checkedAtSource({
      coef: { data: res.coef, rows: res.nFeatures, cols: res.nTargets },
      intercept: res.intercept,
      xMean: res.xMean,
      xScale: res.xScale,
      bestAlphas: res.bestAlphas,
      bestScores: res.bestScores,
      cvScores: { data: res.cvScores, rows: fit.settings.alphas.length, cols: res.nTargets },
      settings: fit.settings,
      info: res.info,
    }),
  );
}

const progressOf = (onProgress: FitControl['onProgress']) => (onProgress ? (fraction: number, stage: string) => onProgress({ fraction, stage }) : undefined);

/** fitMany's default concurrency: CUDA_CONCURRENCY at most when every problem runs on CUDA, else 1. */
function defaultConcurrency(fits: PreparedFit[]): number {
  const named = fits.map((f) => f.problem.options.backend);
  const auto = named.includes('auto') ? nativeSync((b) => b.buildInfo().backends[0]) : undefined;
  const onCuda = named.every((b) => (b === 'auto' ? auto : b) === 'cuda');
  return onCuda ? Math.min(fits.length, CUDA_CONCURRENCY) : 1;
}

/** Multi-target ridge regression with a per-target alpha chosen by K-fold cross-validation. */
export class RidgeCV {
  readonly options: Readonly<RidgeCVOptions>;
  private readonly setup: RidgeCVSetup;

  constructor(options: RidgeCVOptions = {}) {
    this.setup = ridgeCVSetup(options, 'RidgeCV');
    this.options = { ...options, alphas: Array.from(this.setup.resolved.alphas) };
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
    const { resolved: r, cvMethod, solver } = this.setup;
    const { sizes } = shapeFoldSizes(n, r, 'RidgeCV.costModel');
    return nativeSync((b) => b.ridgeCostEstimate(n, p, t, sizes, { ...r.native, alphas: r.alphas, cvMethod, solver }));
  }

  /** Fits X (samples × features) to Y (samples × targets). The arrays are read in place, not copied; do not modify them until the promise settles. */
  async fit(x: Matrix, y: Matrix, control: FitControl = {}): Promise<RidgeModel> {
    checkFitControl(control, 'RidgeCV.fit');
    const fit = prepareFit(this.setup, x, y, 'RidgeCV.fit', 'RidgeCV');
    const { problem: a } = fit;
    const res = await nativeJob('RidgeCV.fit', (b, token) => b.ridgeFit(a.x, a.n, a.p, a.y, a.t, a.options, progressOf(control.onProgress), token), control.signal);
    return modelOf(res, fit);
  }

  /**
   * Fits independent problems (each its own X, Y and options: subjects, regions, feature sets) as one engine job,
   * `concurrency` at a time, each fit as `new RidgeCV(options).fit(x, y)` makes it (the same models, bit for bit).
   * Models come back in the problems' order. Progress is the mean fraction over the problems; the signal stops them
   * all. Every problem is checked before any fit starts, and an error names its problem ('RidgeCV.fitMany problem 2 …'):
   * the first problem that failed, in the problems' order. The arrays are read in place, as fit reads them.
   */
  static async fitMany(problems: readonly RidgeProblem[], control: FitManyControl = {}): Promise<RidgeModel[]> {
    const what = 'RidgeCV.fitMany';
    checkFitControl(control, what, ['concurrency', 'onProgress', 'signal']);
    if (!Array.isArray(problems) || problems.length === 0) {
      throw new InvalidArgumentError(`${what}: problems: expected a non-empty array of { x, y, options? }, got ${describeNumber(problems)}`);
    }
    const fits = problems.map((p: unknown, i) => {
      const label = `${what} problem ${i}`;
      if (p === null || typeof p !== 'object' || Array.isArray(p)) throw new InvalidArgumentError(`${label}: expected an object { x, y, options? }, got ${describeNumber(p)}`);
      checkKnownKeys(p, ['x', 'y', 'options'], label, 'field');
      const { x, y, options } = p as RidgeProblem;
      return prepareFit(ridgeCVSetup(options === undefined ? {} : options, label), x, y, label, label);
    });
    const concurrency = control.concurrency === undefined ? defaultConcurrency(fits) : checkInteger(control.concurrency, 'concurrency', what, 1, 2 ** 31 - 1);
    const res = await nativeJob(
      what,
      (b, token) => b.ridgeFitMany(fits.map((f) => f.problem), Math.min(concurrency, fits.length), progressOf(control.onProgress), token, what),
      control.signal,
    );
    return res.map((r, i) => modelOf(r, fits[i]));
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
