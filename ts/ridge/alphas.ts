import { InvalidArgumentError } from '../errors.js';

/** 10 alphas log-spaced from 1e1 to 1e7 (the protocol of ridge.md §4). */
export const DEFAULT_ALPHAS: readonly number[] = Array.from({ length: 10 }, (_, i) => 10 ** (1 + (6 * i) / 9));

/** `count` values log-spaced from start to stop inclusive (numpy.logspace on the exponents). */
export function logspace(start: number, stop: number, count: number): number[] {
  if (!(start > 0) || !(stop > 0)) throw new InvalidArgumentError(`alphas: log-spaced bounds must be > 0, got ${start}:${stop}`);
  if (!Number.isInteger(count) || count < 1) throw new InvalidArgumentError(`alphas: count must be a positive integer, got ${count}`);
  if (count === 1) return [start];
  const a = Math.log10(start), b = Math.log10(stop);
  return Array.from({ length: count }, (_, i) => 10 ** (a + ((b - a) * i) / (count - 1)));
}

/**
 * Parses an alpha grid: a comma-separated list ("1,10,100") or `start:stop:count`
 * log-spaced ("1e1:1e7:10").
 */
export function parseAlphas(text: string): number[] {
  const t = text.trim();
  let alphas: number[];
  if (t.includes(':')) {
    const parts = t.split(':').map((s) => Number(s));
    if (parts.length !== 3 || parts.some((x) => !Number.isFinite(x))) {
      throw new InvalidArgumentError(`alphas: expected start:stop:count such as 1e1:1e7:10, got '${text}'`);
    }
    alphas = logspace(parts[0], parts[1], parts[2]);
  } else {
    alphas = t.split(',').map((s) => Number(s.trim()));
  }
  validateAlphas(alphas, 'alphas');
  return alphas;
}

/** Every alpha a finite number > 0, at least one. */
export function validateAlphas(alphas: ArrayLike<number>, what: string): void {
  if (alphas.length === 0) throw new InvalidArgumentError(`${what}: need at least one alpha`);
  for (let i = 0; i < alphas.length; i++) {
    const a = alphas[i];
    if (typeof a !== 'number' || !Number.isFinite(a) || a <= 0) {
      throw new InvalidArgumentError(`${what}: every alpha must be finite and > 0, got ${String(a)} at position ${i}`);
    }
  }
}

/** Share of targets on one edge of the alpha grid above which a fit is flagged (`ridge fit`, `reconstruct`, `demo`). */
export const ALPHA_EDGE_SHARE = 0.05;

/**
 * The warning for a fit whose chosen alphas crowd an edge of the grid (more than 5% of targets at the smallest
 * or the largest alpha: the optimum may lie outside the grid), or null. `edgeLow`/`edgeHigh` are the shares
 * the engine reports (RidgeModel.info).
 */
export function alphaEdgeWarning(edgeLow: number, edgeHigh: number, alphas?: ArrayLike<number>, what = 'targets'): string | null {
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
