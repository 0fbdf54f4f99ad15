/**
 * The checks of a model's numbers against each other, one set for load() (a file's tensors and metadata) and the
 * constructors (parts built by hand, which skipped them and failed later or predicted NaN): the prediction's
 * tensors finite with no zero x_scale; x_mean and intercept 0 without an intercept, x_scale 1 without
 * standardisation; each chosen alpha one of the grid; each best score the largest of its target's column of CV
 * scores, and the row chosen for the target one that scores it. `ModelNames` says how a part is named and what is
 * thrown: load's name the file's tensor or metadata key (FormatError naming the file), the constructors' the part
 * (InvalidArgumentError, NonFiniteError for NaN or ±Inf).
 */
import { InvalidArgumentError, NonFiniteError } from '../errors.js';
import { firstNonFinite } from '../io/finite.js';
import type { Matrix } from '../matrix.js';

/** The parts the checks name (`scoreTable`: cv_scores or gamma_scores; `chosen`: the row choice, best_alphas or best_gamma). */
export type ModelPart = 'coef' | 'intercept' | 'xMean' | 'xScale' | 'gammas' | 'bestAlphas' | 'bestScores' | 'scoreTable' | 'chosen' | 'alphas' | 'fitIntercept' | 'standardize';

export interface ModelNames {
  /** A part as a sentence's subject: "tensor 'x_scale'" (a file), "xScale" (parts). */
  subject(part: ModelPart): string;
  /** A part referred to in a sentence: "'cv_scores'", "metadata 'alphas'" (a file); "cvScores", "settings.alphas" (parts). */
  ref(part: ModelPart): string;
  /** How a setting's false is written: "'false'" in a file's metadata, "false" in parts. */
  readonly falseText: string;
  /** What the model is, in "a … must be finite": 'ridge model'. */
  readonly kind: string;
  /** The error about `part`; `nonFinite` when the value at fault is NaN or ±Inf. */
  error(part: ModelPart, message: string, nonFinite?: boolean): Error;
}

/** The tensors of prediction: ((X − xMean) / xScale) · coef + intercept. */
export interface PredictionTensors {
  coef: Matrix;
  intercept: Float32Array;
  xMean: Float32Array;
  xScale: Float32Array;
}

/** A float32 value as its shortest decimal (0.1, not 0.10000000149011612). */
function f32Text(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  for (let digits = 1; digits < 9; digits++) {
    const d = Number(v.toPrecision(digits));
    if (Math.fround(d) === v) return String(d);
  }
  return String(v);
}

/**
 * Two float32 scores that stand for the same number: the engine stores each score once from float64, so a best
 * score and its CV score are equal; a margin of a few float32 steps (and 1e-6 near 0, scores being at most 1) lets a
 * file whose writer rounded them apart through.
 */
function sameScore(a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(a), Math.abs(b));
}

/** Throws when `data` holds NaN or ±Inf, naming the part and the index. */
export function checkFinitePart(part: ModelPart, data: ArrayLike<number>, names: ModelNames): void {
  const bad = firstNonFinite(data);
  if (bad >= 0) throw names.error(part, `${names.subject(part)} holds ${data[bad]} at index ${bad}; a ${names.kind} must be finite`, true);
}

/** The prediction's tensors finite, and x_scale never 0 (a model that divides by it predicts ±Infinity). */
export function checkPredictionValues(p: PredictionTensors, names: ModelNames): void {
  for (const [part, data] of [['coef', p.coef.data], ['intercept', p.intercept], ['xMean', p.xMean], ['xScale', p.xScale]] as const) checkFinitePart(part, data, names);
  const zero = p.xScale.indexOf(0);
  if (zero >= 0) throw names.error('xScale', `${names.subject('xScale')} is 0 at index ${zero}; predictions divide by it`);
}

/**
 * What fitIntercept and standardize state, checked against the prediction where `stated` says they were stated (a
 * file from elsewhere that leaves them out claims nothing): without an intercept X and Y are not centred, so x_mean
 * and intercept are 0 everywhere; without standardisation X is not scaled, so x_scale is 1 everywhere. (With them,
 * 0 and 1 are possible values: X already centred, a constant column left unscaled.)
 */
export function checkPreprocessing(p: PredictionTensors, settings: { fitIntercept: boolean; standardize: boolean }, names: ModelNames, stated = { fitIntercept: true, standardize: true }): void {
  const differs = (part: ModelPart, data: Float32Array, expected: number, setting: ModelPart, why: string) => {
    const at = data.findIndex((v) => v !== expected);
    if (at >= 0) {
      throw names.error(part, `${names.subject(part)} is ${f32Text(data[at])} at index ${at}, but ${names.ref(setting)} is ${names.falseText}: expected ${expected} everywhere (${why})`);
    }
  };
  if (stated.fitIntercept && !settings.fitIntercept) {
    differs('xMean', p.xMean, 0, 'fitIntercept', 'a model fitted without an intercept does not centre X');
    differs('intercept', p.intercept, 0, 'fitIntercept', 'a model fitted without an intercept does not centre Y');
  }
  if (stated.standardize && !settings.standardize) differs('xScale', p.xScale, 1, 'standardize', 'a model fitted without standardisation does not scale X');
}

/** Each chosen alpha (one per target) one of the grid `alphas`, as float32 holds it. */
export function checkInGrid(values: Float32Array, alphas: number[], names: ModelNames): void {
  const grid = new Set(alphas.map((a) => Math.fround(a)));
  const at = values.findIndex((v) => !grid.has(v));
  if (at < 0) return;
  const shown = alphas.length <= 12 ? `[${alphas.join(', ')}]` : `(${alphas.length} alphas, ${alphas[0]} … ${alphas[alphas.length - 1]})`;
  throw names.error('bestAlphas', `${names.subject('bestAlphas')} is ${f32Text(values[at])} at index ${at}, expected one of ${names.ref('alphas')} ${shown} (the alpha chosen for target ${at})`);
}

/**
 * Each target's best mean CV score against `table` (a row per alpha or candidate, a column per target): the largest
 * of its column, NaN skipped (the rows of alphas or candidates left unresolved), and the row chosen for it
 * (`chosen.values` at the target's index, naming the rows `chosen.rows` gives) one that scores it: the choice is the
 * best-scoring one, ties and rounding aside.
 */
export function checkBestScores(scores: Float32Array, table: Matrix, chosen: { values: ArrayLike<number>; rows: (j: number) => number[] }, names: ModelNames): void {
  const { data, rows, cols } = table;
  const tableRef = names.ref('scoreTable');
  for (let j = 0; j < cols; j++) {
    let best = -Infinity;
    let any = false;
    for (let r = 0; r < rows; r++) {
      const v = data[r * cols + j];
      if (Number.isNaN(v)) continue;
      any = true;
      if (v > best) best = v;
    }
    if (!any) throw names.error('scoreTable', `${names.subject('scoreTable')} has no score in column ${j} (NaN in every row); a fitted target has one at least`);
    if (!sameScore(scores[j], best)) {
      throw names.error(
        'bestScores',
        `${names.subject('bestScores')} is ${f32Text(scores[j])} at index ${j}, expected ${f32Text(best)}, the largest score of column ${j} of ${tableRef} (the best mean CV score of target ${j})`,
      );
    }
    const picked = chosen.rows(j);
    if (!picked.some((r) => sameScore(data[r * cols + j], best))) {
      const r = picked[0];
      throw names.error(
        'chosen',
        `${names.subject('chosen')} is ${f32Text(chosen.values[j])} at index ${j}, row ${r} of ${tableRef}, which scores ${f32Text(data[r * cols + j])} for target ${j}; expected a row of the best score, ${f32Text(best)}`,
      );
    }
  }
}

/** The rows of a ridge model's CV scores whose alpha (as float32) is the one chosen for target j. */
export function alphaRows(alphas: number[], chosen: Float32Array): (j: number) => number[] {
  const rows = alphas.map((a) => Math.fround(a));
  return (j) => rows.flatMap((a, r) => (a === chosen[j] ? [r] : []));
}

/**
 * Names for the checks of a model's parts at its constructor: `what` ('RidgeModel') and the part's own name, as
 * `parts` maps them ('bestAlphas' → 'bestAlphas', 'alphas' → 'settings.alphas').
 */
export function partNames(what: string, kind: string, parts: Record<ModelPart, string>): ModelNames {
  return {
    subject: (part) => parts[part],
    ref: (part) => parts[part],
    falseText: 'false',
    kind,
    error: (_part, message, nonFinite) => (nonFinite ? new NonFiniteError(`${what}: ${message}`) : new InvalidArgumentError(`${what}: ${message}`)),
  };
}

/**
 * Parts already checked where they came from: load() ran these checks on the file (naming its tensors), and a fit's
 * parts come from the engine, which refuses non-finite coefficients and scores and chooses alphas from the grid. The
 * constructor does not run them again (a coef of 10⁸ values takes a pass of its own, ~0.45 s). Not exported from the
 * package.
 */
const checkedAtSource_ = new WeakSet<object>();

export function checkedAtSource<T extends object>(parts: T): T {
  checkedAtSource_.add(parts);
  return parts;
}

export function wasCheckedAtSource(parts: object): boolean {
  return checkedAtSource_.has(parts);
}
