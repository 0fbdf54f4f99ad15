import { BackendUnavailableError, CancelledError, InvalidArgumentError, ShapeError } from '../errors.js';
import { assertMatrix, type Matrix } from '../matrix.js';
import { binding } from '../native/binding.js';
import { fromNative } from '../native/nativeError.js';
import { validateAlphas } from '../ridge/alphas.js';
import { DEFAULT_ALPHAS, type FitControl } from '../ridge/RidgeCV.js';
import { BandedRidgeModel } from './BandedRidgeModel.js';
import { assignFolds, type FoldSpec } from './folds.js';

export interface BandedRidgeCVOptions extends FoldSpec {
  /** The shared alpha grid scored with every γ (> 0). Default: 10 log-spaced from 1e1 to 1e7. */
  alphas?: ArrayLike<number>;
  /** Number of random-search candidates γ (the first is uniform). Default 100 (himalaya). */
  nIter?: number;
  /** Explicit candidates instead of Dirichlet draws: one row of band weights per candidate (normalised to sum 1). */
  gammas?: number[][];
  /** Dirichlet concentrations cycled through by the draws. Default [0.1, 1.0] (himalaya). */
  concentrations?: number[];
  /** Seed of the draws. Default 0. */
  seed?: number;
  /** CV score maximised per target. Default 'r2'. */
  score?: 'r2' | 'pearson';
  /** Centre X and Y (per fold in CV). Default true. */
  fitIntercept?: boolean;
  /** z-score X columns with global statistics. Default false. */
  standardize?: boolean;
  /** 'primal' reuses C = XᵀX, 'kernel' the band kernels XᵢXᵢᵀ; 'auto' picks the cheaper. */
  route?: 'auto' | 'primal' | 'kernel';
  eigPrecision?: 'auto' | 'float32' | 'float64';
  backend?: 'auto' | 'cpu' | 'cuda';
  /** Bytes for per-batch work buffers. Default 2 GiB. */
  memoryBudget?: number;
  targetBatch?: number;
}

/** Feature spaces as named matrices (insertion order = band order) or an array (named band0, band1, …). */
export type FeatureSpaces = Record<string, Matrix> | Matrix[];

/**
 * Banded ridge: one alpha per feature space and target, chosen by K-fold CV over a random search of band
 * weights γ on the simplex (himalaya's BandedRidgeCV, "random_search"), the penalty on space i being α/γᵢ.
 * The engine builds the Grams once and reuses them across γ.
 */
export class BandedRidgeCV {
  readonly options: Readonly<BandedRidgeCVOptions>;

  constructor(options: BandedRidgeCVOptions = {}) {
    validateAlphas(options.alphas ?? DEFAULT_ALPHAS, 'BandedRidgeCV alphas');
    if (options.nIter !== undefined && !(Number.isInteger(options.nIter) && options.nIter >= 1)) {
      throw new InvalidArgumentError(`BandedRidgeCV nIter: expected an integer >= 1, got ${options.nIter}`);
    }
    if (options.score !== undefined && options.score !== 'r2' && options.score !== 'pearson') {
      throw new InvalidArgumentError(`BandedRidgeCV score: expected 'r2' or 'pearson', got '${String(options.score)}'`);
    }
    if (options.seed !== undefined && !(Number.isInteger(options.seed) && options.seed >= 0)) {
      throw new InvalidArgumentError(`BandedRidgeCV seed: expected an integer >= 0, got ${options.seed}`);
    }
    this.options = { ...options, alphas: Array.from(options.alphas ?? DEFAULT_ALPHAS) };
  }

  /** Fits the spaces (each samples × features) jointly to Y (samples × targets). */
  async fit(spaces: FeatureSpaces, y: Matrix, control: FitControl = {}): Promise<BandedRidgeModel> {
    const { names, x, sizes } = concatSpaces(spaces, 'BandedRidgeCV.fit');
    assertMatrix(y, 'BandedRidgeCV.fit: Y');
    if (y.rows === 0 || y.cols === 0) throw new ShapeError(`BandedRidgeCV.fit: Y is empty (${y.rows}×${y.cols})`);
    if (x.rows !== y.rows) throw new ShapeError(`BandedRidgeCV.fit: the feature spaces have ${x.rows} samples (rows) but Y has ${y.rows}; they must match`);
    const o = this.options;
    const native = binding();
    if (o.backend === 'cuda' && !native.buildInfo().cuda) {
      throw new BackendUnavailableError(`BandedRidgeCV: backend 'cuda' requested but ${native.buildInfo().cudaReason}`);
    }
    let gammas: Float64Array | undefined;
    if (o.gammas) {
      if (o.gammas.length === 0 || o.gammas.some((r) => r.length !== names.length)) {
        throw new ShapeError(`BandedRidgeCV: gammas must be rows of ${names.length} band weights (${names.join(', ')})`);
      }
      gammas = Float64Array.from(o.gammas.flat());
    }
    const folds = assignFolds(x.rows, o, 'BandedRidgeCV');
    const alphas = Array.from(o.alphas ?? DEFAULT_ALPHAS);
    if (control.signal?.aborted) throw new CancelledError('BandedRidgeCV.fit: aborted before it started');
    const token = native.createCancelToken();
    const onAbort = () => native.cancel(token);
    control.signal?.addEventListener('abort', onAbort, { once: true });
    const stack = new Error().stack;
    try {
      const r = await native.bandedRidgeFit(
        x.data,
        x.rows,
        x.cols,
        y.data,
        y.cols,
        {
          bandSizes: Float64Array.from(sizes),
          alphas: Float64Array.from(alphas),
          gammas,
          nIter: o.nIter ?? 100,
          concentrations: Float64Array.from(o.concentrations ?? [0.1, 1.0]),
          seed: o.seed ?? 0,
          folds: folds.folds,
          nFolds: folds.nFolds,
          score: o.score ?? 'r2',
          fitIntercept: o.fitIntercept ?? true,
          standardize: o.standardize ?? false,
          route: o.route ?? 'auto',
          eigPrecision: o.eigPrecision ?? 'auto',
          memoryBudget: o.memoryBudget ?? 0,
          targetBatch: o.targetBatch ?? 0,
        },
        control.onProgress ? (fraction, stage) => control.onProgress?.({ fraction, stage }) : undefined,
        token,
      );
      return new BandedRidgeModel({
        bandNames: names,
        bandSizes: sizes,
        coef: { data: r.coef, rows: r.nFeatures, cols: r.nTargets },
        intercept: r.intercept,
        xMean: r.xMean,
        xScale: r.xScale,
        gammas: r.gammas,
        bestGamma: r.bestGamma,
        bestAlpha: r.bestAlpha,
        bestScores: r.bestScores,
        gammaScores: { data: r.gammaScores, rows: r.info.nGammas, cols: r.nTargets },
        alphas,
        score: o.score ?? 'r2',
        foldKind: folds.kind,
        nFolds: folds.nFolds,
        info: r.info,
      });
    } catch (err) {
      throw fromNative(err, stack);
    } finally {
      control.signal?.removeEventListener('abort', onAbort);
    }
  }
}

/** Candidates of the random search: row 0 uniform, then Dirichlet draws (himalaya's recipe), nSamples × nBands. */
export function dirichletGammas(nSamples: number, nBands: number, concentrations: number[] = [0.1, 1.0], seed = 0): number[][] {
  let flat: Float64Array;
  try {
    flat = binding().dirichletGammas(nSamples, nBands, Float64Array.from(concentrations), seed);
  } catch (err) {
    throw fromNative(err);
  }
  return Array.from({ length: nSamples }, (_, i) => Array.from(flat.subarray(i * nBands, (i + 1) * nBands)));
}

/** Joins feature spaces column-wise into one samples × features matrix (bands = consecutive column blocks). */
export function concatSpaces(spaces: FeatureSpaces, what: string): { names: string[]; x: Matrix; sizes: number[] } {
  const entries: [string, Matrix][] = Array.isArray(spaces) ? spaces.map((m, i) => [`band${i}`, m]) : Object.entries(spaces);
  if (entries.length === 0) throw new InvalidArgumentError(`${what}: need at least one feature space`);
  const rows = entries[0][1]?.rows;
  for (const [name, m] of entries) {
    assertMatrix(m, `${what}: feature space '${name}'`);
    if (m.cols === 0) throw new ShapeError(`${what}: feature space '${name}' has no features (${m.rows}×0)`);
    if (m.rows !== rows) {
      throw new ShapeError(`${what}: feature space '${name}' has ${m.rows} samples but '${entries[0][0]}' has ${rows}; every space needs one row per sample`);
    }
  }
  const sizes = entries.map(([, m]) => m.cols);
  const p = sizes.reduce((a, b) => a + b, 0);
  if (entries.length === 1) return { names: [entries[0][0]], x: entries[0][1], sizes };
  const data = new Float32Array(rows * p);
  for (let i = 0; i < rows; i++) {
    let off = i * p;
    for (const [, m] of entries) {
      data.set(m.data.subarray(i * m.cols, (i + 1) * m.cols), off);
      off += m.cols;
    }
  }
  return { names: entries.map(([n]) => n), x: { data, rows, cols: p }, sizes };
}
