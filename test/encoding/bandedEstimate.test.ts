/**
 * The dry run's banded-ridge estimate: probes at 1 and 3 candidates, 1 and 512 targets, read as a fixed part +
 * a part per target, per candidate and once. Timings made from a known cost recover it exactly; the old rule
 * (one probe scaled linearly in targets and candidates) counted each candidate's fixed part once per target.
 */
import { describe, expect, it } from 'vitest';

import { bandedCost } from '../../ts/encoding/estimate.js';

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
});
