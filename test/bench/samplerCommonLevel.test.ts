/**
 * `bench samplers`' cleaner convergence measure: the common noise level every grid of the run reaches, and each
 * deterministic scheduler's state there against the exact probability-flow ODE to it (the last step, which
 * trailing spacing never refines, is not in it), with its fitted order. A small mixture built in memory.
 */
import { describe, expect, it } from 'vitest';

import { commonLevelOrders, commonNoiseLevel } from '../../ts/bench/samplerOrder.js';
import { mixtureSigma, probabilityFlow, schedulerStateAt, type Mixture } from '../../ts/bench/samplerWorld.js';
import { sdAlphasCumprod } from '../../ts/demo/world.js';
import { referenceScheduler } from '../../ts/sd/referenceSchedulers.js';
import { SD1_SCHEDULE, type SchedulerName } from '../../ts/sd/schedulerConfig.js';

const trailing = { ...SD1_SCHEDULE, timestepSpacing: 'trailing' as const, setAlphaToOne: true };
const grid = (s: SchedulerName, n: number): number[] => {
  const sch = referenceScheduler(s, trailing);
  sch.setTimesteps(n);
  return sch.timesteps;
};

describe('commonNoiseLevel', () => {
  it('is the smallest timestep every grid reaches after its start', () => {
    expect(commonNoiseLevel([[999, 500, 100], [999, 700, 500, 300, 100, 50]])).toBe(100);
    // trailing spacing: 10, 20 and 40 steps share t = 99; 5, 10, 20 and 50 share t = 199 — Heun's doubled timesteps too
    expect(commonNoiseLevel([10, 20, 40].flatMap((n) => [grid('euler', n), grid('heun', n), grid('ddim', n)]))).toBe(99);
    expect(commonNoiseLevel([5, 10, 20, 50].map((n) => grid('dpmpp2m', n)))).toBe(199);
  });
  it('is null when the grids share nothing but the start', () => {
    expect(commonNoiseLevel([[999], [999, 499]])).toBeNull();
    expect(commonNoiseLevel([grid('euler', 3), grid('euler', 7)])).toBeNull();
    expect(commonNoiseLevel([])).toBeNull();
  });
});

describe('commonLevelOrders', () => {
  const rows = (s: string, calls: number[], errs: (number | undefined)[]) => calls.map((c, i) => ({ scheduler: s, unetCallsPerImage: c, relErrorCommon: errs[i] }));
  it('fits the errors at the common level with the floor, null without points or a floor', () => {
    const r = [...rows('euler', [10, 20, 40], [8e-4, 4e-4, 2e-4]), ...rows('heun', [19, 39, 79], [1e-3, 2.5e-4, 3e-7]), ...rows('ddpm', [10, 20], [undefined, undefined])];
    const o = commonLevelOrders(r, ['euler', 'heun', 'ddpm'], 1e-7);
    expect(o.euler).toBeCloseTo(1, 6);
    // heun's last point lies within 3× the floor: only the first pair is fitted
    expect(o.heun).toBeCloseTo(Math.log(4) / Math.log(39 / 19), 6);
    expect(o.ddpm).toBeNull();
    expect(commonLevelOrders(r, ['euler'], null).euler).toBeNull();
  });
});

describe('schedulerStateAt on a small mixture', () => {
  const K = 3;
  const d = 8;
  const mix: Mixture = {
    means: Float64Array.from({ length: K * d }, (_, i) => Math.sin(i * 1.3) * 0.8),
    K,
    d,
    s: 0.2,
    text: new Float64Array(K),
    textDim: 1,
    beta: 0,
    alphasCumprod: sdAlphasCumprod(),
    fractionalTimesteps: 'interpolated',
  };
  const w = new Float64Array(K).fill(1 / K);
  const noise = Float64Array.from({ length: d }, (_, i) => Math.cos(i * 0.7 + 0.3) * 1.1);
  const sigma99 = mixtureSigma(mix, 99);
  const exact = probabilityFlow(mix, w, noise.map((v) => v * mixtureSigma(mix, 999)), mixtureSigma(mix, 999), sigma99, 1e-10).x;
  const err = (s: SchedulerName, n: number): number => {
    const r = schedulerStateAt(mix, w, referenceScheduler(s, trailing), n, noise, 99, sigma99);
    let num = 0;
    let den = 0;
    for (let j = 0; j < d; j++) {
      num += (r.state[j] - exact[j]) ** 2;
      den += exact[j] ** 2;
    }
    return Math.sqrt(num / den);
  };

  it('stops where the run reaches the level: after the step onto it (Heun: after its second call there)', () => {
    expect(schedulerStateAt(mix, w, referenceScheduler('euler', trailing), 10, noise, 99, sigma99).callsToState).toBe(9);
    expect(schedulerStateAt(mix, w, referenceScheduler('heun', trailing), 10, noise, 99, sigma99).callsToState).toBe(18);
    expect(() => schedulerStateAt(mix, w, referenceScheduler('euler', trailing), 10, noise, 49, mixtureSigma(mix, 49))).toThrow(/not reached/);
  });

  it('converges to the exact ODE at that level: Euler and DDIM at order ≈ 1, Heun and DPM-Solver++(2M) faster', () => {
    const order = (s: SchedulerName, a: number, b: number): number => Math.log(err(s, a) / err(s, b)) / Math.log(b / a);
    for (const s of ['euler', 'ddim'] as const) {
      expect(err(s, 10)).toBeLessThan(0.05);
      expect(order(s, 20, 40)).toBeGreaterThan(0.85);
      expect(order(s, 20, 40)).toBeLessThan(1.2);
    }
    expect(order('heun', 20, 40)).toBeGreaterThan(1.6);
    expect(order('dpmpp2m', 20, 40)).toBeGreaterThan(1.5);
    // Euler and DDIM are the same method in different variables
    expect(err('ddim', 20)).toBeCloseTo(err('euler', 20), 5);
  });
});
