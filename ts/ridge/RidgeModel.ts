import { metadataJson, readSafetensors, type SafetensorsTensor, writeSafetensors } from '../io/safetensors.js';
import { predictionArray } from './predictionArray.js';
import { FormatError, InvalidArgumentError, ShapeError } from '../errors.js';
import { assertFiniteMatrix } from '../io/finite.js';
import { assertMatrix, type Matrix } from '../matrix.js';
import { abortedBeforeStart, nativeJob, nativeSync } from '../native/call.js';
import { engineOutput } from '../native/heldInputs.js';
import type { NativeRidgeInfo } from '../native/ridgeTypes.js';
import { checkFormatVersion, ModelFile } from './modelFile.js';
import { describeNumber } from './alphas.js';
import { alphaRows, checkBestScores, checkedAtSource, checkInGrid, checkPredictionValues, checkPreprocessing, partNames, wasCheckedAtSource } from './modelConsistency.js';
import { checkAlphaList, checkPartMatrix, checkPartsObject, checkPredictionParts, checkVector, FOLD_KINDS } from './modelParts.js';
import { checkBoolean, checkChoice, checkInteger, checkKnownKeys, checkPredictOptions, type RidgeScore } from './options.js';

export type { RidgeScore };

/** How predict() names X in its errors (a file name, for the CLI), and an AbortSignal (sync predict honours one aborted before it starts; predictAsync one aborted at any time). */
export interface PredictOptions {
  label?: string;
  signal?: AbortSignal;
}

/** A prediction's progress: the fraction of its output computed (stage 'predict'). */
export interface PredictProgress {
  fraction: number;
  stage: 'predict';
}

/** predictAsync's options: predict's, and progress events after each of the engine's GEMMs, all delivered before its promise settles. */
export interface PredictAsyncOptions extends PredictOptions {
  onProgress?: (p: PredictProgress) => void;
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

const PARTS = ['coef', 'intercept', 'xMean', 'xScale', 'bestAlphas', 'bestScores', 'cvScores', 'settings'] as const;
const SETTINGS = ['alphas', 'nFolds', 'foldKind', 'score', 'fitIntercept', 'standardize'] as const;

const NAMES = partNames('RidgeModel', 'ridge model', {
  coef: 'coef',
  intercept: 'intercept',
  xMean: 'xMean',
  xScale: 'xScale',
  gammas: 'gammas',
  bestAlphas: 'bestAlphas',
  bestScores: 'bestScores',
  scoreTable: 'cvScores',
  chosen: 'bestAlphas',
  alphas: 'settings.alphas',
  fitIntercept: 'settings.fitIntercept',
  standardize: 'settings.standardize',
});

/**
 * RidgeModel's parts, checked once, at its constructor: each part's type and size (modelParts.ts), then the numbers
 * against each other as load() checks a file's (modelConsistency.ts), unless load() did so naming the file's tensors.
 */
function checkRidgeParts(parts: unknown): void {
  const what = 'RidgeModel';
  const record = checkPartsObject(parts, what, PARTS, ['info']);
  const { p, t } = checkPredictionParts(record, what);
  for (const name of ['bestAlphas', 'bestScores']) checkVector(record[name], name, what, Float32Array, t, `one per target: coef is ${p}×${t}, features × targets`);
  const alphas = checkSettings(record.settings, what);
  checkPartMatrix(record.cvScores, 'cvScores', what, { rows: alphas, cols: t, shape: 'one row per alpha of settings.alphas, one column per target' });
  if (wasCheckedAtSource(record)) return;
  const m = record as unknown as RidgeModelParts;
  checkPredictionValues(m, NAMES);
  checkPreprocessing(m, m.settings, NAMES);
  checkInGrid(m.bestAlphas, m.settings.alphas, NAMES);
  checkBestScores(m.bestScores, m.cvScores, { values: m.bestAlphas, rows: alphaRows(m.settings.alphas, m.bestAlphas) }, NAMES);
}

/** The fit's settings (saved in the file's metadata); returns the number of alphas. */
function checkSettings(value: unknown, what: string): number {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidArgumentError(`${what} settings: expected an object { ${SETTINGS.join(', ')} }, got ${describeNumber(value)}`);
  }
  checkKnownKeys(value, SETTINGS, `${what} settings`, 'setting');
  const s = value as Record<string, unknown>;
  checkAlphaList(s.alphas, 'settings.alphas', what);
  checkInteger(s.nFolds, 'settings.nFolds', what, 0);
  checkChoice(s.foldKind, 'settings.foldKind', what, FOLD_KINDS);
  checkChoice(s.score, 'settings.score', what, ['r2', 'pearson'] as const);
  checkBoolean(s.fitIntercept, 'settings.fitIntercept', what);
  checkBoolean(s.standardize, 'settings.standardize', what);
  return (s.alphas as number[]).length;
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

  /**
   * Checks the parts as load() checks a file (InvalidArgumentError: missing or of the wrong type, or numbers that
   * contradict each other; ShapeError: not sized to coef; NonFiniteError: NaN or ±Inf in coef, intercept, xMean, xScale).
   */
  constructor(parts: RidgeModelParts) {
    checkRidgeParts(parts);
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
   * A service should use predictAsync, which runs off the event loop. A `signal` already aborted throws a
   * CancelledError (its cause the signal's reason), as predictAsync rejects; once started, predict runs to its end —
   * it holds the thread, so no abort can reach it meanwhile (predictAsync stops between its tiles).
   */
  predict(x: Matrix, options: PredictOptions = {}): Matrix {
    checkPredictOptions(options, 'RidgeModel.predict');
    this.checkX(x, options.label ?? 'predict: X');
    if (options.signal?.aborted) throw abortedBeforeStart('RidgeModel.predict', options.signal);
    const out = predictionArray(x.rows, this.nTargets, 'RidgeModel.predict');
    const data = nativeSync((b) => b.ridgePredict(x.data, x.rows, x.cols, this.coef.data, this.nTargets, this.intercept, this.xMean, this.xScale, out));
    return { data, rows: x.rows, cols: this.nTargets };
  }

  /**
   * predict() on one of the engine's job threads: the event loop keeps running while the GEMMs do. The engine computes the output in
   * tiles of rows × targets, one GEMM of at most ~8 GFLOP each (a fraction of a second), reporting `onProgress` after
   * each; an AbortSignal stops it before its next tile (CancelledError), and one that fires after the last but before
   * the promise settles rejects it all the same (no result for a cancelled call). X's NaN/Inf check (the same error as
   * predict's) runs in the engine's job too, so a large X (30 M values: 40–60 ms on the JS thread) does not stall the
   * loop, and the call enters the engine's queue when it is made, in call order (awaiting a check on the JS thread
   * first let fits called later queue ahead of it: reviewer s24-R5's ord2.mjs).
   */
  async predictAsync(x: Matrix, options: PredictAsyncOptions = {}): Promise<Matrix> {
    checkPredictOptions(options, 'RidgeModel.predictAsync', 'async');
    const label = options.label ?? 'predictAsync: X';
    this.checkShape(x, label);
    const onProgress = options.onProgress;
    // (the engine's to fill, then the caller's: not marked untransferable as the inputs are, native/heldInputs.ts)
    const out = engineOutput(predictionArray(x.rows, this.nTargets, 'RidgeModel.predictAsync'));
    const data = await nativeJob(
      'RidgeModel.predictAsync',
      (b, token) =>
        b.ridgePredictAsync(
          x.data,
          x.rows,
          x.cols,
          this.coef.data,
          this.nTargets,
          this.intercept,
          this.xMean,
          this.xScale,
          out,
          onProgress ? (fraction) => onProgress({ fraction, stage: 'predict' }) : undefined,
          token,
          label,
        ),
      options.signal,
    );
    return { data, rows: x.rows, cols: this.nTargets };
  }

  private checkX(x: Matrix, label: string): void {
    this.checkShape(x, label);
    assertFiniteMatrix(x, label);
  }

  private checkShape(x: Matrix, label: string): void {
    assertMatrix(x, label);
    if (x.cols !== this.nFeatures) {
      throw new ShapeError(`${label} has ${x.cols} features (columns) but the model was fitted on ${this.nFeatures}`);
    }
  }

  async save(path: string): Promise<void> {
    const { tensors, metadata } = ridgeModelFile(this);
    await writeSafetensors(path, tensors, metadata);
  }

  /**
   * Reads a model save() wrote (or a file of the same layout). A file that contradicts itself is refused, a
   * FormatError naming it and the tensor or metadata key: tensors missing, of another dtype or size, not finite, a
   * zero x_scale; metadata out of its range; a best alpha not in the grid, a best score not the largest CV score of
   * its target (or not its alpha's); and x_mean or intercept not 0 under fit_intercept 'false', x_scale not 1 under
   * standardize 'false'.
   */
  static async load(path: string): Promise<RidgeModel> {
    const f = await readSafetensors(path);
    const m = f.metadata;
    if (m.format !== MODEL_FORMAT) {
      throw new FormatError(`${path}: not a brainlatent ridge model (metadata format '${m.format ?? '(none)'}', expected '${MODEL_FORMAT}')`);
    }
    checkFormatVersion(path, m, MODEL_FORMAT, [MODEL_VERSION]);
    const file = new ModelFile(path, f, 'ridge model', { bestAlphas: 'best_alphas', scoreTable: 'cv_scores', chosen: 'best_alphas' });
    const prediction = file.prediction();
    const { coef, intercept, xMean, xScale } = prediction;
    const t = coef.cols;
    const alphas = file.alphas();
    const folds = file.folds();
    const score = file.score();
    // (absent in a file from elsewhere: RidgeCV's defaults)
    const fitIntercept = file.flag('fit_intercept', true);
    const standardize = file.flag('standardize', false);
    file.preprocessing(prediction, fitIntercept, standardize);
    const bestAlphas = file.tensor('best_alphas', Float32Array, t);
    const bestScores = file.tensor('best_scores', Float32Array, t);
    const cvScores = file.table('cv_scores', t, "alpha of metadata 'alphas'", alphas.length);
    // the choice against the grid and the scores: an alpha of the grid, the best-scoring one
    file.choice(bestAlphas, alphas, bestScores, cvScores, { values: bestAlphas, rows: alphaRows(alphas, bestAlphas) });
    return new RidgeModel(checkedAtSource({
      coef,
      intercept,
      xMean,
      xScale,
      bestAlphas,
      bestScores,
      cvScores,
      settings: { alphas, nFolds: folds.n, foldKind: folds.kind, score, fitIntercept, standardize },
      info: m.fit_info ? (metadataJson(path, m, 'fit_info', '{}') as NativeRidgeInfo) : undefined,
    }));
  }
}

/** What save() writes: the model's tensors and its metadata (also for `ridge fit`, which writes them to an output opened during the fit). */
export function ridgeModelFile(m: RidgeModel): { tensors: Record<string, SafetensorsTensor>; metadata: Record<string, string> } {
  const p = m.nFeatures, t = m.nTargets;
  return {
    tensors: {
      coef: { data: m.coef.data, shape: [p, t] },
      intercept: { data: m.intercept, shape: [t] },
      best_alphas: { data: m.bestAlphas, shape: [t] },
      best_scores: { data: m.bestScores, shape: [t] },
      cv_scores: { data: m.cvScores.data, shape: [m.cvScores.rows, t] },
      x_mean: { data: m.xMean, shape: [p] },
      x_scale: { data: m.xScale, shape: [p] },
    },
    metadata: {
      format: MODEL_FORMAT,
      version: MODEL_VERSION,
      alphas: JSON.stringify(m.settings.alphas),
      folds: JSON.stringify({ n: m.settings.nFolds, kind: m.settings.foldKind }),
      score: m.settings.score,
      fit_intercept: String(m.settings.fitIntercept),
      standardize: String(m.settings.standardize),
      prediction: '((X - x_mean) / x_scale) @ coef + intercept',
      ...(m.info ? { fit_info: JSON.stringify(m.info) } : {}),
    },
  };
}
