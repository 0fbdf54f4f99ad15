/**
 * The one mulberry32 of the code base (ts/synth/rng.ts): the plain stream `mulberry32(seed)` (the bench's bootstrap
 * draws, the sd fixtures' weights) and `Rng`, the same generator with its seed mixed. Values captured before the
 * copies in ts/bench/mixtureSlicedW2.ts and ts/sd/fixture.ts were replaced by it: every stream must stay as it was.
 */
import { describe, expect, it } from 'vitest';

import { rng as fixtureWeights } from '../../ts/sd/fixture.js';
import { mulberry32, Rng } from '../../ts/synth/rng.js';

describe('mulberry32', () => {
  it('draws the published mulberry32 stream from its seed (uint32 outputs / 2^32)', () => {
    const draws = (seed: number, k: number): number[] => {
      const r = mulberry32(seed);
      return Array.from({ length: k }, () => r() * 2 ** 32);
    };
    expect(draws(2024, 4)).toEqual([3486492848, 3052955074, 2793987405, 2943453892]);
    expect(draws(7, 4)).toEqual([50271532, 266108690, 4195786334, 3002305430]);
    expect(draws(0, 4)).toEqual([1144304738, 1416247, 958946056, 627933444]);
    // the seed is taken as a uint32
    expect(draws(-1, 2)).toEqual(draws(0xffffffff, 2));
  });

  it('Rng keeps its own stream (seed mixed with 0x9e3779b9): synthetic data do not change', () => {
    const r = new Rng(42);
    expect([r.next(), r.next(), r.next()].map((v) => v * 2 ** 32)).toEqual([2067236868, 4231632130, 3169330198]);
    expect(r.normal()).toBe(-0.28421348790145684);
    expect(r.int(1000)).toBe(965);
    // the same generator as mulberry32 from the mixed seed
    const m = mulberry32((42 ^ 0x9e3779b9) >>> 0);
    const s = new Rng(42);
    for (let i = 0; i < 5; i++) expect(s.next()).toBe(m());
  });

  it("the sd fixture's uniform(−1, 1) weights are unchanged", () => {
    const r = fixtureWeights(5);
    expect([r(), r(), r()]).toEqual([0.37954982183873653, 0.545486546587199, -0.5604739794507623]);
  });
});
