import { FormatError, InvalidArgumentError, ShapeError } from '../errors.js';
import { assertFiniteMatrix } from '../io/finite.js';
import { metadataJson, readSafetensors, writeSafetensors } from '../io/safetensors.js';
import type { Matrix } from '../matrix.js';
import type { NativeBandedInfo } from '../native/bandedTypes.js';
import { nativeSync } from '../native/call.js';
import { predictionArray } from './predictionArray.js';
import { concatEntries, type FeatureSpaces } from './featureSpaces.js';
import { checkFormatVersion, ModelFile } from './modelFile.js';
import { checkBestScores, checkedAtSource, checkFinitePart, checkInGrid, checkPredictionValues, checkPreprocessing, partNames, wasCheckedAtSource } from './modelConsistency.js';
import { checkAlphaList, checkPartMatrix, checkPartsObject, checkPredictionParts, checkVector, FOLD_KINDS } from './modelParts.js';
import { checkBoolean, checkChoice, checkInteger } from './options.js';

export interface BandedRidgeModelParts {
  bandNames: string[];
  bandSizes: number[];
  coef: Matrix; // features × targets (bands stacked in order)
  intercept: Float32Array;
  xMean: Float32Array;
  xScale: Float32Array;
  /** Candidates searched, nGammas × nBands row-major. */
  gammas: Float64Array;
  bestGamma: Int32Array;
  bestAlpha: Float32Array;
  bestScores: Float32Array;
  /** Best mean CV score over alphas, per candidate γ (rows) and target. */
  gammaScores: Matrix;
  alphas: number[];
  score: 'r2' | 'pearson';
  foldKind: 'contiguous' | 'groups' | 'custom';
  nFolds: number;
  /** Whether X and Y were centred (an unpenalised intercept), as BandedRidgeCV's option. */
  fitIntercept: boolean;
  /** Whether X's columns were z-scored, as BandedRidgeCV's option. */
  standardize: boolean;
  info?: NativeBandedInfo;
}

const PARTS = [
  'bandNames',
  'bandSizes',
  'coef',
  'intercept',
  'xMean',
  'xScale',
  'gammas',
  'bestGamma',
  'bestAlpha',
  'bestScores',
  'gammaScores',
  'alphas',
  'score',
  'foldKind',
  'nFolds',
  'fitIntercept',
  'standardize',
] as const;

const NAMES = partNames('BandedRidgeModel', 'banded model', {
  coef: 'coef',
  intercept: 'intercept',
  xMean: 'xMean',
  xScale: 'xScale',
  gammas: 'gammas',
  bestAlphas: 'bestAlpha',
  bestScores: 'bestScores',
  scoreTable: 'gammaScores',
  chosen: 'bestGamma',
  alphas: 'alphas',
  fitIntercept: 'fitIntercept',
  standardize: 'standardize',
});

/**
 * BandedRidgeModel's parts, checked once, at its constructor: each part's type and size (modelParts.ts), then the
 * numbers against each other as load() checks a file's (modelConsistency.ts), unless load() did so naming the file's tensors.
 */
function checkBandedParts(parts: unknown): void {
  const what = 'BandedRidgeModel';
  const record = checkPartsObject(parts, what, PARTS, ['info']);
  const { p, t } = checkPredictionParts(record, what);
  const nb = checkBands(record.bandNames, record.bandSizes, p, what);
  const per = `one per target: coef is ${p}×${t}, features × targets`;
  if (!(record.gammas instanceof Float64Array)) {
    throw new InvalidArgumentError(`${what} gammas: expected a Float64Array of candidates, rows of the ${nb} band weights`);
  }
  const gammas = record.gammas.length;
  if (gammas === 0 || gammas % nb !== 0) throw new ShapeError(`${what} gammas: has ${gammas} values, expected rows of the ${nb} band weights`);
  const nGammas = gammas / nb;
  checkVector(record.bestGamma, 'bestGamma', what, Int32Array, t, per);
  // bandWeights() reads the row best_gamma names
  const outside = (record.bestGamma as Int32Array).findIndex((g) => g < 0 || g >= nGammas);
  if (outside >= 0) throw new ShapeError(`${what} bestGamma: is ${(record.bestGamma as Int32Array)[outside]} at index ${outside}, expected a row of gammas (0..${nGammas - 1})`);
  for (const name of ['bestAlpha', 'bestScores']) checkVector(record[name], name, what, Float32Array, t, per);
  checkPartMatrix(record.gammaScores, 'gammaScores', what, { rows: nGammas, cols: t, shape: 'one row per candidate of gammas, one column per target' });
  checkAlphaList(record.alphas, 'alphas', what);
  checkChoice(record.score, 'score', what, ['r2', 'pearson'] as const);
  checkChoice(record.foldKind, 'foldKind', what, FOLD_KINDS);
  checkInteger(record.nFolds, 'nFolds', what, 0);
  checkBoolean(record.fitIntercept, 'fitIntercept', what);
  checkBoolean(record.standardize, 'standardize', what);
  if (wasCheckedAtSource(record)) return;
  const m = record as unknown as BandedRidgeModelParts;
  checkPredictionValues(m, NAMES);
  checkFinitePart('gammas', m.gammas, NAMES);
  checkPreprocessing(m, m, NAMES);
  checkInGrid(m.bestAlpha, m.alphas, NAMES);
  checkBestScores(m.bestScores, m.gammaScores, { values: m.bestGamma, rows: (j) => [m.bestGamma[j]] }, NAMES);
}

/** A name and a width per band, the widths adding up to coef's p features; returns the number of bands. */
function checkBands(names: unknown, sizes: unknown, p: number, what: string): number {
  if (!Array.isArray(sizes) || sizes.length === 0 || sizes.some((b) => !Number.isInteger(b) || b < 1)) {
    throw new InvalidArgumentError(`${what} bandSizes: expected a non-empty array of band widths (integers >= 1)`);
  }
  if (!Array.isArray(names) || names.length !== sizes.length || names.some((b) => typeof b !== 'string')) {
    throw new InvalidArgumentError(`${what} bandNames: expected an array of ${sizes.length} names, one per band of bandSizes`);
  }
  const total = (sizes as number[]).reduce((a, b) => a + b, 0);
  if (total !== p) throw new ShapeError(`${what} bandSizes: [${sizes.join(', ')}] adds up to ${total} features, but coef has ${p} (rows)`);
  return sizes.length;
}

/** A fitted banded ridge model: predict(X) = ((X − xMean) / xScale) · coef + intercept, X the spaces side by side. */
export class BandedRidgeModel {
  readonly bandNames: string[];
  readonly bandSizes: number[];
  readonly coef: Matrix;
  readonly intercept: Float32Array;
  readonly xMean: Float32Array;
  readonly xScale: Float32Array;
  readonly gammas: Float64Array;
  readonly bestGamma: Int32Array;
  readonly bestAlpha: Float32Array;
  readonly bestScores: Float32Array;
  readonly gammaScores: Matrix;
  readonly alphas: number[];
  readonly score: 'r2' | 'pearson';
  readonly foldKind: 'contiguous' | 'groups' | 'custom';
  readonly nFolds: number;
  readonly fitIntercept: boolean;
  readonly standardize: boolean;
  readonly info?: NativeBandedInfo;

  /**
   * Checks the parts as load() checks a file (InvalidArgumentError: missing or of the wrong type, or numbers that
   * contradict each other; ShapeError: not sized to coef; NonFiniteError: NaN or ±Inf in coef, intercept, xMean,
   * xScale, gammas).
   */
  constructor(p: BandedRidgeModelParts) {
    checkBandedParts(p);
    this.bandNames = p.bandNames;
    this.bandSizes = p.bandSizes;
    this.coef = p.coef;
    this.intercept = p.intercept;
    this.xMean = p.xMean;
    this.xScale = p.xScale;
    this.gammas = p.gammas;
    this.bestGamma = p.bestGamma;
    this.bestAlpha = p.bestAlpha;
    this.bestScores = p.bestScores;
    this.gammaScores = p.gammaScores;
    this.alphas = p.alphas;
    this.score = p.score;
    this.foldKind = p.foldKind;
    this.nFolds = p.nFolds;
    this.fitIntercept = p.fitIntercept;
    this.standardize = p.standardize;
    this.info = p.info;
  }

  get nBands(): number {
    return this.bandNames.length;
  }
  get nTargets(): number {
    return this.coef.cols;
  }

  /** The chosen band weights γ of every target: targets × bands. */
  bandWeights(): Matrix {
    const nb = this.nBands;
    const out = new Float32Array(this.nTargets * nb);
    for (let j = 0; j < this.nTargets; j++) {
      for (let b = 0; b < nb; b++) out[j * nb + b] = this.gammas[this.bestGamma[j] * nb + b];
    }
    return { data: out, rows: this.nTargets, cols: nb };
  }

  /** The effective penalty per band and target, α/γᵢ (Infinity where γᵢ = 0): targets × bands. */
  bandAlphas(): Matrix {
    const w = this.bandWeights();
    const out = new Float32Array(w.data.length);
    for (let j = 0; j < this.nTargets; j++) {
      for (let b = 0; b < this.nBands; b++) out[j * this.nBands + b] = this.bestAlpha[j] / w.data[j * this.nBands + b];
    }
    return { data: out, rows: this.nTargets, cols: this.nBands };
  }

  /** himalaya's deltas, log(γᵢ/α): bands × targets. */
  deltas(): Matrix {
    const w = this.bandWeights();
    const out = new Float32Array(w.data.length);
    for (let j = 0; j < this.nTargets; j++) {
      for (let b = 0; b < this.nBands; b++) out[b * this.nTargets + j] = Math.log(w.data[j * this.nBands + b] / this.bestAlpha[j]);
    }
    return { data: out, rows: this.nBands, cols: this.nTargets };
  }

  /**
   * Predictions for the spaces: samples × targets. Named spaces are matched to the fit's bandNames (their order
   * does not matter; each name must be there, and no other), an array is taken in the fit's band order; each
   * space must have its band's width and finite values (NonFiniteError naming the space, row and column).
   */
  predict(spaces: FeatureSpaces): Matrix {
    const x = this.bands(spaces, 'BandedRidgeModel.predict');
    const out = predictionArray(x.rows, this.nTargets, 'BandedRidgeModel.predict');
    const data = nativeSync((b) => b.ridgePredict(x.data, x.rows, x.cols, this.coef.data, this.nTargets, this.intercept, this.xMean, this.xScale, out));
    return { data, rows: x.rows, cols: this.nTargets };
  }

  /** Each band's share of the prediction (without the intercept): one samples × targets matrix per band, in bandNames order (himalaya's split); spaces as for predict. */
  predictSplit(spaces: FeatureSpaces): Matrix[] {
    const x = this.bands(spaces, 'BandedRidgeModel.predictSplit');
    const out: Matrix[] = [];
    let c0 = 0;
    for (let b = 0; b < this.nBands; b++) {
      const w = this.bandSizes[b];
      const xb = new Float32Array(x.rows * w);
      for (let i = 0; i < x.rows; i++) xb.set(x.data.subarray(i * x.cols + c0, i * x.cols + c0 + w), i * w);
      const coef = this.coef.data.subarray(c0 * this.nTargets, (c0 + w) * this.nTargets);
      const zero = new Float32Array(this.nTargets);
      const share = predictionArray(x.rows, this.nTargets, `BandedRidgeModel.predictSplit band ${b}`);
      out.push({
        data: nativeSync((nb) => nb.ridgePredict(xb, x.rows, w, coef, this.nTargets, zero, this.xMean.subarray(c0, c0 + w), this.xScale.subarray(c0, c0 + w), share)),
        rows: x.rows,
        cols: this.nTargets,
      });
      c0 += w;
    }
    return out;
  }

  /**
   * The spaces side by side in the fit's band order: named spaces matched to bandNames, an array by position;
   * every band of its fitted width, every value finite.
   */
  private bands(spaces: FeatureSpaces, what: string): Matrix {
    const expected = `the model was fitted on ${this.nBands} space(s): ${this.bandNames.map((n, b) => `'${n}' (${this.bandSizes[b]} features)`).join(', ')}`;
    let entries: [string, Matrix][];
    if (Array.isArray(spaces)) {
      if (spaces.length !== this.nBands) throw new ShapeError(`${what}: got an array of ${spaces.length} space(s), ${expected}, in that order`);
      entries = spaces.map((m, b) => [this.bandNames[b], m]);
    } else {
      if (spaces === null || typeof spaces !== 'object') {
        throw new InvalidArgumentError(`${what}: spaces: expected an object of named matrices or an array of matrices, got ${spaces === null ? 'null' : typeof spaces}`);
      }
      const repeated = this.bandNames.find((n, b) => this.bandNames.indexOf(n) !== b);
      if (repeated !== undefined) {
        throw new InvalidArgumentError(`${what}: the model's band names repeat '${repeated}' (${this.bandNames.join(', ')}), so spaces cannot be matched by name; pass an array in band order`);
      }
      const unknown = Object.keys(spaces).filter((n) => !this.bandNames.includes(n));
      const missing = this.bandNames.filter((n) => !Object.prototype.hasOwnProperty.call(spaces, n));
      if (unknown.length || missing.length) {
        const list = (names: string[]) => names.map((n) => `'${n}'`).join(', ');
        const problems = [unknown.length ? `unknown space(s) ${list(unknown)}` : '', missing.length ? `missing space(s) ${list(missing)}` : ''].filter(Boolean).join(' and ');
        throw new InvalidArgumentError(`${what}: ${problems}; ${expected}`);
      }
      entries = this.bandNames.map((n) => [n, spaces[n]]);
    }
    const { x, sizes } = concatEntries(entries, what);
    const wrong = sizes.findIndex((s, b) => s !== this.bandSizes[b]);
    if (wrong >= 0) {
      throw new ShapeError(`${what}: feature space '${entries[wrong][0]}' has ${sizes[wrong]} features (columns), ${expected}`);
    }
    for (const [name, m] of entries) assertFiniteMatrix(m, `${what}: feature space '${name}'`);
    return x;
  }

  /**
   * Saves as safetensors (readable from Python): coef, intercept, x_mean, x_scale, gammas, best_gamma,
   * best_alpha, best_scores, gamma_scores, and a metadata header (band names and sizes, alphas, score,
   * folds, fit_intercept, standardize). Prediction is ((X - x_mean) / x_scale) @ coef + intercept with X the
   * bands side by side.
   */
  async save(path: string): Promise<void> {
    const p = this.coef.rows, t = this.nTargets, g = this.gammas.length / Math.max(1, this.nBands);
    await writeSafetensors(
      path,
      {
        coef: { data: this.coef.data, shape: [p, t] },
        intercept: { data: this.intercept, shape: [t] },
        x_mean: { data: this.xMean, shape: [p] },
        x_scale: { data: this.xScale, shape: [p] },
        gammas: { data: this.gammas, shape: [g, this.nBands] },
        best_gamma: { data: this.bestGamma, shape: [t] },
        best_alpha: { data: this.bestAlpha, shape: [t] },
        best_scores: { data: this.bestScores, shape: [t] },
        gamma_scores: { data: this.gammaScores.data, shape: [this.gammaScores.rows, t] },
      },
      {
        format: BANDED_FORMAT,
        version: BANDED_VERSION,
        band_names: JSON.stringify(this.bandNames),
        band_sizes: JSON.stringify(this.bandSizes),
        alphas: JSON.stringify(this.alphas),
        score: this.score,
        folds: JSON.stringify({ n: this.nFolds, kind: this.foldKind }),
        fit_intercept: String(this.fitIntercept),
        standardize: String(this.standardize),
        prediction: '((X - x_mean) / x_scale) @ coef + intercept, X = bands side by side',
        ...(this.info ? { fit_info: JSON.stringify(this.info) } : {}),
      },
    );
  }

  /**
   * Reads a model save() wrote, refusing what RidgeModel.load refuses (see there; best_alpha for best_alphas, and
   * gamma_scores, a row per candidate of 'gammas', for cv_scores: each best score the largest of its column, scored
   * by the row best_gamma picks) and bands that disagree with coef or gammas, each a FormatError naming the file
   * and the tensor or metadata key.
   */
  static async load(path: string): Promise<BandedRidgeModel> {
    const f = await readSafetensors(path);
    const m = f.metadata;
    if (m.format !== BANDED_FORMAT) {
      throw new FormatError(`${path}: not a brainlatent banded ridge model (metadata format '${m.format ?? '(none)'}', expected '${BANDED_FORMAT}')`);
    }
    checkFormatVersion(path, m, BANDED_FORMAT, [BANDED_VERSION]);
    const file = new ModelFile(path, f, 'banded model', { bestAlphas: 'best_alpha', scoreTable: 'gamma_scores', chosen: 'best_gamma' });
    const prediction = file.prediction();
    const { coef, intercept, xMean, xScale } = prediction;
    const [p, t] = [coef.rows, coef.cols];
    const bandSizes = file.json('band_sizes', '[]');
    if (!Array.isArray(bandSizes) || bandSizes.length === 0 || bandSizes.some((b) => !Number.isInteger(b) || b < 1)) {
      throw file.bad('__metadata__', `metadata 'band_sizes' must be a non-empty list of band widths (integers >= 1)`);
    }
    if (bandSizes.reduce((a, b) => a + b, 0) !== p) {
      throw file.bad('__metadata__', `metadata 'band_sizes' [${bandSizes.join(', ')}] does not add up to the ${p} features of 'coef'`);
    }
    const bandNames = file.json('band_names', '[]');
    if (!Array.isArray(bandNames) || bandNames.length !== bandSizes.length || bandNames.some((b) => typeof b !== 'string')) {
      throw file.bad('__metadata__', `metadata 'band_names' must be a list of ${bandSizes.length} names, one per band of 'band_sizes'`);
    }
    const nb = bandSizes.length;
    // each row of gammas is a candidate's band weights; best_gamma picks a row per target
    const gammas = file.tensor('gammas', Float64Array);
    if (gammas.length === 0 || gammas.length % nb !== 0) {
      throw file.bad('gammas', `tensor 'gammas' has ${gammas.length} elements, expected rows of the ${nb} band weights`);
    }
    file.finiteGammas(gammas);
    const nGammas = gammas.length / nb;
    const bestGamma = file.tensor('best_gamma', Int32Array, t);
    const outside = bestGamma.findIndex((g) => g < 0 || g >= nGammas);
    if (outside >= 0) throw file.bad('best_gamma', `tensor 'best_gamma' is ${bestGamma[outside]} at index ${outside}, expected a row of 'gammas' (0..${nGammas - 1})`);
    const folds = file.folds();
    const alphas = file.alphas();
    const score = file.score();
    // (absent, as in a file saved before they were recorded: BandedRidgeCV's defaults, RidgeCV's)
    const fitIntercept = file.flag('fit_intercept', true);
    const standardize = file.flag('standardize', false);
    file.preprocessing(prediction, fitIntercept, standardize);
    const bestAlpha = file.tensor('best_alpha', Float32Array, t);
    const bestScores = file.tensor('best_scores', Float32Array, t);
    const gammaScores = file.table('gamma_scores', t, "row of 'gammas'", nGammas);
    // the choice against the grid and the scores: an alpha of the grid, the best-scoring candidate
    file.choice(bestAlpha, alphas, bestScores, gammaScores, { values: bestGamma, rows: (j) => [bestGamma[j]] });
    return new BandedRidgeModel(checkedAtSource({
      bandNames: bandNames as string[],
      bandSizes: bandSizes as number[],
      coef,
      intercept,
      xMean,
      xScale,
      gammas,
      bestGamma,
      bestAlpha,
      bestScores,
      gammaScores,
      alphas,
      score,
      foldKind: folds.kind,
      nFolds: folds.n,
      fitIntercept,
      standardize,
      info: m.fit_info ? (metadataJson(path, m, 'fit_info', '{}') as NativeBandedInfo) : undefined,
    }));
  }
}

export const BANDED_FORMAT = 'brainlatent.banded-ridge';
/** The layout save() writes, the one load() reads (metadata 'version'). */
export const BANDED_VERSION = '1';
