import { InvalidArgumentError, ShapeError } from '../errors.js';
import { assertMatrix, type Matrix } from '../matrix.js';
import { nativeJob, nativeSync } from '../native/call.js';
import type { NativeBandedOptions } from '../native/bandedTypes.js';
import type { NativeMemoryPlan } from '../native/ridgeTypes.js';
import { BandedRidgeModel } from './BandedRidgeModel.js';
import { checkedAtSource } from './modelConsistency.js';
import { describeNumber } from './alphas.js';
import { concatSpaces, type FeatureSpaces } from './featureSpaces.js';
import { assignFolds, shapeFoldSizes } from './folds.js';
import { checkChoice, checkFitControl, checkInteger, checkPositive, checkSolverAgrees, COMMON_OPTION_KEYS, MAX_N_ITER, resolveRidgeOptions, type RidgeCommonOptions, type ResolvedRidgeOptions } from './options.js';
import type { FitControl } from './RidgeCV.js';

export type { FeatureSpaces };

export interface BandedRidgeCVOptions extends RidgeCommonOptions {
  /** Number of random-search candidates γ (the first is uniform). Default 100 (himalaya). Refused together with gammas. */
  nIter?: number;
  /**
   * Explicit candidates instead of Dirichlet draws: one row of band weights per candidate (normalised to sum 1).
   * The search is these rows, so the options of the draws (nIter, concentrations, seed) are refused beside it.
   */
  gammas?: number[][];
  /** Dirichlet concentrations cycled through by the draws. Default [0.1, 1.0] (himalaya). Refused together with gammas. */
  concentrations?: number[];
  /** Seed of the draws. Default 0. Refused together with gammas. */
  seed?: number;
  /**
   * 'per-fold-primal' reuses C = XᵀX, 'per-fold-kernel' the band kernels XᵢXᵢᵀ. A route given beside it must be
   * 'auto' or agree with it ('per-fold-kernel' with route 'primal' is refused, naming both).
   */
  solver?: 'per-fold-primal' | 'per-fold-kernel';
}

/**
 * Explicit candidates γ, checked once here (a negative weight was accepted and refused only by the fit): rows of
 * one length, of finite weights >= 0 with a positive sum (each is normalised to sum 1). Their length is checked
 * against the feature spaces at fit. Returns a copy.
 */
function checkGammaRows(rows: number[][], what: string): number[][] {
  const bands = rows[0].length;
  rows.forEach((row, r) => {
    if (row.length === 0) throw new ShapeError(`${what} gammas: row ${r} is empty; a row holds one weight per feature space`);
    if (row.length !== bands) {
      throw new ShapeError(`${what} gammas: row ${r} has ${row.length} band weights but row 0 has ${bands}; every row weighs the same feature spaces`);
    }
    row.forEach((g, b) => {
      if (typeof g !== 'number' || !Number.isFinite(g) || g < 0) {
        throw new InvalidArgumentError(`${what} gammas[${r}][${b}]: expected a finite band weight >= 0, got ${describeNumber(g)}`);
      }
    });
    if (!row.some((g) => g > 0)) throw new InvalidArgumentError(`${what} gammas[${r}]: every weight is 0; a row needs a positive one (rows are normalised to sum 1)`);
  });
  return rows.map((row) => [...row]);
}

/**
 * Banded ridge: one alpha per feature space and target, chosen by K-fold CV over a random search of band
 * weights γ on the simplex (himalaya's BandedRidgeCV, "random_search"), the penalty on space i being α/γᵢ.
 * The engine builds the Grams once and reuses them across γ.
 */
export class BandedRidgeCV {
  readonly options: Readonly<BandedRidgeCVOptions>;
  private readonly resolved: ResolvedRidgeOptions;
  private readonly gammas?: number[][];

  constructor(options: BandedRidgeCVOptions = {}) {
    const what = 'BandedRidgeCV';
    this.resolved = resolveRidgeOptions(options, what, [...COMMON_OPTION_KEYS, 'nIter', 'gammas', 'concentrations', 'seed', 'solver']);
    if (options.nIter !== undefined) checkInteger(options.nIter, 'nIter', what, 1, MAX_N_ITER);
    // the engine takes seeds up to 2^53; above MAX_SAFE_INTEGER two seeds can be the same number
    if (options.seed !== undefined) checkInteger(options.seed, 'seed', what, 0, Number.MAX_SAFE_INTEGER);
    if (options.concentrations !== undefined) {
      if (!Array.isArray(options.concentrations) || options.concentrations.length === 0) {
        throw new InvalidArgumentError(`${what} concentrations: expected a non-empty array of numbers > 0`);
      }
      options.concentrations.forEach((c, i) => checkPositive(c, `concentrations[${i}]`, what));
    }
    if (options.gammas !== undefined) {
      if (!Array.isArray(options.gammas) || options.gammas.length === 0 || options.gammas.some((r) => !Array.isArray(r))) {
        throw new InvalidArgumentError(`${what} gammas: expected rows of band weights (number[][])`);
      }
      // the rows are the search: the draws' options would be ignored in silence (nIter 5 searched one candidate)
      for (const name of ['nIter', 'concentrations', 'seed'] as const) {
        if (options[name] !== undefined) {
          throw new InvalidArgumentError(
            `${what}: gammas and ${name} were both given; gammas lists the candidates (${options.gammas.length} here) in place of the Dirichlet draws that ${name} configures, so ${name} would be ignored: give one of them`,
          );
        }
      }
      this.gammas = checkGammaRows(options.gammas, what);
    }
    if (options.solver !== undefined) {
      checkSolverAgrees(checkChoice(options.solver, 'solver', what, ['per-fold-primal', 'per-fold-kernel'] as const), { route: this.resolved.native.route }, what);
    }
    // (the arrays as checked, copied: the caller's changed after the constructor would reach the fit unchecked)
    this.options = { ...options, alphas: Array.from(this.resolved.alphas), ...(options.concentrations ? { concentrations: [...options.concentrations] } : {}) };
  }

  /**
   * The engine's flop model and memory plan of this fit at `rows` samples × feature spaces of `bandSizes` columns
   * (in order) → `targets` targets, from the dimensions alone, as RidgeCV.costModel gives RidgeCV's: the per-fold
   * route the fit would take (the one named, else the cheaper by the flop models, every candidate γ counted), and
   * its plan under memoryBudget (the band kernels, the refit's buffers and the target batches), before any data is
   * read. The folds are as RidgeCV.costModel's.
   */
  costModel(rows: number, bandSizes: readonly number[], targets: number): { route: 'per-fold-primal' | 'per-fold-kernel'; flops: number; memory: NativeMemoryPlan } {
    const what = 'BandedRidgeCV.costModel';
    const n = checkInteger(rows, 'rows', what, 1), t = checkInteger(targets, 'targets', what, 1);
    if (!Array.isArray(bandSizes) || bandSizes.length === 0) throw new InvalidArgumentError(`${what} bandSizes: expected the columns of each feature space (a non-empty array of integers >= 1)`);
    const sizes = bandSizes.map((w, i) => checkInteger(w, `bandSizes[${i}]`, what, 1));
    let gammas: Float64Array | undefined;
    if (this.gammas) {
      if (this.gammas.some((row) => row.length !== sizes.length)) throw new ShapeError(`${what}: gammas must be rows of ${sizes.length} band weights, one per entry of bandSizes`);
      gammas = Float64Array.from(this.gammas.flat());
    }
    const p = sizes.reduce((a, w) => a + w, 0);
    return nativeSync((b) => b.bandedRidgeCostEstimate(n, p, t, shapeFoldSizes(n, this.resolved, what).sizes, this.nativeOptions(sizes, gammas)));
  }

  /** The engine's options of a fit of these bands (column counts), but its folds. */
  private nativeOptions(sizes: readonly number[], gammas: Float64Array | undefined): Omit<NativeBandedOptions, 'folds' | 'nFolds'> {
    const o = this.options;
    const r = this.resolved;
    return {
      ...r.native,
      bandSizes: Float64Array.from(sizes),
      alphas: r.alphas,
      gammas,
      nIter: o.nIter ?? 100,
      concentrations: Float64Array.from(o.concentrations ?? [0.1, 1.0]),
      seed: o.seed ?? 0,
      solver: o.solver,
    };
  }

  /** Fits the spaces (each samples × features) jointly to Y (samples × targets). */
  async fit(spaces: FeatureSpaces, y: Matrix, control: FitControl = {}): Promise<BandedRidgeModel> {
    checkFitControl(control, 'BandedRidgeCV.fit');
    const { names, x, sizes } = concatSpaces(spaces, 'BandedRidgeCV.fit');
    assertMatrix(y, 'BandedRidgeCV.fit: Y');
    if (y.rows === 0 || y.cols === 0) throw new ShapeError(`BandedRidgeCV.fit: Y is empty (${y.rows}×${y.cols})`);
    if (x.rows !== y.rows) throw new ShapeError(`BandedRidgeCV.fit: the feature spaces have ${x.rows} samples (rows) but Y has ${y.rows}; they must match`);
    const o = this.options;
    const r = this.resolved;
    let gammas: Float64Array | undefined;
    if (this.gammas) {
      if (this.gammas.some((row) => row.length !== names.length)) {
        throw new ShapeError(`BandedRidgeCV: gammas must be rows of ${names.length} band weights (${names.join(', ')})`);
      }
      gammas = Float64Array.from(this.gammas.flat());
    }
    const folds = assignFolds(x.rows, r, 'BandedRidgeCV');
    const onProgress = control.onProgress;
    const res = await nativeJob(
      'BandedRidgeCV.fit',
      (b, token) =>
        b.bandedRidgeFit(
          x.data,
          x.rows,
          x.cols,
          y.data,
          y.cols,
          { ...this.nativeOptions(sizes, gammas), folds: folds.folds, nFolds: folds.nFolds },
          onProgress ? (fraction, stage) => onProgress({ fraction, stage }) : undefined,
          token,
        ),
      control.signal,
    );
    return new BandedRidgeModel(
      checkedAtSource({
        bandNames: names,
        bandSizes: sizes,
        coef: { data: res.coef, rows: res.nFeatures, cols: res.nTargets },
        intercept: res.intercept,
        xMean: res.xMean,
        xScale: res.xScale,
        gammas: res.gammas,
        bestGamma: res.bestGamma,
        bestAlpha: res.bestAlpha,
        bestScores: res.bestScores,
        gammaScores: { data: res.gammaScores, rows: res.info.nGammas, cols: res.nTargets },
        alphas: Array.from(r.alphas),
        score: r.native.score,
        foldKind: folds.kind,
        nFolds: folds.nFolds,
        fitIntercept: r.native.fitIntercept,
        standardize: r.native.standardize,
        info: res.info,
      }),
    );
  }
}

/** Candidates of the random search: row 0 uniform, then Dirichlet draws (himalaya's recipe), nSamples × nBands. */
export function dirichletGammas(nSamples: number, nBands: number, concentrations: number[] = [0.1, 1.0], seed = 0): number[][] {
  const what = 'dirichletGammas';
  checkInteger(nSamples, 'nSamples', what, 1);
  checkInteger(nBands, 'nBands', what, 1);
  checkInteger(seed, 'seed', what, 0, Number.MAX_SAFE_INTEGER);
  if (!Array.isArray(concentrations) || concentrations.length === 0) throw new InvalidArgumentError(`${what} concentrations: expected a non-empty array of numbers > 0`);
  concentrations.forEach((c, i) => checkPositive(c, `concentrations[${i}]`, what));
  const flat = nativeSync((b) => b.dirichletGammas(nSamples, nBands, Float64Array.from(concentrations), seed));
  return Array.from({ length: nSamples }, (_, i) => Array.from(flat.subarray(i * nBands, (i + 1) * nBands)));
}

