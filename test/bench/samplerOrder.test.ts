/**
 * The measured convergence order of `bench samplers` is fitted above a floor estimated from the references, not
 * from the results being fitted. The old floor was the best error any scheduler reached, so the most accurate
 * scheduler always lost its own last point: with --steps 5,10,20 (5 steps still pre-asymptotic) DPM-Solver++(2M)
 * showed no order at all though its errors fell from 1.75e-4 to 7.35e-5.
 */
import { describe, expect, it } from 'vitest';

import { convergenceOrder, FLOOR_MARGIN, measuredOrders, offGrid } from '../../ts/bench/samplerOrder.js';

/** err = C / calls^p + floor, with the pre-asymptotic first point (wrong mixture component) at 0.8. */
const curve = (calls: number[], C: number, p: number, floor: number, wrongAtFirst = false) =>
  calls.map((n, i) => ({ calls: n, err: wrongAtFirst && i === 0 ? 0.8 : C / n ** p + floor }));

describe('convergenceOrder', () => {
  it('keeps the best scheduler\'s points when the floor comes from the reference (the old min-over-results rule dropped them)', () => {
    const roundOff = 1e-6;
    const best = curve([5, 10, 20], 0.04, 2, roundOff, true); // 0.8, 4.01e-4, 1.01e-4
    const first = curve([5, 10, 20], 0.02, 1, roundOff, true); // 0.8, 2.0e-3, 1.0e-3
    const oldFloor = Math.min(...[...best, ...first].map((p) => p.err));
    expect(convergenceOrder(best, oldFloor)).toBeNull();
    expect(convergenceOrder(best, roundOff)).toBeCloseTo(2, 1);
    expect(convergenceOrder(first, roundOff)).toBeCloseTo(1, 2);
  });

  it('leaves out the points flattened on the floor and the pre-asymptotic ones', () => {
    const f = 1e-5;
    const pts = curve([5, 10, 20, 40, 80, 160, 320], 0.04, 2, f, true);
    const all = convergenceOrder(pts, 0) as number; // every pair below 0.1, flattened ones included
    const fitted = convergenceOrder(pts, f) as number; // only errors above 3e-5: 10, 20, 40 calls
    expect(all).toBeLessThan(1.2);
    expect(fitted).toBeGreaterThan(1.7);
    expect(fitted).toBeLessThan(2.05);
    // exactly the pairs whose errors both exceed FLOOR_MARGIN × floor
    const kept = pts.filter((p) => p.err < 0.1 && p.err > FLOOR_MARGIN * f);
    expect(kept.map((p) => p.calls)).toEqual([10, 20, 40]);
  });

  it('is null without a qualifying pair, and ignores non-finite errors', () => {
    expect(convergenceOrder([{ calls: 10, err: 1e-5 }, { calls: 20, err: 1e-5 }], 1e-5)).toBeNull();
    expect(convergenceOrder([{ calls: 10, err: Number.NaN }, { calls: 20, err: 1e-3 }], 0)).toBeNull();
    expect(convergenceOrder([{ calls: 10, err: 2e-3 }, { calls: 10, err: 1e-3 }], 0)).toBeNull();
  });
});

describe('measuredOrders', () => {
  const rows = (scheduler: string, calls: number[], conv: number[], exact?: number[]) =>
    calls.map((n, i) => ({ scheduler, unetCallsPerImage: n, relErrorConverged: conv[i], relErrorExact: exact?.[i] }));

  it('fits each scheduler against the floors it is given, not against the other schedulers\' results', () => {
    const result = [
      ...rows('euler', [5, 10, 20], [0.8, 2e-3, 1e-3], [0.8, 2e-3, 1e-3]),
      ...rows('dpmpp2m', [5, 10, 20], [0.8, 4e-4, 1e-4], [0.8, 1.75e-4, 7.35e-5]),
      { scheduler: 'ddpm', unetCallsPerImage: 10 }, // stochastic: no accuracy figures
    ];
    const o = measuredOrders(result, ['euler', 'dpmpp2m', 'ddpm'], { vsConverged: 1e-6, vsExact: 2e-5 });
    expect(o.euler.vsConverged).toBeCloseTo(1, 6);
    expect(o.dpmpp2m.vsConverged).toBeCloseTo(2, 6);
    expect(o.dpmpp2m.vsExact).toBeCloseTo(Math.log2(1.75e-4 / 7.35e-5), 6);
    expect(o.ddpm).toEqual({ vsConverged: null, vsExact: null });
  });

  it('has no order against the exact ODE when there is no exact reference (not a demo world)', () => {
    const o = measuredOrders(rows('ddim', [10, 20], [2e-3, 1e-3]), ['ddim'], { vsConverged: 1e-6, vsExact: null });
    expect(o.ddim).toEqual({ vsConverged: expect.closeTo(1, 6), vsExact: null });
  });

  it('leaves out runs off their grid (DDIM/PNDM when N does not divide 1000): DDIM at 3 and 7 steps fitted an order of −4.43', () => {
    // `bench samplers --steps 3,7 --schedulers ddim,euler` on the demo world: DDIM at 7 steps steps by 142 where the grid
    // moves by 143, and ends 3.98e-2 from the exact ODE where Euler on the same grid is 6.8e-4
    const run = (scheduler: string, calls: number, exact: number, off = false) => ({
      scheduler,
      unetCallsPerImage: calls,
      relErrorConverged: exact * 10,
      relErrorExact: exact,
      ...(off ? { offGrid: true } : {}),
    });
    const floors = { vsConverged: 1e-6, vsExact: 3e-8 };
    const short = measuredOrders([run('ddim', 3, 9.28e-4), run('ddim', 7, 3.98e-2, true), run('euler', 3, 9.26e-4), run('euler', 7, 6.82e-4)], ['ddim', 'euler'], floors);
    expect(short.ddim).toEqual({ vsConverged: null, vsExact: null }); // one run on its grid: no order, not −4.43
    expect(short.euler.vsExact).toBeCloseTo(Math.log(9.26e-4 / 6.82e-4) / Math.log(7 / 3), 6);
    // 10, 14, 20, 40 steps: the fit skips 14 and takes 10 → 20 as consecutive
    const long = measuredOrders([run('pndm', 10, 8e-3), run('pndm', 14, 5e-2, true), run('pndm', 20, 1e-3), run('pndm', 40, 1.25e-4)], ['pndm'], floors);
    expect(long.pndm.vsExact).toBeCloseTo(3, 6);
    expect(long.pndm.vsConverged).toBeCloseTo(3, 6);
  });
});

describe('offGrid', () => {
  it('is DDIM and PNDM at step counts that do not divide num_train_timesteps, nothing else', () => {
    expect([3, 7, 8, 10, 14, 20, 28, 40, 400].filter((n) => offGrid('ddim', n, 1000))).toEqual([3, 7, 14, 28, 400]);
    expect(offGrid('pndm', 14, 1000)).toBe(true);
    expect(offGrid('pndm', 20, 1000)).toBe(false);
    expect(offGrid('ddim', 7, 700)).toBe(false);
    for (const s of ['euler', 'heun', 'lms', 'dpmpp2m', 'unipc', 'ddpm', 'euler-ancestral', 'dpmpp2m-sde']) expect(offGrid(s, 7, 1000)).toBe(false);
  });
});
