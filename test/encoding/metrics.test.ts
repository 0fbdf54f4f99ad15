import { describe, expect, it } from 'vitest';

import { columnPearson, columnR2 } from '../../ts/encoding/metrics.js';
import { NonFiniteError, ShapeError } from '../../ts/errors.js';
import type { Matrix } from '../../ts/matrix.js';
import { pearson, r2 } from '../helpers/pearson.js';
import { rng } from '../helpers/random.js';

/** Columns side by side as a rows × cols matrix. */
function columns(cols: ArrayLike<number>[]): Matrix {
  const rows = cols[0].length;
  const data = new Float32Array(rows * cols.length);
  cols.forEach((c, j) => {
    for (let i = 0; i < rows; i++) data[i * cols.length + j] = c[i];
  });
  return { data, rows, cols: cols.length };
}

function column(m: Matrix, j: number): Float64Array {
  return Float64Array.from({ length: m.rows }, (_, i) => m.data[i * m.cols + j]);
}

describe('columnR2 and columnPearson', () => {
  it('score a constant measured column 0, as documented (one-pass sums left a rounding residual: R² −2e14, r 7e-8)', () => {
    // each constant level with the row count whose one-pass SST (saa − sa²/n) came out positive
    const cases: [number, number][] = [
      [3.3, 7], // R² was −2.2e14, r 6.7e-8
      [0.001, 30], // R² was −4.3e21, r 9.8e-10
      [-0.06128, 7], // R² was −9.0e17
      [123.4, 7], // R² was −2.1e11
      [-7.77, 7], // R² was −5.5e13
    ];
    for (const [level, n] of cases) {
      const v = Math.fround(level);
      const flat = Array.from({ length: n }, () => v);
      const moving = Array.from({ length: n }, (_, i) => v + Math.sin(i));
      const actual = columns([flat]), pred = columns([moving]);
      expect(columnR2(pred, actual)[0], `R² at level ${v}, ${n} rows`).toBe(0);
      expect(columnPearson(pred, actual)[0], `r at level ${v}, ${n} rows`).toBe(0);
      expect(columnPearson(actual, pred)[0], `r at level ${v}, ${n} rows (constant predictions)`).toBe(0);
    }
  });

  it('treat a column whose spread is a few float32 ulps of its level as constant (the engine\'s rule), and score a small real spread', () => {
    const level = Math.fround(1000);
    const ulp = Math.fround(level + 1e-4) - level; // 6.1e-5
    expect(ulp).toBeGreaterThan(0);
    // one value a ulp off: SD ≈ 0.5 ulp < 4·2⁻²⁴·1000 ≈ 4 ulps: rounding, not signal
    const nearlyFlat = Array.from({ length: 8 }, (_, i) => (i === 3 ? level + ulp : level));
    // a spread of 0.05 at level 1000 (800 ulps): real, scored like any column
    const g = rng(11);
    const small = Array.from({ length: 8 }, () => Math.fround(level + 0.05 * g()));
    const p = Array.from({ length: 8 }, () => Math.fround(level + 0.05 * g()));
    const actual = columns([nearlyFlat, small]), pred = columns([p, p]);
    const R2 = columnR2(pred, actual), r = columnPearson(pred, actual);
    expect(R2[0]).toBe(0);
    expect(r[0]).toBe(0);
    expect(R2[1]).toBeCloseTo(r2(column(pred, 1), column(actual, 1)), 4);
    expect(r[1]).toBeCloseTo(pearson(column(pred, 1), column(actual, 1)), 5);
    // a column about 0 with a tiny but real spread is not constant (the level is floored at float32's smallest normal)
    const tinyA = [1e-30, -1e-30, 2e-30, -2e-30], tinyP = [1e-30, -1e-30, 1e-30, -1e-30];
    expect(columnPearson(columns([tinyP]), columns([tinyA]))[0]).toBeCloseTo(pearson(Float32Array.from(tinyP), Float32Array.from(tinyA)), 5);
    // all zeros is constant
    expect(columnR2(columns([[1, 2, 3]]), columns([[0, 0, 0]]))[0]).toBe(0);
  });

  it('match float64 references on ordinary data, with an offset that one-pass sums lose digits to', () => {
    const g = rng(3);
    const n = 200, t = 5;
    const a = Array.from({ length: t }, (_, j) => Array.from({ length: n }, () => 500 * j + g()));
    const p = a.map((c) => c.map((v) => v + 0.7 * g()));
    const actual = columns(a), pred = columns(p);
    const R2 = columnR2(pred, actual), r = columnPearson(pred, actual);
    for (let j = 0; j < t; j++) {
      expect(R2[j]).toBeCloseTo(r2(column(pred, j), column(actual, j)), 5);
      expect(r[j]).toBeCloseTo(pearson(column(pred, j), column(actual, j)), 5);
    }
  });

  it('refuse NaN and Inf in either argument, naming it, the row and the column (a NaN used to score 0, like a constant column)', () => {
    const g = rng(5);
    const good = () => columns([0, 1, 2].map(() => Array.from({ length: 6 }, () => g())));
    for (const [fn, name] of [[columnPearson, 'columnPearson'], [columnR2, 'columnR2']] as const) {
      const actual = good();
      actual.data[4 * 3 + 2] = NaN;
      expect(() => fn(good(), actual)).toThrow(NonFiniteError);
      expect(() => fn(good(), actual)).toThrow(`${name}: actual contains NaN at row 4, column 2: inputs must be finite`);
      const pred = good();
      pred.data[1 * 3 + 0] = -Infinity;
      expect(() => fn(pred, good())).toThrow(`${name}: pred contains -Infinity at row 1, column 0: inputs must be finite`);
      expect(() => fn(good(), columns([[1, 2]]))).toThrow(ShapeError);
      expect(() => fn(good(), columns([[1, 2]]))).toThrow(`${name}: predictions are 6×3 but the measured data are 2×1`);
      expect(() => fn(good(), { data: new Float64Array(18), rows: 6, cols: 3 } as unknown as Matrix)).toThrow(/^\w+: actual: data is a Float64Array of 18 values, Float32Array expected/);
    }
  });
});
