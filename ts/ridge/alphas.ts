import { InvalidArgumentError } from '../errors.js';

/** 10 alphas log-spaced from 1e1 to 1e7 (the protocol of ridge.md §4). */
export const DEFAULT_ALPHAS: readonly number[] = Array.from({ length: 10 }, (_, i) => 10 ** (1 + (6 * i) / 9));

/**
 * Most alphas a grid may hold. Every alpha is scored for every target in every fold (a few hundred cost minutes at
 * NSD's size; 10–30 log-spaced ones are usual): a count typed with extra digits (1e1:1e7:5000000) took 20 GB and
 * minutes before any message, or failed as "Map maximum size exceeded".
 */
export const MAX_ALPHAS = 1000;

const tooMany = (what: string, count: number) =>
  new InvalidArgumentError(`${what}: ${count} alphas is more than the ${MAX_ALPHAS} a grid may hold (each is scored for every target in every fold; 10–30 log-spaced alphas are usual)`);

/** `count` values log-spaced from start to stop inclusive (numpy.logspace on the exponents). */
export function logspace(start: number, stop: number, count: number): number[] {
  // (a bound typed as 1e400 reads as Infinity: its logarithm would make every alpha NaN or Infinity)
  // (named 'alphas: ', as parseAlphas' other errors are: a config or a flag puts its own name in its place)
  if (!(start > 0 && Number.isFinite(start)) || !(stop > 0 && Number.isFinite(stop))) {
    throw new InvalidArgumentError(`alphas: expected finite log-spaced bounds > 0, got ${start}:${stop}`);
  }
  if (!Number.isInteger(count) || count < 1) throw new InvalidArgumentError(`alphas: expected an integer count >= 1, got ${describeNumber(count)}`);
  if (count > MAX_ALPHAS) throw tooMany('alphas', count);
  if (count === 1) return [start];
  const a = Math.log10(start), b = Math.log10(stop);
  return Array.from({ length: count }, (_, i) => 10 ** (a + ((b - a) * i) / (count - 1)));
}

/** A plain decimal number as typed ("10", "1e-3", ".5"): no hex, no 'Infinity', no blank (which Number() reads as 0). */
export const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

const EXAMPLES = "a list such as 1,10,100 or start:stop:count such as 1e1:1e7:10";

/** One item of a list as a number; an empty or non-numeric item is refused as typed, with its position. */
function listItem(item: string, position: number, text: string): number {
  const t = item.trim();
  if (t === '') throw new InvalidArgumentError(`alphas: the item at position ${position} of '${text}' is empty; expected a number`);
  if (!DECIMAL.test(t)) throw new InvalidArgumentError(`alphas: the item '${t}' at position ${position} of '${text}' is not a number`);
  return Number(t);
}

/**
 * Parses an alpha grid: a comma-separated list ("1,10,100") or `start:stop:count` log-spaced ("1e1:1e7:10"), every
 * alpha > 0 and distinct. A log-spaced grid between two different ends needs a count of at least 2 (with 1 it
 * would be its start alone); `a:a:1` is the one alpha a. Items are reported as typed: "1,,10" has an empty item,
 * "abc" is not a number.
 */
export function parseAlphas(text: string): number[] {
  const t = text.trim();
  if (t === '') throw new InvalidArgumentError(`alphas: expected ${EXAMPLES}, got an empty string`);
  let alphas: number[];
  if (t.includes(':')) {
    // each part a number as typed: an empty one ('1e1:1e7:') is not read as 0
    const parts = t.split(':').map((p) => p.trim());
    if (parts.length !== 3 || !parts.every((p) => DECIMAL.test(p))) {
      throw new InvalidArgumentError(`alphas: expected start:stop:count such as 1e1:1e7:10, got '${t}'`);
    }
    const [start, stop, count] = parts.map(Number);
    for (const [i, end] of [[0, 'start'], [1, 'stop']] as const) {
      if (!Number.isFinite([start, stop][i])) {
        throw new InvalidArgumentError(`alphas: the ${end} '${parts[i]}' of '${t}' is beyond float64's range (it reads as ${[start, stop][i]}); expected a finite number > 0`);
      }
    }
    if (count === 1 && start !== stop) {
      const [a, b] = parts;
      throw new InvalidArgumentError(`alphas: '${t}' has a count of 1 between two different ends (${a} and ${b}); a log-spaced grid needs at least 2 points`);
    }
    alphas = logspace(start, stop, count);
  } else {
    alphas = t.split(',').map((item, i) => listItem(item, i, t));
  }
  validateAlphas(alphas, 'alphas', t);
  return alphas;
}

/**
 * A value where a number was expected, for "got ...": a number as itself (NaN, -1), anything else with its type,
 * so that a string "10" is not mistaken for the number 10.
 */
export function describeNumber(v: unknown): string {
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (v === null || v === undefined) return String(v);
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

/** An alpha listed again: its value, its first position and the position of the repeat. */
export interface RepeatedAlpha {
  alpha: number;
  first: number;
  at: number;
}

/** Every alpha listed again after its first position, in order. */
export function repeatedAlphas(alphas: ArrayLike<number>): RepeatedAlpha[] {
  const firstAt = new Map<number, number>();
  const repeats: RepeatedAlpha[] = [];
  for (let i = 0; i < alphas.length; i++) {
    const first = firstAt.get(alphas[i]);
    if (first === undefined) firstAt.set(alphas[i], i);
    else repeats.push({ alpha: alphas[i], first, at: i });
  }
  return repeats;
}

/** A repeat as every grid check words it (the library, --alphas, configs, HTTP); `typed`, the text it was parsed from. */
export function repeatedAlphaProblem(r: RepeatedAlpha, typed?: string): string {
  return `the alphas must be distinct, got ${r.alpha} at positions ${r.first} and ${r.at}${typed === undefined ? '' : ` of '${typed}'`}`;
}

/**
 * Every alpha a finite number > 0, also in float32 (the chosen alphas are stored as float32: 1e39 would be
 * reported as Infinity, 1e-50 as 0), at least one, none repeated (a repeat is a typo, not a grid: it is scored
 * twice and gets two rows of cvScores). `typed`: the text the grid was parsed from, named with a repeat's positions.
 */
export function validateAlphas(alphas: ArrayLike<number>, what: string, typed?: string): void {
  if (alphas.length === 0) throw new InvalidArgumentError(`${what}: need at least one alpha`);
  if (alphas.length > MAX_ALPHAS) throw tooMany(what, alphas.length);
  for (let i = 0; i < alphas.length; i++) {
    const a: unknown = alphas[i];
    if (typeof a !== 'number' || !Number.isFinite(a) || a <= 0) {
      throw new InvalidArgumentError(`${what}: every alpha must be finite and > 0, got ${describeNumber(a)} at position ${i}`);
    }
    const f = Math.fround(a);
    if (!Number.isFinite(f) || f <= 0) {
      throw new InvalidArgumentError(`${what}: every alpha must be finite and > 0 in float32 (1.4e-45 to 3.4e38), got ${a} at position ${i}, which is ${f} in float32`);
    }
  }
  const [repeat] = repeatedAlphas(alphas);
  if (repeat) throw new InvalidArgumentError(`${what}: ${repeatedAlphaProblem(repeat, typed)}`);
  // (the engine scores float32 alphas: two that round to one are one alpha scored twice, its targets all on the second)
  const [same] = repeatedAlphas(Array.from({ length: alphas.length }, (_, i) => Math.fround(alphas[i])));
  if (same) {
    throw new InvalidArgumentError(
      `${what}: the alphas must be distinct in float32, got ${alphas[same.first]} and ${alphas[same.at]} at positions ${same.first} and ${same.at}${typed === undefined ? '' : ` of '${typed}'`}, both ${same.alpha} in float32`,
    );
  }
}

/** Share of targets on one edge of the alpha grid above which a fit is flagged (`ridge fit`, `reconstruct`, `demo`). */
export const ALPHA_EDGE_SHARE = 0.05;

/**
 * The warning for a fit whose chosen alphas crowd an edge of the grid (more than 5% of targets at the smallest
 * or the largest alpha: the optimum may lie outside the grid), or null. `edgeLow`/`edgeHigh` are the shares
 * the engine reports (RidgeModel.info); `alphas`, the grid, names the edge values (a one-alpha grid: null).
 */
export function alphaEdgeWarning(edgeLow: number, edgeHigh: number, alphas?: ArrayLike<number>, what = 'targets'): string | null {
  // one alpha (a documented grid: 1e1:1e1:1) is chosen by every target by design; there is no edge to widen
  if (alphas && alphas.length < 2) return null;
  const low = edgeLow > ALPHA_EDGE_SHARE, high = edgeHigh > ALPHA_EDGE_SHARE;
  if (!low && !high) return null;
  const at = (i: number) => (alphas && alphas.length ? ` (${Number(alphas[i]).toExponential(0)})` : '');
  const n = alphas?.length ?? 0;
  const parts = [
    ...(low ? [`${(100 * edgeLow).toFixed(1)}% of ${what} chose the smallest alpha${at(0)}`] : []),
    ...(high ? [low ? `${(100 * edgeHigh).toFixed(1)}% the largest${at(n - 1)}` : `${(100 * edgeHigh).toFixed(1)}% of ${what} chose the largest alpha${at(n - 1)}`] : []),
  ];
  return `${parts.join(' and ')}; consider widening the grid ${low && high ? 'at both ends' : low ? 'downwards' : 'upwards'}`;
}
