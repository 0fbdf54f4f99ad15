/**
 * The dry run's RidgeCV estimate: probes at 128 and 512 targets read as a fixed part + a part per target. The
 * engine's CV seconds hold a fixed part on the exact routes (each fold's (I − H) blocks and projection stacks
 * per alpha), so scaling them in proportion to the targets, as the estimate did, said 81 s for a 3749×4928 →
 * 12,076-voxel fit that took 21–29 s. Timings made from a known cost recover it exactly.
 */
import { describe, expect, it } from 'vitest';

import { ridgeCost } from '../../ts/pipeline/probe.js';
import { RidgeCV } from '../../ts/ridge/RidgeCV.js';
import { BandedRidgeCV } from '../../ts/ridge/BandedRidgeCV.js';
import { planted } from '../helpers/random.js';

describe('ridge estimate', () => {
  // measured shape of the exact-kernel fit above: decomposition 2.9 s; CV 2.7 s fixed + 1.5 ms per target; refit 0.3 ms per target
  const probe = (t: number) => ({ targets: t, wall: 2.9 + 2.7 + 1.8e-3 * t, cvRefit: 2.7 + 1.8e-3 * t });

  it('scales only the part per target', () => {
    const s = ridgeCost(probe(128), probe(512), 12076);
    expect(s).toBeCloseTo(2.9 + 2.7 + 1.8e-3 * 12076, 9); // 27.3 s; the old rule: 2.9 + (2.7 + 0.92) × 23.6 = 88 s
  });

  it('is the probe itself when the fit has no more targets than it', () => {
    expect(ridgeCost(probe(128), probe(512), 300)).toBe(probe(512).wall);
    expect(ridgeCost(probe(512), probe(512), 300)).toBe(probe(512).wall);
  });

  it('takes no negative slope and no slope above the larger probe average (noisy probes)', () => {
    const slow = { targets: 128, wall: 9, cvRefit: 8 }; // slower than the 512-target probe
    expect(ridgeCost(slow, probe(512), 10000)).toBeCloseTo(probe(512).wall, 9);
    const fast = { targets: 128, wall: 0.1, cvRefit: 0 }; // slope above b's average: capped at it
    const b = probe(512);
    expect(ridgeCost(fast, b, 1024)).toBeCloseTo(b.wall - b.cvRefit + (b.cvRefit / 512) * 1024, 9);
  });
});

describe("ridge estimate's scaling in rows: the engine's flop model (RidgeCV.costModel)", () => {
  const model = new RidgeCV({ alphas: [1e1, 1e2, 1e3, 1e4, 1e5], folds: 5, standardize: true });

  it('grows with rows squared and cubed on the kernel route of a wide problem, as the NSD encoding fits do', () => {
    // NSD's encoding shape against the probe rows (2.5e7 values of X) an estimate fits at it: linear scaling said 5.8×
    const probe = model.costModel(1525, 16384, 15724), full = model.costModel(8859, 16384, 15724);
    expect(probe.route).toBe('exact-kernel');
    expect(full.route).toBe('exact-kernel');
    expect(full.flops / probe.flops).toBeGreaterThan(20);
  });

  it('is linear in rows on the primal route of a tall problem', () => {
    const a = model.costModel(20000, 100, 1000), b = model.costModel(40000, 100, 1000);
    expect(a.route).toMatch(/primal/);
    expect(b.flops / a.flops).toBeGreaterThan(1.8);
    expect(b.flops / a.flops).toBeLessThan(2.05);
  });

  it('names a route the fit itself takes, and refuses shapes that are not counts', async () => {
    const { x, y } = planted(120, 300, 6, 3);
    const fitted = await model.fit(x, y);
    expect(model.costModel(120, 300, 6).route).toBe(fitted.info!.solver);
    // groups and foldIndex label the fit's own samples: the model of another shape takes as many contiguous folds
    const grouped = new RidgeCV({ alphas: [1, 10], groups: Array.from({ length: 120 }, (_, i) => i >> 2) });
    expect(grouped.costModel(8859, 15724, 16384)).toEqual(new RidgeCV({ alphas: [1, 10], folds: 5 }).costModel(8859, 15724, 16384));
    const indexed = new RidgeCV({ alphas: [1, 10], foldIndex: Array.from({ length: 120 }, (_, i) => i % 3) });
    expect(indexed.costModel(900, 50, 10)).toEqual(new RidgeCV({ alphas: [1, 10], folds: 3 }).costModel(900, 50, 10));
    // From the folds' sizes alone: a label per sample (2^40 of them) or a weight per feature would not fit in memory
    const huge = new RidgeCV({ alphas: [1, 10], memoryBudget: 2 ** 30 }).costModel(2 ** 40, 2 ** 40, 10);
    expect([huge.memory.fits, huge.flops > 0]).toEqual([false, true]);
    const band = new BandedRidgeCV({ alphas: [1, 10], nIter: 2, memoryBudget: 2 ** 30 }).costModel(2 ** 40, [2 ** 39, 2 ** 39], 10);
    expect(band.memory.fits).toBe(false);
    expect(() => new RidgeCV({ alphas: [1], folds: 6 }).costModel(10, 5, 5)).toThrow(/RidgeCV.costModel folds: fold 4 holds 1 sample; .* use at most 5 folds for 10 samples/);
    // checked from n and k before any size is made, and the folds bounded (2^20)
    expect(() => new RidgeCV({ alphas: [1], folds: 2 ** 20 }).costModel(2 ** 20 + 5, 5, 5)).toThrow(/RidgeCV.costModel folds: fold 5 holds 1 sample/);
    expect(() => new RidgeCV({ alphas: [1], folds: 2 ** 20 + 1 })).toThrow(/RidgeCV folds: expected an integer in 2\.\.1048576, got 1048577/);
    expect(() => model.costModel(0, 10, 10)).toThrow(/RidgeCV.costModel rows: expected an integer >= 1, got 0/);
    expect(() => model.costModel(10, 2.5, 10)).toThrow(/cols: expected an integer >= 1, got 2.5/);
  });

  it("plans the memory the fit then reports (fixed part, batch, budget, batches), its grouped folds included", async () => {
    // standardised with an intercept, as encode's and the decoders' fits: the plan is the fit's own
    const { x, y } = planted(150, 40, 200, 5);
    const groups = Array.from({ length: 150 }, (_, i) => i >> 1);
    for (const solver of ['per-fold-primal', 'per-fold-kernel', 'exact-primal', 'exact-kernel'] as const) {
      const base = { alphas: [0.1, 10, 1000], folds: 5, groups, standardize: true, solver };
      const whole = new RidgeCV(base).costModel(150, 40, 200).memory;
      for (const memoryBudget of [undefined, Math.ceil(whole.fixedBytes + whole.bytesPerTarget * 45)]) {
        const ridge = new RidgeCV({ ...base, memoryBudget });
        const plan = ridge.costModel(150, 40, 200);
        const info = (await ridge.fit(x, y)).info!;
        expect([plan.route, plan.memory.fixedBytes, plan.memory.batchBytes, plan.memory.budgetBytes, plan.memory.targetBatch, plan.memory.nBatches]).toEqual([
          info.solver,
          info.fixedBytes,
          info.batchBytes,
          info.budgetBytes,
          info.targetBatch,
          info.nBatches,
        ]);
        expect(plan.memory.fits).toBe(true);
        expect(info.peakBytes).toBeLessThanOrEqual(plan.memory.fixedBytes + plan.memory.batchBytes);
        if (memoryBudget) expect(plan.memory.nBatches).toBe(5);
      }
      // one byte short of the fixed part and one target: planned as not fitting, and refused by the fit
      const short = new RidgeCV({ ...base, memoryBudget: Math.ceil(whole.fixedBytes + whole.bytesPerTarget) - 1 });
      expect(short.costModel(150, 40, 200).memory.fits).toBe(false);
      await expect(short.fit(x, y)).rejects.toThrow(/below this fit's fixed footprint/);
    }
  });
});
