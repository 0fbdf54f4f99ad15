/**
 * A RidgeCV fit's memory plan (RidgeCV.costModel) in the words of whoever set its budget. The engine refuses a
 * budget below the fit's fixed part plus one target only when the fit starts, after whatever ran before it (an
 * hour of extraction and features in a batch): the preflights of encode, reconstruct and `ridge fit` refuse it up
 * front from the shapes, and their dry runs show the plan.
 */
import { OutOfMemoryError } from '../errors.js';
import type { NativeMemoryPlan, NativeRidgeSolver } from '../native/ridgeTypes.js';
import { BandedRidgeCV, type BandedRidgeCVOptions } from './BandedRidgeCV.js';
import { RidgeCV, type RidgeCVOptions } from './RidgeCV.js';

/** A fit's shape: samples × features → targets. */
export interface RidgeFitShape {
  rows: number;
  cols: number;
  targets: number;
}

export interface PlannedFit {
  route: NativeRidgeSolver;
  memory: NativeMemoryPlan;
}

/** The plan of a RidgeCV fit of `options` at this shape (folds: those of groups/foldIndex when they label `rows` samples). */
export function planRidgeFit(options: RidgeCVOptions, s: RidgeFitShape): PlannedFit {
  const { route, memory } = new RidgeCV(options).costModel(s.rows, s.cols, s.targets);
  return { route, memory };
}

/**
 * A banded fit's plan (BandedRidgeCV.costModel) at this shape, its feature spaces `bandSizes` columns wide (summing
 * to s.cols): the engine's own, on the per-fold route the fit would take.
 */
export function planBandedFit(options: BandedRidgeCVOptions, s: RidgeFitShape, bandSizes: readonly number[]): PlannedFit {
  const { route, memory } = new BandedRidgeCV(options).costModel(s.rows, bandSizes, s.targets);
  return { route, memory };
}

/** Bytes in GiB as the engine writes them (printf's %.3g), so that the figures of its messages and these read alike. */
export function gib(bytes: number): string {
  const g = Number((bytes / 2 ** 30).toPrecision(3));
  const e = g === 0 ? 0 : Math.floor(Math.log10(g));
  return `${e < -4 || e >= 3 ? g.toExponential().replace(/e([+-])(\d)$/, 'e$10$2') : String(g)} GiB`;
}

/** Bytes in the largest binary unit that leaves a number of 1 or more (B, KiB, MiB, GiB), 3 significant digits. */
export function bytesText(bytes: number): string {
  const units = ['B', 'KiB', 'MiB'];
  for (let k = 0; k < units.length; k++) if (bytes < 1024 ** (k + 1)) return `${Number((bytes / 1024 ** k).toPrecision(3))} ${units[k]}`;
  return gib(bytes);
}

/** GiB rounded up to 3 significant digits: a budget written this way is never below `bytes`. */
export function gibAtLeast(bytes: number): string {
  const g = bytes / 2 ** 30;
  const step = 10 ** (Math.floor(Math.log10(g)) - 2);
  return String(Number((Math.ceil(g / step) * step).toPrecision(3)));
}

/** How a fit is planned: planRidgeFit (RidgeCV), or planBandedFit with its band options and widths. */
export type FitPlanner = (options: RidgeCVOptions, s: RidgeFitShape) => PlannedFit;

/** Targets per batch the suggested budget holds: a budget of one target at a time runs, but slowly. */
export const SUGGESTED_BATCH = 64;

/**
 * The least budget (bytes) under which the fit runs SUGGESTED_BATCH targets at a time (all of them when it has
 * fewer). The budget also sizes the exact routes' alpha chunks, and so their fixed part: the budget is found from
 * the plans at the budgets tried, not from one plan.
 */
export function suggestedBudget(options: RidgeCVOptions, s: RidgeFitShape, plan: FitPlanner = planRidgeFit): number {
  const want = Math.min(SUGGESTED_BATCH, s.targets);
  let m = plan(options, s).memory;
  let budget = 0;
  for (let k = 0; k < 8; k++) {
    budget = Math.max(budget, Math.ceil(m.fixedBytes + m.bytesPerTarget * want) + 1);
    m = plan({ ...options, memoryBudget: budget }, s).memory;
    if (m.fits && m.targetBatch >= want) return budget;
  }
  return Math.ceil(budget * 1.05);
}

/** How a fit and its budget are named where the user set them. */
export interface BudgetWords {
  /** The fit, e.g. "fit 'z'" or "the z decoder". */
  what: string;
  /** The budget's setting, e.g. 'ridge.memoryBudget' or '--memory'. */
  field: string;
  /** The setting's unit: bytes (configs) or GiB (the CLI's --memory). */
  unit: 'bytes' | 'GiB';
  /** What the targets are, e.g. 'voxels' (default 'targets'). */
  targets?: string;
}

const count = (n: number) => n.toLocaleString('en');
const shapeText = (s: RidgeFitShape, noun: string) => `${count(s.rows)} samples × ${count(s.cols)} features → ${count(s.targets)} ${noun}`;

/**
 * The preflight's problem with a fit's budget (options.memoryBudget, bytes), or null: the fit would be refused
 * when it starts (its fixed part plus one target exceeds the budget). The message names the least the fit needs,
 * the route and shape it is for, the parts of the fixed footprint, the budget as given, and a budget to set.
 */
export function ridgeBudgetProblem(options: RidgeCVOptions, s: RidgeFitShape, w: BudgetWords, plan: FitPlanner = planRidgeFit): string | null {
  if (options.memoryBudget === undefined) return null;
  const p = plan(options, s);
  const m = p.memory;
  if (m.fits) return null;
  const noun = w.targets ?? 'targets';
  const budget = options.memoryBudget;
  const least = m.fixedBytes + m.bytesPerTarget;
  const raise = suggestedBudget(options, s, plan);
  const given = w.unit === 'bytes' ? `${budget} bytes (${gib(budget)})` : gib(budget);
  const batches = `batches of ${Math.min(SUGGESTED_BATCH, s.targets)} ${noun}`;
  const raiseTo = w.unit === 'bytes' ? `${raise} bytes (${gib(raise)}, ${batches})` : `${gibAtLeast(raise)} GiB (${batches})`;
  return (
    `${w.what} needs at least ${gib(least)} of work buffers (route ${p.route}, ${shapeText(s, noun)}: X's prepared copy ${gib(m.xCopyBytes)}, ` +
    `the route's Grams and decompositions ${gib(m.routeBytes)}, ${gib(m.fixedBytes)} fixed in all, plus ${bytesText(m.bytesPerTarget)} per ${noun.replace(/s$/, '')}); ` +
    `${w.field} is ${given}: raise it to at least ${raiseTo}, ` +
    "or leave it out for the engine's default, which grows to the fit"
  );
}

/** A dry run's line for a fit: its route, shape and memory plan (planned peak, batches) against its budget. */
export function ridgePlanLine(what: string, s: RidgeFitShape, p: PlannedFit, noun = 'targets'): string {
  const m = p.memory;
  return (
    `${what}: route ${p.route}, ${shapeText(s, noun)}; work buffers planned at most ${gib(m.fixedBytes + m.batchBytes)} of a ${gib(m.budgetBytes)} budget ` +
    `(fixed ${gib(m.fixedBytes)} + ${gib(m.batchBytes)} per batch), ${count(m.nBatches)} target batch${m.nBatches === 1 ? '' : 'es'} of ${count(m.targetBatch)}`
  );
}

/**
 * The engine's refusal of a budget, for a config user: the budget given in bytes beside the engine's GiB, and the
 * least budget it asks for in bytes (rounded up from its 3 significant digits) under the config's name, `field`.
 */
export function inConfigUnits(e: OutOfMemoryError, budget: number | undefined, field = 'ridge.memoryBudget'): OutOfMemoryError {
  let message = e.message;
  if (budget !== undefined) message = message.replace(/the memory budget of (\S+ GiB)/, (_, g: string) => `the memory budget of ${g} (${field}: ${budget} bytes)`);
  message = message.replace(/raise memoryBudget to at least ([0-9.]+(?:e[-+]?\d+)?) GiB/, (_, g: string) => {
    const v = Number(g);
    const ulp = 10 ** (Math.floor(Math.log10(v)) - 2);
    return `raise ${field} (in bytes) to at least ${Math.ceil((v + ulp) * 2 ** 30)} (${g} GiB)`;
  });
  if (message === e.message) return e;
  const out = new OutOfMemoryError(message, e.reason);
  out.stack = `${out.name}: ${message}\n${(e.stack ?? '').split('\n').slice(1).join('\n')}`;
  return out;
}
