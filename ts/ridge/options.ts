/**
 * The options RidgeCV and BandedRidgeCV share, validated once, at their constructors: every error
 * names the option, what arrived and what was expected. The alpha grid is checked and copied once
 * into the Float64Array the engine reads; nothing downstream validates or copies it again.
 */
import { closest } from '../config/problems.js';
import { InvalidArgumentError } from '../errors.js';
import { abortedBeforeStart, isAbortSignal } from '../native/call.js';
import type { NativeRidgeOptions } from '../native/ridgeTypes.js';
import { DEFAULT_ALPHAS, describeNumber, validateAlphas } from './alphas.js';

export type RidgeScore = 'r2' | 'pearson';
export type RidgeBackend = 'auto' | 'cpu' | 'cuda';

/** The options of every ridge fit (RidgeCV, BandedRidgeCV). */
export interface RidgeCommonOptions {
  /** Candidate regularisation strengths (> 0). Default: 10 log-spaced from 1e1 to 1e7. */
  alphas?: ArrayLike<number>;
  /** Number of contiguous folds (scikit-learn KFold without shuffling), or of groups' folds. Default 5. Refused together with foldIndex. */
  folds?: number;
  /**
   * A group label per sample (e.g. the image id of each trial): all samples of a group stay in
   * one fold, so repetitions of an image never leak between training and validation. Refused together with foldIndex.
   */
  groups?: ArrayLike<number>;
  /**
   * Explicit fold index (0..k-1) per sample: the folds are these, k being the largest value + 1. Refused together
   * with folds or groups (which would otherwise be ignored): give foldIndex alone.
   */
  foldIndex?: ArrayLike<number>;
  /**
   * CV score maximised per target. Default 'r2'. Exact ties go to the larger alpha; scores equal only up to float32
   * noise are not ties. 'pearson' ignores the predictions' scale: where every alpha gives the same correlation (one
   * feature) the chosen alpha, the coefficients' scale, is not identified (README, "How it works").
   */
  score?: RidgeScore;
  /** Centre X and Y with training means (an unpenalised intercept). Default true. */
  fitIntercept?: boolean;
  /** z-score X columns with training statistics, stored in the model. Default false. */
  standardize?: boolean;
  /** The engine's backend: 'auto' (the best available), 'cpu' or 'cuda'. */
  backend?: RidgeBackend;
  /** Decompose XᵀX ('primal') or XXᵀ ('kernel'); 'auto' picks the cheaper. */
  route?: 'auto' | 'primal' | 'kernel';
  /** Precision of the eigendecompositions; 'auto' uses float64 only when the smallest alpha needs it. */
  eigPrecision?: 'auto' | 'float32' | 'float64';
  /**
   * Bytes of the engine's work buffers (X's prepared copy, Grams, decompositions, target batches):
   * a hard bound. A fit whose fixed footprint does not fit is refused with the footprint in the
   * message. Default: 2 GiB, or the fixed footprint plus a batch of 2,048 targets when that is more.
   */
  memoryBudget?: number;
  /** Fix the number of targets per batch (otherwise sized to memoryBudget). */
  targetBatch?: number;
}

/** The option names of RidgeCommonOptions (RidgeCV and BandedRidgeCV add their own). */
export const COMMON_OPTION_KEYS = [
  'alphas',
  'folds',
  'groups',
  'foldIndex',
  'score',
  'fitIntercept',
  'standardize',
  'backend',
  'route',
  'eigPrecision',
  'memoryBudget',
  'targetBatch',
] as const;

/**
 * Every key of `o` must be one of `known`: a misspelt option ('alpha' for 'alphas') would otherwise be ignored
 * and the default used in silence. The error names each unknown key, the closest known one when it looks like
 * a typo (as config files and HTTP bodies do), and the known ones; `noun` is what a key is ('option', 'part').
 */
export function checkKnownKeys(o: object, known: readonly string[], what: string, noun = 'option'): void {
  const unknown = Object.keys(o).filter((k) => !known.includes(k));
  if (unknown.length === 0) return;
  const each = unknown.map((k) => {
    const near = closest(k, [...known]) ?? onlyOneContaining(k, known);
    return `'${k}'${near ? ` (did you mean '${near}'?)` : ''}`;
  });
  throw new InvalidArgumentError(`${what}: unknown ${noun}${unknown.length > 1 ? 's' : ''} ${each.join(', ')}; known: ${known.join(', ')}`);
}

/** An options object (not null, an array or a primitive) whose every key is one of `known`, as checkKnownKeys says. */
export function checkOptionsObject(o: unknown, known: readonly string[], what: string): void {
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new InvalidArgumentError(`${what}: options must be an object, got ${describeNumber(o)}`);
  checkKnownKeys(o, known, what);
}

/** The one known name that holds `name` whole (a shortened 'spacing' for 'timestepSpacing'), else undefined. */
function onlyOneContaining(name: string, known: readonly string[]): string | undefined {
  if (name.length < 3) return undefined;
  const holding = known.filter((k) => k.toLowerCase().includes(name.toLowerCase()));
  return holding.length === 1 ? holding[0] : undefined;
}

/**
 * The control of a fit (`fit(x, y, control)`): an object with an optional onProgress function and AbortSignal; `known`
 * is every key it may have (RidgeCV.fitMany's adds concurrency, which its caller checks).
 */
export function checkFitControl(control: unknown, what: string, known: readonly string[] = ['onProgress', 'signal']): void {
  if (control === null || typeof control !== 'object') throw new InvalidArgumentError(`${what}: the fit's control must be an object ({ ${known.join(', ')} }), got ${describeNumber(control)}`);
  checkKnownKeys(control, known, what);
  const { onProgress, signal } = control as { onProgress?: unknown; signal?: unknown };
  if (onProgress !== undefined && typeof onProgress !== 'function') {
    throw new InvalidArgumentError(`${what} onProgress: expected a function, got ${describeNumber(onProgress)}`);
  }
  checkSignal(signal, what);
  // (before the fit's own work on its inputs: BandedRidgeCV.fit's joining of the bands took 0.3 s at 20,000 × 4,000
  // before the engine job refused the aborted signal)
  if ((signal as AbortSignal | undefined)?.aborted) throw abortedBeforeStart(what, signal as AbortSignal);
}

/**
 * The options of a prediction (`predict(x, { label, signal })`, and predictAsync's `onProgress` beside them): an
 * object whose label is a string, signal an AbortSignal and onProgress a function; an unknown key is refused like a
 * fit's (a misspelt 'lable' would leave errors naming X by default).
 */
export function checkPredictOptions(options: unknown, what: string, form: 'sync' | 'async' = 'sync'): void {
  const keys = form === 'async' ? ['label', 'signal', 'onProgress'] : ['label', 'signal'];
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new InvalidArgumentError(`${what}: options must be an object ({ ${keys.join(', ')} }), got ${describeNumber(options)}`);
  }
  checkKnownKeys(options, keys, what);
  const { label, signal, onProgress } = options as { label?: unknown; signal?: unknown; onProgress?: unknown };
  if (label !== undefined && typeof label !== 'string') throw new InvalidArgumentError(`${what} label: expected a string (how errors name X), got ${describeNumber(label)}`);
  if (onProgress !== undefined && typeof onProgress !== 'function') throw new InvalidArgumentError(`${what} onProgress: expected a function, got ${describeNumber(onProgress)}`);
  checkSignal(signal, what);
}

function checkSignal(signal: unknown, what: string): void {
  if (signal !== undefined && !isAbortSignal(signal)) throw new InvalidArgumentError(`${what} signal: expected an AbortSignal, got ${describeNumber(signal)}`);
}

/**
 * A solver names the route (and the CV method) it takes: a route or cvMethod given beside it must be 'auto' or the
 * same, or one of the two would be ignored in silence. `given` holds the validated values ('auto' when left out).
 */
export function checkSolverAgrees(solver: string, given: { route: string; cvMethod?: string }, what: string): void {
  const [cvMethod, route] = [solver.slice(0, solver.lastIndexOf('-')), solver.slice(solver.lastIndexOf('-') + 1)];
  for (const [name, value, implied] of [['route', given.route, route], ['cvMethod', given.cvMethod, cvMethod]] as const) {
    if (value !== undefined && value !== 'auto' && value !== implied) {
      throw new InvalidArgumentError(`${what}: solver '${solver}' takes ${name} '${implied}' but ${name} '${value}' was given; leave ${name} out (or 'auto') with a solver, or give the solver that matches it`);
    }
  }
}

/** The validated options, in the engine's form. */
export interface ResolvedRidgeOptions {
  alphas: Float64Array;
  folds: number;
  groups?: ArrayLike<number>;
  foldIndex?: ArrayLike<number>;
  native: Omit<NativeRidgeOptions, 'folds' | 'nFolds' | 'cvMethod' | 'alphas'>;
}

/** A choice as typed (quoted); other values go through describeNumber, which names the type (`string "10"`). */
function describe(v: unknown): string {
  return typeof v === 'string' ? `'${v}'` : Array.isArray(v) ? `an array of ${v.length}` : v !== null && typeof v === 'object' ? 'an object' : String(v);
}

/** `value` must be a finite integer ≥ min (a count, a size, a seed), and ≤ max when given. */
export function checkInteger(value: unknown, name: string, what: string, min = 1, max?: number): number {
  return checkIntegerAt(value, `${what} ${name}`, min, max);
}

/**
 * checkInteger for an option whose whole name its caller's user wrote ('--steps', 'body.steps', 'img2img.steps'):
 * the same message, `<label>: expected an integer …, got …`.
 */
export function checkIntegerAt(value: unknown, label: string, min = 1, max?: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || !Number.isInteger(value) || value < min || (max !== undefined && value > max)) {
    throw new InvalidArgumentError(`${label}: expected an integer ${max === undefined ? `>= ${min}` : `in ${min}..${max}`}, got ${describeNumber(value)}`);
  }
  return value;
}

/** setTimeout's longest delay, 2^31-1 ms (about 24.8 days): a longer one fires after 1 ms, with a TimeoutOverflowWarning. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** The most folds (2^20): a plan holds each fold's size, and the engine counts folds in an int. */
export const MAX_FOLDS = 2 ** 20;

/** The largest memoryBudget the engine takes: 2^50 bytes (1 PiB). */
export const MAX_MEMORY_BUDGET = 2 ** 50;

/**
 * The most random-search candidates (BandedRidgeCV's nIter): the draws are held nIter × bands, and each distinct
 * candidate is a full cross-validated search (himalaya's examples take 20–200).
 */
export const MAX_N_ITER = 1_000_000;

/** A memoryBudget: a whole number of bytes, 1 to MAX_MEMORY_BUDGET (the engine's words named no unit). */
function checkMemoryBudget(value: unknown, what: string): number {
  const v = checkPositive(value, 'memoryBudget', what);
  if (v > MAX_MEMORY_BUDGET) throw new InvalidArgumentError(`${what} memoryBudget: expected at most ${MAX_MEMORY_BUDGET} bytes (1 PiB), got ${v}`);
  // (a fraction of a byte was floored once, 0.5 taken as 1: a budget in other units converted without rounding)
  if (!Number.isInteger(v)) throw new InvalidArgumentError(`${what} memoryBudget: expected a whole number of bytes, got ${v} (round a size converted from GiB)`);
  return v;
}

/** `value` must be a finite number > 0. */
export function checkPositive(value: unknown, name: string, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || !(value > 0)) {
    throw new InvalidArgumentError(`${what} ${name}: expected a finite number > 0, got ${describeNumber(value)}`);
  }
  return value;
}

export function checkChoice<T extends string>(value: unknown, name: string, what: string, choices: readonly T[]): T {
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`${what} ${name}: expected ${choices.map((c) => `'${c}'`).join(', ')}, got ${describe(value)}`);
  }
  return value as T;
}

export function checkBoolean(value: unknown, name: string, what: string): boolean {
  if (typeof value !== 'boolean') throw new InvalidArgumentError(`${what} ${name}: expected true or false, got ${describeNumber(value)}`);
  return value;
}

/**
 * Validates the shared options of a ridge fit once (`what` names the class in errors); `known` is every option
 * name the class takes (an unknown one is refused). An option left out (or undefined) takes its default; null
 * is refused like any other value of the wrong type.
 */
export function resolveRidgeOptions(o: RidgeCommonOptions, what: string, known: readonly string[] = COMMON_OPTION_KEYS): ResolvedRidgeOptions {
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new InvalidArgumentError(`${what}: options must be an object, got ${describeNumber(o)}`);
  checkKnownKeys(o, known, what);
  const alphas = o.alphas === undefined ? DEFAULT_ALPHAS : o.alphas;
  if (typeof alphas !== 'object' || alphas === null || typeof (alphas as ArrayLike<number>).length !== 'number') {
    throw new InvalidArgumentError(`${what} alphas: expected an array of numbers, got ${describeNumber(alphas)}`);
  }
  validateAlphas(alphas, `${what} alphas`);
  const folds = o.folds === undefined ? 5 : checkInteger(o.folds, 'folds', what, 2, MAX_FOLDS);
  // foldIndex sets the folds itself: a folds or groups given beside it would be ignored in silence
  if (o.foldIndex !== undefined) {
    for (const name of ['folds', 'groups'] as const) {
      if (o[name] !== undefined) {
        throw new InvalidArgumentError(
          `${what}: foldIndex and ${name} were both given; foldIndex sets the folds itself (their number is its largest value + 1), so ${name} would be ignored: give one of them`,
        );
      }
    }
  }
  for (const [name, v] of [['groups', o.groups], ['foldIndex', o.foldIndex]] as const) {
    if (v !== undefined && (typeof v !== 'object' || v === null || typeof v.length !== 'number')) {
      throw new InvalidArgumentError(`${what} ${name}: expected an array with one entry per sample, got ${describeNumber(v)}`);
    }
  }
  if (o.groups !== undefined) {
    for (let i = 0; i < o.groups.length; i++) {
      const g = o.groups[i];
      if (!Number.isInteger(g) || g < -2147483648 || g > 2147483647) {
        throw new InvalidArgumentError(`${what} groups: expected 32-bit integer labels, got ${describeNumber(g)} at position ${i}`);
      }
    }
  }
  if (o.foldIndex !== undefined) {
    for (let i = 0; i < o.foldIndex.length; i++) {
      const f = o.foldIndex[i];
      if (!Number.isInteger(f) || f < 0) {
        throw new InvalidArgumentError(`${what} foldIndex: expected integers >= 0, got ${describeNumber(f)} at position ${i}`);
      }
      // k folds need k samples, and foldIndex has one entry per sample: a larger label can only be wrong, and
      // assignFolds allocates by the largest label (1e9 would take GBs; 2**31 wraps in its Int32Array)
      if (f >= o.foldIndex.length) {
        throw new InvalidArgumentError(
          `${what} foldIndex: expected fold numbers 0..k-1 with k at most its ${o.foldIndex.length} entries (one per sample), got ${f} at position ${i}`,
        );
      }
    }
  }
  return {
    alphas: Float64Array.from(alphas),
    folds,
    // (copies of what was checked: the caller's arrays changed after the constructor would reach the fit unchecked)
    groups: o.groups === undefined ? undefined : Int32Array.from(o.groups),
    foldIndex: o.foldIndex === undefined ? undefined : Int32Array.from(o.foldIndex),
    native: {
      score: o.score === undefined ? 'r2' : checkChoice(o.score, 'score', what, ['r2', 'pearson'] as const),
      fitIntercept: o.fitIntercept === undefined ? true : checkBoolean(o.fitIntercept, 'fitIntercept', what),
      standardize: o.standardize === undefined ? false : checkBoolean(o.standardize, 'standardize', what),
      route: o.route === undefined ? 'auto' : checkChoice(o.route, 'route', what, ['auto', 'primal', 'kernel'] as const),
      backend: o.backend === undefined ? 'auto' : checkChoice(o.backend, 'backend', what, ['auto', 'cpu', 'cuda'] as const),
      eigPrecision:
        o.eigPrecision === undefined ? 'auto' : checkChoice(o.eigPrecision, 'eigPrecision', what, ['auto', 'float32', 'float64'] as const),
      memoryBudget: o.memoryBudget === undefined ? 0 : checkMemoryBudget(o.memoryBudget, what),
      targetBatch: o.targetBatch === undefined ? 0 : checkInteger(o.targetBatch, 'targetBatch', what, 1),
    },
  };
}
