/**
 * The checks RidgeModel.load and BandedRidgeModel.load share, so that a banded model file is refused for what a
 * ridge model file is: tensors by name, dtype and length, the prediction's tensors finite with no zero x_scale,
 * the score and folds, and the metadata against the tensors (the chosen alphas in the grid, the best scores the
 * largest of the CV scores, 'fit_intercept' and 'standardize' against x_mean, intercept and x_scale). Each error
 * is a FormatError naming the file and the tensor (its `field`) or the metadata key (field `__metadata__`).
 */
import { FormatError } from '../errors.js';
import { firstNonFinite } from '../io/finite.js';
import { metadataJson, type SafetensorsFile } from '../io/safetensors.js';
import type { Matrix } from '../matrix.js';
import type { RidgeScore } from './options.js';

type TensorData = Float32Array | Float64Array | Int32Array;
type TensorClass<T extends TensorData> = { new (n: number): T; readonly name: string };

const CODE: Record<string, string> = { Float32Array: 'F32', Float64Array: 'F64', Int32Array: 'I32' };

/** The tensors of prediction: ((X − xMean) / xScale) · coef + intercept. */
export interface PredictionTensors {
  coef: Matrix;
  intercept: Float32Array;
  xMean: Float32Array;
  xScale: Float32Array;
}

export type FoldKind = 'contiguous' | 'groups' | 'custom';

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

/** A model file as read by readSafetensors; `kind` names it in errors ('ridge model', 'banded model'). */
export class ModelFile {
  constructor(
    readonly path: string,
    private readonly file: SafetensorsFile,
    private readonly kind: string,
  ) {}

  bad(field: string, message: string): FormatError {
    return new FormatError(`${this.path}: ${message}`, { path: this.path, field });
  }

  /** Tensor `name`, of `cls`'s dtype and, when given, `length` elements. */
  tensor<T extends TensorData>(name: string, cls: TensorClass<T>, length?: number): T {
    const t = this.file.tensors[name];
    if (!t) throw this.bad(name, `${this.kind} is missing tensor '${name}'`);
    if (!(t.data instanceof cls)) throw this.bad(name, `tensor '${name}' must be ${CODE[cls.name]}, got ${t.dtype}`);
    if (length !== undefined && t.data.length !== length) throw this.bad(name, `tensor '${name}' has ${t.data.length} elements, expected ${length}`);
    return t.data as T;
  }

  /** Throws when `data` holds NaN or ±Inf, naming the tensor and the index. */
  finite(name: string, data: ArrayLike<number>): void {
    const bad = firstNonFinite(data);
    if (bad >= 0) throw this.bad(name, `tensor '${name}' holds ${data[bad]} at index ${bad}; a ${this.kind} must be finite`);
  }

  /** coef (features × targets), and intercept, x_mean and x_scale sized to it; all finite, x_scale never 0. */
  prediction(): PredictionTensors {
    const coef = this.tensor('coef', Float32Array);
    const shape = this.file.tensors.coef.shape;
    if (shape.length !== 2) throw this.bad('coef', `tensor 'coef' must be 2-D (features × targets), got shape [${shape.join(', ')}]`);
    const [p, t] = shape;
    const intercept = this.tensor('intercept', Float32Array, t);
    const xMean = this.tensor('x_mean', Float32Array, p);
    const xScale = this.tensor('x_scale', Float32Array, p);
    // A model whose numbers are not finite, or that divides by a zero scale, would predict NaN or ±Infinity.
    for (const [name, data] of [['coef', coef], ['intercept', intercept], ['x_mean', xMean], ['x_scale', xScale]] as const) this.finite(name, data);
    const zero = xScale.indexOf(0);
    if (zero >= 0) throw this.bad('x_scale', `tensor 'x_scale' is 0 at index ${zero}; predictions divide by it`);
    return { coef: { data: coef, rows: p, cols: t }, intercept, xMean, xScale };
  }

  /**
   * Tensor `name` as a table of `cols` columns (one per target) and, when given, `rows` rows; `rowsAre` says what
   * a row is, for the error.
   */
  table(name: string, cols: number, rowsAre: string, rows?: number): Matrix {
    const data = this.tensor(name, Float32Array);
    if (cols === 0 ? data.length !== 0 : data.length % cols !== 0) {
      throw this.bad(name, `tensor '${name}' has ${data.length} elements, not a whole number of rows of the ${cols} targets`);
    }
    const n = cols > 0 ? data.length / cols : 0;
    if (rows !== undefined && n !== rows) throw this.bad(name, `tensor '${name}' has ${n} rows, expected ${rows} (one per ${rowsAre})`);
    return { data, rows: n, cols };
  }

  /** A JSON metadata value (`fallback` when absent). */
  json(key: string, fallback: string): unknown {
    return metadataJson(this.path, this.file.metadata, key, fallback);
  }

  /** Metadata 'alphas': the grid, a non-empty list of numbers > 0. */
  alphas(): number[] {
    const alphas = this.json('alphas', '[]');
    if (!Array.isArray(alphas) || alphas.length === 0 || alphas.some((a) => typeof a !== 'number' || !(a > 0) || !Number.isFinite(a))) {
      throw this.bad('__metadata__', `metadata 'alphas' must be a non-empty list of numbers > 0`);
    }
    return alphas as number[];
  }

  /** Metadata 'score': 'r2' (also when absent) or 'pearson'. */
  score(): RidgeScore {
    const s = this.file.metadata.score ?? 'r2';
    if (s !== 'r2' && s !== 'pearson') throw this.bad('__metadata__', `metadata 'score' must be 'r2' or 'pearson', got ${JSON.stringify(s)}`);
    return s;
  }

  /**
   * A yes/no setting in metadata `key`, written 'true' or 'false' by save(); absent, the option's default
   * (`fallback`, as for 'score' and 'folds'); any other text is refused.
   */
  flag(key: string, fallback: boolean): boolean {
    const v = this.file.metadata[key];
    if (v === undefined) return fallback;
    if (v !== 'true' && v !== 'false') throw this.bad('__metadata__', `metadata '${key}' must be 'true' or 'false', got ${JSON.stringify(v)}`);
    return v === 'true';
  }

  /**
   * What metadata 'fit_intercept' and 'standardize' state, where written (a file from elsewhere that leaves them out
   * gets RidgeCV's defaults, which it does not claim, so nothing is checked against them), checked against the
   * prediction ((X − x_mean) / x_scale) · coef + intercept: without an intercept X and Y are not centred, so x_mean
   * and intercept are 0 everywhere; without standardisation X is not scaled, so x_scale is 1 everywhere. (With
   * them, 0 and 1 are possible values: X already centred, a constant column left unscaled.)
   */
  preprocessing(p: PredictionTensors, fitIntercept: boolean, standardize: boolean): void {
    const m = this.file.metadata;
    const differs = (name: string, data: Float32Array, expected: number, key: string, why: string) => {
      const at = data.findIndex((v) => v !== expected);
      if (at >= 0) {
        throw this.bad(name, `tensor '${name}' is ${f32Text(data[at])} at index ${at}, but metadata '${key}' is 'false': expected ${expected} everywhere (${why})`);
      }
    };
    if (m.fit_intercept !== undefined && !fitIntercept) {
      differs('x_mean', p.xMean, 0, 'fit_intercept', 'a model fitted without an intercept does not centre X');
      differs('intercept', p.intercept, 0, 'fit_intercept', 'a model fitted without an intercept does not centre Y');
    }
    if (m.standardize !== undefined && !standardize) differs('x_scale', p.xScale, 1, 'standardize', 'a model fitted without standardisation does not scale X');
  }

  /** Each value of tensor `name` (the alpha chosen per target) one of metadata 'alphas', as float32 holds it. */
  inGrid(name: string, values: Float32Array, alphas: number[]): void {
    const grid = new Set(alphas.map((a) => Math.fround(a)));
    const at = values.findIndex((v) => !grid.has(v));
    if (at < 0) return;
    const shown = alphas.length <= 12 ? `[${alphas.join(', ')}]` : `(${alphas.length} alphas, ${alphas[0]} … ${alphas[alphas.length - 1]})`;
    throw this.bad(name, `tensor '${name}' is ${f32Text(values[at])} at index ${at}, expected one of metadata 'alphas' ${shown} (the alpha chosen for target ${at})`);
  }

  /**
   * Tensor `name` (each target's best mean CV score) against `table` (tensor `tableName`: a row per alpha or
   * candidate, a column per target): each the largest of its column, NaN skipped (the rows of alphas or candidates
   * left unresolved), and the row chosen for it (tensor `chosen.name`, whose value at the target's index names the
   * row or rows `chosen.rows` gives) one that scores it: the choice is the best-scoring one, ties and rounding aside.
   */
  bestScores(name: string, scores: Float32Array, table: Matrix, tableName: string, chosen: { name: string; values: ArrayLike<number>; rows: (j: number) => number[] }): void {
    const { data, rows, cols } = table;
    for (let j = 0; j < cols; j++) {
      let best = -Infinity;
      let any = false;
      for (let r = 0; r < rows; r++) {
        const v = data[r * cols + j];
        if (Number.isNaN(v)) continue;
        any = true;
        if (v > best) best = v;
      }
      if (!any) throw this.bad(tableName, `tensor '${tableName}' has no score in column ${j} (NaN in every row); a fitted target has one at least`);
      if (!sameScore(scores[j], best)) {
        throw this.bad(
          name,
          `tensor '${name}' is ${f32Text(scores[j])} at index ${j}, expected ${f32Text(best)}, the largest score of column ${j} of '${tableName}' (the best mean CV score of target ${j})`,
        );
      }
      const picked = chosen.rows(j);
      if (!picked.some((r) => sameScore(data[r * cols + j], best))) {
        const r = picked[0];
        throw this.bad(
          chosen.name,
          `tensor '${chosen.name}' is ${f32Text(chosen.values[j])} at index ${j}, row ${r} of '${tableName}', which scores ${f32Text(data[r * cols + j])} for target ${j}; expected a row of the best score, ${f32Text(best)}`,
        );
      }
    }
  }

  /** Metadata 'folds': { n, kind }, n a count and kind one of the fold kinds. */
  folds(): { n: number; kind: FoldKind } {
    const f = this.json('folds', '{"n":0,"kind":"custom"}') as { n?: unknown; kind?: unknown } | null;
    if (f === null || typeof f !== 'object' || !Number.isInteger(f.n) || (f.n as number) < 0 || !['contiguous', 'groups', 'custom'].includes(f.kind as string)) {
      throw this.bad('__metadata__', `metadata 'folds' must be an object { n: a count, kind: 'contiguous', 'groups' or 'custom' }`);
    }
    return { n: f.n as number, kind: f.kind as FoldKind };
  }
}
