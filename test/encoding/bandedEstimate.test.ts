/**
 * The dry run's banded-ridge estimate: probes at 1 and c2 candidates (3 or more), 1 and 512 targets, read as a fixed part +
 * a part per target, per candidate and once. Timings made from a known cost recover it exactly; the old rule
 * (one probe scaled linearly in targets and candidates) counted each candidate's fixed part once per target.
 */
import { describe, expect, it } from 'vitest';

import { bandedCost, moreProbeCandidates } from '../../ts/encoding/estimate.js';

describe('banded ridge estimate', () => {
  // once: 0.06 s + 0.1 ms per target; per candidate: 0.07 s + 0.08 ms per target
  const cost = (t: number, c: number) => 0.06 + 1e-4 * t + c * (0.07 + 8e-5 * t);

  it('recovers a fixed part and a part per target, per candidate and once', () => {
    const p = { t1: 1, t2: 512, c2: 3, one: [cost(1, 1), cost(512, 1)], more: [cost(1, 3), cost(512, 3)] };
    const r = bandedCost(p, 1508, 20);
    expect(r.each.fixed).toBeCloseTo(0.07, 9);
    expect(r.each.per).toBeCloseTo(8e-5, 12);
    expect(r.once.fixed).toBeCloseTo(0.06, 9);
    expect(r.once.per).toBeCloseTo(1e-4, 12);
    expect(r.seconds).toBeCloseTo(cost(1508, 20), 9);
    // the old rule: the 2-candidate probe at 256 targets × (1508 / 256) × (20 / 2)
    expect((cost(256, 2) * (1508 / 256) * 20) / 2 / cost(1508, 20)).toBeGreaterThan(2);
  });

  it('one candidate (nIter 1) or one target: what was probed', () => {
    const single = bandedCost({ t1: 1, t2: 512, c2: 1, one: [cost(1, 1), cost(512, 1)], more: [cost(1, 1), cost(512, 1)] }, 1508, 1);
    expect(single.seconds).toBeCloseTo(cost(1508, 1), 9);
    const oneTarget = bandedCost({ t1: 1, t2: 1, c2: 3, one: [cost(1, 1), cost(1, 1)], more: [cost(1, 3), cost(1, 3)] }, 1, 10);
    expect(oneTarget.seconds).toBeCloseTo(cost(1, 10), 9);
  });

  it('timing noise that makes a difference negative costs nothing, never a negative time', () => {
    const r = bandedCost({ t1: 1, t2: 512, c2: 3, one: [0.2, 0.3], more: [0.15, 0.25] }, 1000, 10);
    expect(r.each.fixed).toBe(0);
    expect(r.each.per).toBe(0);
    expect(r.seconds).toBeGreaterThan(0);
  });

  it('probes more candidates while a probe is cheap, so that the slope extrapolated to nIter stands above the noise (review s43)', () => {
    // the demo world's widths: ~5 ms a candidate at 512 targets; 3 → 6 → 12 → 24 → 32, the cap
    expect(moreProbeCandidates(3, 100, 0.2)).toBe(6);
    expect(moreProbeCandidates(24, 100, 0.3)).toBe(32);
    expect(moreProbeCandidates(32, 100, 0.3)).toBeNull();
    // never past nIter, and not once a probe takes a second or more (NSD's widths: minutes at 3)
    expect(moreProbeCandidates(3, 5, 0.2)).toBe(5);
    expect(moreProbeCandidates(5, 5, 0.2)).toBeNull();
    expect(moreProbeCandidates(3, 100, 1.5)).toBeNull();
    // a slope read at 32 candidates: noise δ in the probes becomes δ·nIter/31 in the estimate, not δ·nIter/2
    const noisy = (c: number, t: number) => cost(t, c) + (c > 1 ? 0.5 : 0);
    const at3 = bandedCost({ t1: 1, t2: 512, c2: 3, one: [cost(1, 1), cost(512, 1)], more: [noisy(3, 1), noisy(3, 512)] }, 1508, 100);
    const at32 = bandedCost({ t1: 1, t2: 512, c2: 32, one: [cost(1, 1), cost(512, 1)], more: [noisy(32, 1), noisy(32, 512)] }, 1508, 100);
    expect(Math.abs(at32.seconds - cost(1508, 100))).toBeLessThan(Math.abs(at3.seconds - cost(1508, 100)) / 10);
  });
});
