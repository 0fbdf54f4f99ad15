import { BackendUnavailableError, CancelledError, InvalidArgumentError, ShapeError } from '../errors.js';
import { assertMatrix, type Matrix } from '../matrix.js';
import { binding } from '../native/binding.js';
import { fromNative } from '../native/nativeError.js';
import { validateAlphas } from './alphas.js';
import { RidgeModel, type RidgeFitSettings, type RidgeScore } from './RidgeModel.js';

export type RidgeBackend = 'auto' | 'cpu' | 'cuda';

export interface RidgeCVOptions {
  /** Candidate regularisation strengths (> 0). Default: 10 log-spaced from 1e1 to 1e7. */
  alphas?: ArrayLike<number>;
  /** Number of contiguous folds (scikit-learn KFold without shuffling). Default 5. */
  folds?: number;
  /**
   * A group label per sample (e.g. the image id of each trial): all samples of a group stay in
   * one fold, so repetitions of an image never leak between training and validation.
   */
  groups?: ArrayLike<number>;
  /** Explicit fold index (0..k-1) per sample; overrides folds/groups. */
  foldIndex?: ArrayLike<number>;
  /** CV score maximised per target. Default 'r2'. */
  score?: RidgeScore;
  /** Centre X and Y with training means (an unpenalised intercept). Default true. */
  fitIntercept?: boolean;
  /** z-score X columns with training statistics, stored in the model. Default false. */
  standardize?: boolean;
  backend?: RidgeBackend;
  /** Decompose XᵀX ('primal') or XXᵀ ('kernel'); 'auto' picks the cheaper. */
  route?: 'auto' | 'primal' | 'kernel';
  /** 'per-fold' (one decomposition per fold) or 'exact' (one in all, closed-form CV); 'auto' picks the cheaper. */
  cvMethod?: 'auto' | 'per-fold' | 'exact';
  /** Precision of the eigendecompositions; 'auto' uses float64 only when the smallest alpha needs it. */
  eigPrecision?: 'auto' | 'float32' | 'float64';
  /** Bytes for per-batch work buffers (targets are processed in batches that fit). Default 2 GiB. */
  memoryBudget?: number;
  /** Fix the number of targets per batch (overrides memoryBudget). */
  targetBatch?: number;
}

export interface RidgeProgress {
  fraction: number;
  stage: string;
}

export interface FitControl {
  onProgress?: (p: RidgeProgress) => void;
  signal?: AbortSignal;
}

export const DEFAULT_ALPHAS: readonly number[] = Array.from({ length: 10 }, (_, i) => 10 ** (1 + (6 * i) / 9));

/** Multi-target ridge regression with a per-target alpha chosen by K-fold cross-validation. */
export class RidgeCV {
  readonly options: Readonly<RidgeCVOptions>;

  constructor(options: RidgeCVOptions = {}) {
    const alphas = options.alphas ?? DEFAULT_ALPHAS;
    validateAlphas(alphas, 'RidgeCV alphas');
    if (options.folds !== undefined && (!Number.isInteger(options.folds) || options.folds < 2)) {
      throw new InvalidArgumentError(`RidgeCV folds: expected an integer >= 2, got ${options.folds}`);
    }
    if (options.score !== undefined && options.score !== 'r2' && options.score !== 'pearson') {
      throw new InvalidArgumentError(`RidgeCV score: expected 'r2' or 'pearson', got '${String(options.score)}'`);
    }
    const backend = options.backend ?? 'auto';
    if (backend !== 'auto' && backend !== 'cpu' && backend !== 'cuda') {
      throw new InvalidArgumentError(`RidgeCV backend: expected 'auto', 'cpu' or 'cuda', got '${String(backend)}'`);
    }
    this.options = { ...options, alphas: Array.from(alphas) };
  }

  /** Fits X (samples × features) to Y (samples × targets). The arrays are read in place, not copied; do not modify them until the promise settles. */
  async fit(x: Matrix, y: Matrix, control: FitControl = {}): Promise<RidgeModel> {
    assertMatrix(x, 'RidgeCV.fit: X');
    assertMatrix(y, 'RidgeCV.fit: Y');
    if (x.rows === 0 || x.cols === 0) throw new ShapeError(`RidgeCV.fit: X is empty (${x.rows}×${x.cols})`);
    if (y.rows === 0 || y.cols === 0) throw new ShapeError(`RidgeCV.fit: Y is empty (${y.rows}×${y.cols})`);
    if (x.rows !== y.rows) {
      throw new ShapeError(`RidgeCV.fit: X has ${x.rows} samples (rows) but Y has ${y.rows}; they must match`);
    }
    const o = this.options;
    const backend = o.backend ?? 'auto';
    const native = binding();
    if (backend === 'cuda' && !native.buildInfo().cuda) {
      throw new BackendUnavailableError(`RidgeCV: backend 'cuda' requested but ${native.buildInfo().cudaReason}`);
    }
    const { folds, nFolds, kind } = this.foldAssignment(x.rows);
    const settings: RidgeFitSettings = {
      alphas: Array.from(o.alphas ?? DEFAULT_ALPHAS),
      nFolds,
      foldKind: kind,
      score: o.score ?? 'r2',
      fitIntercept: o.fitIntercept ?? true,
      standardize: o.standardize ?? false,
    };
    if (control.signal?.aborted) throw new CancelledError('RidgeCV.fit: aborted before it started');
    const token = native.createCancelToken();
    const onAbort = () => native.cancel(token);
    control.signal?.addEventListener('abort', onAbort, { once: true });
    const stack = new Error().stack;
    try {
      const r = await native.ridgeFit(
        x.data,
        x.rows,
        x.cols,
        y.data,
        y.cols,
        {
          alphas: Float64Array.from(settings.alphas),
          folds,
          nFolds,
          score: settings.score,
          fitIntercept: settings.fitIntercept,
          standardize: settings.standardize,
          route: o.route ?? 'auto',
          cvMethod: o.cvMethod ?? 'auto',
          eigPrecision: o.eigPrecision ?? 'auto',
          memoryBudget: o.memoryBudget ?? 0,
          targetBatch: o.targetBatch ?? 0,
        },
        control.onProgress ? (fraction, stage) => control.onProgress?.({ fraction, stage }) : undefined,
        token,
      );
      return new RidgeModel({
        coef: { data: r.coef, rows: r.nFeatures, cols: r.nTargets },
        intercept: r.intercept,
        xMean: r.xMean,
        xScale: r.xScale,
        bestAlphas: r.bestAlphas,
        bestScores: r.bestScores,
        cvScores: { data: r.cvScores, rows: settings.alphas.length, cols: r.nTargets },
        settings,
        info: r.info,
      });
    } catch (err) {
      throw fromNative(err, stack);
    } finally {
      control.signal?.removeEventListener('abort', onAbort);
    }
  }

  private foldAssignment(n: number): { folds: Int32Array; nFolds: number; kind: RidgeFitSettings['foldKind'] } {
    const o = this.options;
    const native = binding();
    if (o.foldIndex !== undefined) {
      if (o.foldIndex.length !== n) {
        throw new ShapeError(`RidgeCV: foldIndex has ${o.foldIndex.length} entries for ${n} samples`);
      }
      const folds = Int32Array.from(o.foldIndex);
      let k = 0;
      for (const f of folds) {
        if (f < 0) throw new InvalidArgumentError(`RidgeCV: foldIndex values must be >= 0, got ${f}`);
        k = Math.max(k, f + 1);
      }
      return { folds, nFolds: k, kind: 'custom' };
    }
    const k = o.folds ?? 5;
    if (k > n) throw new InvalidArgumentError(`RidgeCV: ${k} folds but only ${n} samples`);
    if (o.groups !== undefined) {
      if (o.groups.length !== n) {
        throw new ShapeError(`RidgeCV: groups has ${o.groups.length} entries but X has ${n} samples; one group label per sample is expected`);
      }
      const groups = Int32Array.from(o.groups);
      try {
        return { folds: native.groupFolds(groups, k), nFolds: k, kind: 'groups' };
      } catch (err) {
        throw fromNative(err);
      }
    }
    return { folds: native.contiguousFolds(n, k), nFolds: k, kind: 'contiguous' };
  }
}

/** Sets the engine's thread count (BLAS and its own loops); 0 means all cores. Returns the count in use. */
export function setThreads(n: number): number {
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`setThreads: expected an integer >= 0, got ${n}`);
  return binding().setThreads(n);
}
