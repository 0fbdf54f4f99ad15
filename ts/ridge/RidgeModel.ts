import { metadataJson, readSafetensors, writeSafetensors } from '../io/safetensors.js';
import { FormatError, NonFiniteError, ShapeError } from '../errors.js';
import { firstNonFinite, firstNonFiniteSliced } from '../io/finite.js';
import { assertMatrix, type Matrix } from '../matrix.js';
import { nativeJob, nativeSync } from '../native/call.js';
import type { NativeRidgeInfo } from '../native/ridgeTypes.js';
import type { RidgeScore } from './options.js';

export type { RidgeScore };

/** How predict() names X in its errors (a file name, for the CLI), and an AbortSignal for the async form. */
export interface PredictOptions {
  label?: string;
  signal?: AbortSignal;
}

/** How the model was fitted; saved in the safetensors metadata. */
export interface RidgeFitSettings {
  alphas: number[];
  nFolds: number;
  foldKind: 'contiguous' | 'groups' | 'custom';
  score: RidgeScore;
  fitIntercept: boolean;
  standardize: boolean;
}

export interface RidgeModelParts {
  coef: Matrix; // features × targets
  intercept: Float32Array; // targets
  xMean: Float32Array; // features
  xScale: Float32Array; // features
  bestAlphas: Float32Array; // targets
  bestScores: Float32Array; // targets
  cvScores: Matrix; // alphas × targets, mean CV score
  settings: RidgeFitSettings;
  info?: NativeRidgeInfo;
}

function nonFiniteX(x: Matrix, bad: number, label: string): NonFiniteError {
  return new NonFiniteError(`${label} contains ${x.data[bad]} at row ${Math.floor(bad / x.cols)}, column ${bad % x.cols}: inputs must be finite`);
}

export const MODEL_FORMAT = 'brainlatent.ridge';
export const MODEL_VERSION = '1';

/**
 * A fitted multi-target ridge model: predict(X) = ((X − xMean) / xScale) · coef + intercept.
 * Saved as safetensors with tensors coef, intercept, best_alphas, best_scores, cv_scores,
 * x_mean, x_scale and a JSON metadata header.
 */
export class RidgeModel {
  readonly coef: Matrix;
  readonly intercept: Float32Array;
  readonly xMean: Float32Array;
  readonly xScale: Float32Array;
  readonly bestAlphas: Float32Array;
  readonly bestScores: Float32Array;
  readonly cvScores: Matrix;
  readonly settings: RidgeFitSettings;
  readonly info?: NativeRidgeInfo;

  constructor(parts: RidgeModelParts) {
    this.coef = parts.coef;
    this.intercept = parts.intercept;
    this.xMean = parts.xMean;
    this.xScale = parts.xScale;
    this.bestAlphas = parts.bestAlphas;
    this.bestScores = parts.bestScores;
    this.cvScores = parts.cvScores;
    this.settings = parts.settings;
    this.info = parts.info;
  }

  get nFeatures(): number {
    return this.coef.rows;
  }
  get nTargets(): number {
    return this.coef.cols;
  }

  /**
   * Predictions for X (samples × features) as a samples × targets matrix, on the calling thread.
   * A service should use predictAsync, which runs off the event loop.
   */
  predict(x: Matrix, options: PredictOptions = {}): Matrix {
    this.checkX(x, options.label ?? 'predict: X');
    const data = nativeSync((b) => b.ridgePredict(x.data, x.rows, x.cols, this.coef.data, this.nTargets, this.intercept, this.xMean, this.xScale));
    return { data, rows: x.rows, cols: this.nTargets };
  }

  /**
   * predict() on a worker thread: the event loop keeps running while the GEMM does; an AbortSignal stops it between
   * row blocks. X's NaN/Inf check (the same error as predict's) runs in slices of 256 Ki values between which the
   * loop runs, so a large X (30 M values: 40–60 ms in one piece) does not stall it either.
   */
  async predictAsync(x: Matrix, options: PredictOptions = {}): Promise<Matrix> {
    const label = options.label ?? 'predictAsync: X';
    this.checkShape(x, label);
    const bad = await firstNonFiniteSliced(x.data);
    if (bad >= 0) throw nonFiniteX(x, bad, label);
    const data = await nativeJob(
      'RidgeModel.predictAsync',
      (b, token) => b.ridgePredictAsync(x.data, x.rows, x.cols, this.coef.data, this.nTargets, this.intercept, this.xMean, this.xScale, token),
      options.signal,
    );
    return { data, rows: x.rows, cols: this.nTargets };
  }

  private checkX(x: Matrix, label: string): void {
    this.checkShape(x, label);
    const bad = firstNonFinite(x.data);
    if (bad >= 0) throw nonFiniteX(x, bad, label);
  }

  private checkShape(x: Matrix, label: string): void {
    assertMatrix(x, label);
    if (x.cols !== this.nFeatures) {
      throw new ShapeError(`${label} has ${x.cols} features (columns) but the model was fitted on ${this.nFeatures}`);
    }
  }

  async save(path: string): Promise<void> {
    const p = this.nFeatures, t = this.nTargets;
    await writeSafetensors(
      path,
      {
        coef: { data: this.coef.data, shape: [p, t] },
        intercept: { data: this.intercept, shape: [t] },
        best_alphas: { data: this.bestAlphas, shape: [t] },
        best_scores: { data: this.bestScores, shape: [t] },
        cv_scores: { data: this.cvScores.data, shape: [this.cvScores.rows, t] },
        x_mean: { data: this.xMean, shape: [p] },
        x_scale: { data: this.xScale, shape: [p] },
      },
      {
        format: MODEL_FORMAT,
        version: MODEL_VERSION,
        alphas: JSON.stringify(this.settings.alphas),
        folds: JSON.stringify({ n: this.settings.nFolds, kind: this.settings.foldKind }),
        score: this.settings.score,
        fit_intercept: String(this.settings.fitIntercept),
        standardize: String(this.settings.standardize),
        prediction: '((X - x_mean) / x_scale) @ coef + intercept',
        ...(this.info ? { fit_info: JSON.stringify(this.info) } : {}),
      },
    );
  }

  static async load(path: string): Promise<RidgeModel> {
    const f = await readSafetensors(path);
    const m = f.metadata;
    if (m.format !== MODEL_FORMAT) {
      throw new FormatError(`${path}: not a brainlatent ridge model (metadata format '${m.format ?? '(none)'}', expected '${MODEL_FORMAT}')`);
    }
    const get = (name: string): Float32Array => {
      const t = f.tensors[name];
      if (!t) throw new FormatError(`${path}: ridge model is missing tensor '${name}'`);
      if (!(t.data instanceof Float32Array)) throw new FormatError(`${path}: tensor '${name}' must be F32, got ${t.dtype}`);
      return t.data;
    };
    const coefT = f.tensors.coef;
    if (!coefT || coefT.shape.length !== 2) throw new FormatError(`${path}: tensor 'coef' must be 2-D (features × targets)`);
    const [p, t] = coefT.shape;
    const check = (name: string, a: Float32Array, n: number): Float32Array => {
      if (a.length !== n) throw new FormatError(`${path}: tensor '${name}' has ${a.length} elements, expected ${n}`);
      return a;
    };
    // A model whose numbers are not finite, or that divides by a zero scale, would predict NaN.
    for (const name of ['coef', 'intercept', 'x_mean', 'x_scale']) {
      const data = get(name);
      const bad = firstNonFinite(data);
      if (bad >= 0) throw new FormatError(`${path}: tensor '${name}' holds ${data[bad]} at index ${bad}; a ridge model must be finite`);
    }
    const zero = get('x_scale').findIndex((v) => v === 0);
    if (zero >= 0) throw new FormatError(`${path}: tensor 'x_scale' is 0 at index ${zero}; predictions divide by it`);
    const alphas = metadataJson(path, m, 'alphas', '[]') as number[];
    const folds = metadataJson(path, m, 'folds', '{"n":0,"kind":"custom"}') as { n: number; kind: RidgeFitSettings['foldKind'] };
    if (!Array.isArray(alphas) || folds === null || typeof folds !== 'object') {
      throw new FormatError(`${path}: metadata 'alphas' must be a list and 'folds' an object`, { path, field: '__metadata__' });
    }
    const cv = get('cv_scores');
    return new RidgeModel({
      coef: { data: get('coef'), rows: p, cols: t },
      intercept: check('intercept', get('intercept'), t),
      xMean: check('x_mean', get('x_mean'), p),
      xScale: check('x_scale', get('x_scale'), p),
      bestAlphas: check('best_alphas', get('best_alphas'), t),
      bestScores: check('best_scores', get('best_scores'), t),
      cvScores: { data: cv, rows: t > 0 ? cv.length / t : 0, cols: t },
      settings: {
        alphas,
        nFolds: folds.n,
        foldKind: folds.kind,
        score: (m.score as RidgeScore) ?? 'r2',
        fitIntercept: m.fit_intercept === 'true',
        standardize: m.standardize === 'true',
      },
      info: m.fit_info ? (metadataJson(path, m, 'fit_info', '{}') as NativeRidgeInfo) : undefined,
    });
  }
}
