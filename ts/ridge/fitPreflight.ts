/**
 * A ridge fit's inputs checked from their .npy headers before X and Y are read (a fit can take minutes): each file
 * there, X and Y 2-D float arrays (Y also 1-D), one row per sample in X, Y and the groups, enough rows for the folds
 * and enough groups to fill them, and then the memory budget against the fit's plan. One implementation for
 * `brainlatent ridge fit` (its flags name the inputs: '--x') and the service's ridge-fit job at submission (its
 * config's fields: 'body.config.x'); every problem is kept, so a caller refuses once, listing them all.
 */
import { BrainlatentError, FormatError, InvalidArgumentError, OutOfMemoryError, ShapeError } from '../errors.js';
import { matrixShapeOf, readIntVectorNpy, readNpyHeader, type NpyHeader } from '../io/npy.js';
import { ridgeBudgetProblem, type RidgeFitShape } from './memoryPlan.js';
import type { RidgeCVOptions } from './RidgeCV.js';

/** Where each input was named, as the refusals say it: '--x' on the command line, 'body.config.x' in a job. */
export interface FitInputNames {
  x: string;
  y: string;
  groups: string;
  folds: string;
  /** The memory budget: '--memory', 'body.config.memoryGiB' (in GiB either way). */
  memory: string;
  /** The fit, in the budget's refusal: 'ridge fit', 'body.config: the ridge fit'. */
  fit: string;
}

/** The files and the folds; `folds` undefined when it was refused already (nothing to hold against the rows). */
export interface FitInputs {
  x: string;
  y: string;
  groups?: string;
  folds?: number;
}

/** Where the checks keep their refusals (the CLI's FlagProblems): each with the name of its input. */
export interface ProblemList {
  take<T>(check: () => T, name?: string): T | undefined;
  takeAsync<T>(check: () => Promise<T>, name?: string): Promise<T | undefined>;
  add(error: BrainlatentError, name?: string): void;
  readonly count: number;
}

/** How Y is read: a 1-D y is one target (n × 1), as scikit-learn takes it; X must be 2-D (samples × features). */
export const Y_READ = { vector: 'column' } as const;

/** X or Y as its header describes it: a 2-D float32 or float64 array (Y also 1-D), as readMatrixNpy will read it. */
function checkMatrixHeader(h: NpyHeader, path: string, what: string, opts: { vector?: 'column' } = {}): void {
  if (!matrixShapeOf(h.shape, opts)) {
    const or = opts.vector === 'column' ? ' or a 1-D array (samples: one target)' : '';
    throw new ShapeError(`${what} (${path}): expected a 2-D array (samples × columns)${or}, got shape (${h.shape.join(', ')})`);
  }
  if (h.dtype !== 'float32' && h.dtype !== 'float64') throw new FormatError(`${what} (${path}): expected float32 or float64 data, got ${h.dtype}`, { path, field: 'descr' });
  // (the fit refused it only once it had started, as 'RidgeCV.fit: Y is empty (200×0)', naming no file; review s44)
  if (h.shape.length === 2 && h.shape[1] === 0) {
    throw new ShapeError(`${what} (${path}): has no columns, shape (${h.shape.join(', ')}); expected at least one ${what === 'X' ? 'feature' : 'target'} column`);
  }
}

/** The groups as their header describes them: a vector (n or n × 1) of numbers, as readIntVectorNpy will read it. */
function checkGroupsHeader(h: NpyHeader, path: string): void {
  if (h.shape.length !== 1 && !(h.shape.length === 2 && h.shape[1] === 1)) throw new ShapeError(`groups (${path}): expected a 1-D array, got shape (${h.shape.join(', ')})`);
  if (h.dtype === 'bool') throw new FormatError(`groups (${path}): expected integers, got a boolean array`, { path, field: 'descr' });
}

/**
 * One row per sample in every input, from the headers (of the right rank, whatever their type: an int32 X refused
 * still has its rows): a mismatch is named by file before anything is read. The groups are held against X, or Y.
 */
function rowProblems(f: FitInputs, n: FitInputNames, x: NpyHeader | undefined, y: NpyHeader | undefined, groups: NpyHeader | undefined): ShapeError[] {
  const rowsOf = (h: NpyHeader | undefined, ok: (shape: number[]) => boolean) => (h && ok(h.shape) ? h.shape[0] : undefined);
  const matrix = (shape: number[]) => shape.length === 2;
  const [xRows, yRows] = [rowsOf(x, matrix), rowsOf(y, (shape) => matrixShapeOf(shape, Y_READ) !== null)];
  const gRows = rowsOf(groups, (shape) => shape.length === 1 || (shape.length === 2 && shape[1] === 1));
  const out: ShapeError[] = [];
  if (xRows !== undefined && yRows !== undefined && yRows !== xRows) out.push(new ShapeError(`${n.y} ${f.y} has ${yRows} rows but ${n.x} ${f.x} has ${xRows}; one row per sample in both`));
  const [name, path, rows] = xRows !== undefined ? [n.x, f.x, xRows] : [n.y, f.y, yRows];
  if (gRows !== undefined && rows !== undefined && gRows !== rows) {
    out.push(new ShapeError(`${n.groups} ${f.groups} has ${gRows} entries but ${name} ${path} has ${rows} rows; one group label (e.g. the image id) per row`));
  }
  return out;
}

/** Grouped folds take whole groups: fewer distinct groups than folds cannot fill them (the engine would refuse). */
function groupCountProblem(f: FitInputs, n: FitInputNames, groups: Int32Array, folds: number): InvalidArgumentError | undefined {
  const count = new Set(groups).size;
  if (count >= folds) return undefined;
  return new InvalidArgumentError(
    `${n.groups} ${f.groups} has ${count} distinct group${count === 1 ? '' : 's'} but ${n.folds} is ${folds}; expected at least one group per fold (a group never straddles folds)`,
  );
}

/**
 * The folds against the rows of X, from its header: every validation fold needs 2 samples (RidgeCV refuses a fold of
 * one, its score undefined), contiguous or of whole groups, so k folds need 2k rows. The library says so too, but
 * only once the data is read, and names its option, not the flag (or field) or the file.
 */
function foldsProblem(f: FitInputs, n: FitInputNames, folds: number, x: NpyHeader): InvalidArgumentError | null {
  const rows = x.shape[0];
  if (2 * folds <= rows) return null;
  const most = Math.floor(rows / 2);
  return new InvalidArgumentError(
    `${n.folds} ${folds} needs ${2 * folds} rows (samples) at least, 2 per validation fold, but ${n.x} ${f.x} has ${rows}` +
      (most >= 2 ? `; use at most ${most} folds` : '; too few for cross-validation (2 folds of 2 samples at least)'),
  );
}

/** What the checks found out: the headers and the groups where they could be read, the fit's shape when all is sound. */
export interface CheckedFitInputs {
  x?: NpyHeader;
  y?: NpyHeader;
  groups?: Int32Array;
  /** Set when no problem was found (none before these checks either): what the fit's memory is planned with. */
  shape?: RidgeFitShape;
}

/**
 * The inputs' headers (each file there, its shape and type), their rows, the folds against them and the groups (small,
 * read whole) against the folds; each refusal is kept in `p` under the name of its input. `shape` is set only when `p`
 * holds no problem at all, the caller's own included.
 */
export async function checkFitInputs(p: ProblemList, f: FitInputs, n: FitInputNames): Promise<CheckedFitInputs> {
  const x = await p.takeAsync(() => readNpyHeader(f.x), n.x);
  if (x) p.take(() => checkMatrixHeader(x, f.x, 'X'), n.x);
  const y = await p.takeAsync(() => readNpyHeader(f.y), n.y);
  if (y) p.take(() => checkMatrixHeader(y, f.y, 'Y', Y_READ), n.y);
  const groupsHeader = f.groups === undefined ? undefined : await p.takeAsync(() => readNpyHeader(f.groups!), n.groups);
  const groupsOk = groupsHeader !== undefined && p.take(() => (checkGroupsHeader(groupsHeader, f.groups!), true), n.groups) === true;
  for (const e of rowProblems(f, n, x, y, groupsHeader)) p.add(e);
  const tooMany = x && x.shape.length === 2 && f.folds !== undefined ? foldsProblem(f, n, f.folds, x) : null;
  if (tooMany) p.add(tooMany, n.folds);
  const groups = groupsOk ? await p.takeAsync(() => readIntVectorNpy(f.groups!, 'groups'), n.groups) : undefined;
  if (groups && f.folds !== undefined) {
    const e = groupCountProblem(f, n, groups, f.folds);
    if (e) p.add(e);
  }
  const shape = p.count === 0 && x && y ? { rows: x.shape[0], cols: x.shape[1], targets: matrixShapeOf(y.shape, Y_READ)![1] } : undefined;
  return { x, y, groups, shape };
}

/**
 * A memory budget (options.memoryBudget) the fit would refuse when it starts — below its fixed part plus one target,
 * planned by the engine from the shape — kept in `p`. What the library refuses in these options or shapes (an empty
 * X, say) is left to the fit, which names it.
 */
export function checkFitBudget(p: ProblemList, options: RidgeCVOptions, shape: RidgeFitShape, n: FitInputNames): void {
  try {
    const problem = ridgeBudgetProblem(options, shape, { what: n.fit, field: n.memory, unit: 'GiB' });
    if (problem) p.add(new OutOfMemoryError(problem, 'budget'));
  } catch (e) {
    if (!(e instanceof BrainlatentError)) throw e;
  }
}
