/**
 * A column of X that is zero once prepared — constant with an intercept, all zero without — has the coefficient 0
 * exactly: its only term in the penalised loss is α·w². The float32 eigenvectors mixed it with the Gram's other weak
 * directions (review s44: 120 × 15 with duplicated rows, an all-zero and a constant column weighted up to 5e-3,
 * against 1e-12 with float64 eigensolves). Dead units are common in a network's feature tables.
 */
import { describe, expect, it } from 'vitest';

import { BandedRidgeCV } from '../../ts/ridge/BandedRidgeCV.js';
import { RidgeCV, type RidgeCVOptions } from '../../ts/ridge/RidgeCV.js';
import { rng } from '../helpers/random.js';

const [n, p, t] = [120, 15, 4];
const ZERO = 7, CONSTANT = 3;

/** 60 distinct rows each twice (an ill-conditioned Gram), a zero and a constant column; Y from the others. */
function data(seed: number) {
  const g = rng(seed);
  const base = Float32Array.from({ length: (n / 2) * p }, () => g());
  const x = new Float32Array(n * p);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < p; j++) x[i * p + j] = j === ZERO ? 0 : j === CONSTANT ? 5 : base[(i % (n / 2)) * p + j];
  }
  const y = new Float32Array(n * t);
  for (let i = 0; i < n; i++) for (let k = 0; k < t; k++) for (let j = 0; j < p; j++) y[i * t + k] += x[i * p + j] * Math.sin(1 + j * t + k) + 0.3 * g();
  return { x: { data: x, rows: n, cols: p }, y: { data: y, rows: n, cols: t } };
}

const row = (coef: { data: Float32Array }, j: number) => Array.from(coef.data.subarray(j * t, (j + 1) * t));
const alphas = [0.01, 0.1, 1, 10, 100, 1000];

describe('a column of X that is zero once prepared gets the coefficient 0 exactly', () => {
  const cases: [string, Partial<RidgeCVOptions>][] = [
    ['auto', {}],
    ['per-fold primal', { route: 'primal', cvMethod: 'per-fold' }],
    ['per-fold kernel', { route: 'kernel', cvMethod: 'per-fold' }],
    ['exact primal', { route: 'primal', cvMethod: 'exact' }],
    ['exact kernel', { route: 'kernel', cvMethod: 'exact' }],
    ['standardized', { standardize: true }],
  ];
  it.each(cases)('RidgeCV, %s', async (_what, options) => {
    const { x, y } = data(3);
    const m = await new RidgeCV({ alphas, folds: 5, eigPrecision: 'float32', ...options }).fit(x, y);
    expect(row(m.coef, ZERO)).toEqual([0, 0, 0, 0]);
    expect(row(m.coef, CONSTANT)).toEqual([0, 0, 0, 0]);
    // the others are fitted
    expect(Math.max(...row(m.coef, 0).map(Math.abs))).toBeGreaterThan(0.1);
  });

  it('without an intercept: the zero column only (the constant one carries the level)', async () => {
    const { x, y } = data(4);
    const m = await new RidgeCV({ alphas, folds: 5, fitIntercept: false, eigPrecision: 'float32' }).fit(x, y);
    expect(row(m.coef, ZERO)).toEqual([0, 0, 0, 0]);
    expect(Math.max(...row(m.coef, CONSTANT).map(Math.abs))).toBeGreaterThan(1e-3);
  });

  it('banded ridge', async () => {
    const { x, y } = data(5);
    const split = (j0: number, j1: number) => {
      const d = new Float32Array(n * (j1 - j0));
      for (let i = 0; i < n; i++) d.set(x.data.subarray(i * p + j0, i * p + j1), i * (j1 - j0));
      return { data: d, rows: n, cols: j1 - j0 };
    };
    const m = await new BandedRidgeCV({ alphas, nIter: 5, folds: 5 }).fit({ a: split(0, 8), b: split(8, p) }, y);
    expect(row(m.coef, ZERO)).toEqual([0, 0, 0, 0]);
    expect(row(m.coef, CONSTANT)).toEqual([0, 0, 0, 0]);
  });
});
