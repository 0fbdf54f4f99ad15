/**
 * The checks RidgeModel.load and BandedRidgeModel.load share, so that a banded model file is refused for what a
 * ridge model file is: tensors by name, dtype and length, the prediction's tensors finite with no zero x_scale,
 * the score and folds, and the metadata against the tensors (the chosen alphas in the grid, the best scores the
 * largest of the CV scores, 'fit_intercept' and 'standardize' against x_mean, intercept and x_scale: the checks of
 * modelConsistency.ts, which the constructors run on parts built by hand). Each error is a FormatError naming the
 * file and the tensor (its `field`) or the metadata key (field `__metadata__`).
 */
import { FormatError } from '../errors.js';
import { metadataJson, type SafetensorsFile } from '../io/safetensors.js';
import type { Matrix } from '../matrix.js';
import { checkBestScores, checkFinitePart, checkInGrid, checkPredictionValues, checkPreprocessing, type ModelNames, type ModelPart, type PredictionTensors } from './modelConsistency.js';
import type { RidgeScore } from './options.js';

type TensorData = Float32Array | Float64Array | Int32Array;
type TensorClass<T extends TensorData> = { new (n: number): T; readonly name: string };

const CODE: Record<string, string> = { Float32Array: 'F32', Float64Array: 'F64', Int32Array: 'I32' };

export type FoldKind = 'contiguous' | 'groups' | 'custom';

/** The file's names of the parts that differ between a ridge and a banded model. */
export type FileTensorNames = Record<'bestAlphas' | 'scoreTable' | 'chosen', string>;

const TENSOR: Partial<Record<ModelPart, string>> = { coef: 'coef', intercept: 'intercept', xMean: 'x_mean', xScale: 'x_scale', gammas: 'gammas', bestScores: 'best_scores' };
const METADATA: Partial<Record<ModelPart, string>> = { alphas: 'alphas', fitIntercept: 'fit_intercept', standardize: 'standardize' };

/**
 * The file's metadata 'version' against the versions of `format` this code reads (`supported`, the one it writes
 * last): a model of a newer layout was loaded and used as if it were this one (a version '99' predicted normally,
 * review C #11). A file without the key (one of the same layout written elsewhere) is read as the current version.
 */
export function checkFormatVersion(path: string, metadata: Record<string, string>, format: string, supported: readonly string[]): void {
  const v = metadata.version;
  if (v === undefined || supported.includes(v)) return;
  const newer = /^[0-9]+$/.test(v) && supported.every((s) => Number(v) > Number(s));
  throw new FormatError(
    `${path}: metadata 'version' is ${JSON.stringify(v)}; this brainlatent reads ${format} version ${supported.map((s) => `'${s}'`).join(' or ')}` +
      (newer ? ' (the file was written by a newer brainlatent: upgrade brainlatent to load it, or load it with the one that wrote it)' : ''),
    { path, field: '__metadata__' },
  );
}

/** A model file as read by readSafetensors; `kind` names it in errors ('ridge model', 'banded model'). */
export class ModelFile {
  /** How the shared checks (modelConsistency.ts) name this file's tensors and metadata keys. */
  readonly names: ModelNames;

  constructor(
    readonly path: string,
    private readonly file: SafetensorsFile,
    private readonly kind: string,
    tensors: FileTensorNames,
  ) {
    const tensorOf = (part: ModelPart) => TENSOR[part] ?? (tensors as Partial<Record<ModelPart, string>>)[part];
    this.names = {
      subject: (part) => (METADATA[part] ? `metadata '${METADATA[part]}'` : `tensor '${tensorOf(part)}'`),
      ref: (part) => (METADATA[part] ? `metadata '${METADATA[part]}'` : `'${tensorOf(part)}'`),
      falseText: "'false'",
      kind,
      error: (part, message) => this.bad(METADATA[part] ? '__metadata__' : tensorOf(part)!, message),
    };
  }

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
    const prediction = { coef: { data: coef, rows: p, cols: t }, intercept, xMean, xScale };
    checkPredictionValues(prediction, this.names);
    return prediction;
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
   * What metadata 'fit_intercept' and 'standardize' state, where written, against the prediction (see
   * checkPreprocessing): a file from elsewhere that leaves them out gets RidgeCV's defaults, which it does not claim,
   * so nothing is checked against them.
   */
  preprocessing(p: PredictionTensors, fitIntercept: boolean, standardize: boolean): void {
    const m = this.file.metadata;
    checkPreprocessing(p, { fitIntercept, standardize }, this.names, { fitIntercept: m.fit_intercept !== undefined, standardize: m.standardize !== undefined });
  }

  /** Gammas (a banded model's candidates) finite. */
  finiteGammas(gammas: Float64Array): void {
    checkFinitePart('gammas', gammas, this.names);
  }

  /** The chosen alphas in metadata 'alphas', and the best scores and the choice against the table of scores (modelConsistency.ts). */
  choice(bestAlphas: Float32Array, alphas: number[], bestScores: Float32Array, table: Matrix, chosen: { values: ArrayLike<number>; rows: (j: number) => number[] }): void {
    checkInGrid(bestAlphas, alphas, this.names);
    checkBestScores(bestScores, table, chosen, this.names);
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
