/**
 * reconstruct --dry-run's estimate lines show arithmetic that gives the estimate: "0.17 s per batch of 8 images × 50
 * batches (400 images)". Before, "a batch of 8 images in 0.17 s × 400 images" read as 400 × 0.17 s, 8 times the
 * estimate (the code computed s · N / k).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { DemoWorld } from '../../ts/demo/world.js';
import { reconstruct } from '../../ts/pipeline/reconstruct.js';
import { batchedEstimate } from '../../ts/pipeline/probe.js';
import { batchWorld, singleConfig } from '../batch/world.js';

const dir = mkdtempSync(join(tmpdir(), 'bl-estimate-basis-'));
let world: DemoWorld;
beforeAll(async () => {
  world = await batchWorld(dir, [1]);
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const BASIS = /^(?:model load ([\d.]+) s \+ )?([\d.]+) s per batch of (\d+) images(?: \([^)]*\))? × ([\d.]+) batches \((\d+) images\)$/;
/** The evaluate stage's: the z-only set's batch (the networks on the ground truth too), then each seed's. */
const EVALUATE_BASIS = /^([\d.]+) s per batch of (\d+) images for the z-only set \([^)]*\) \+ ([\d.]+) s for each of (\d+) seed\(s\), × ([\d.]+) batches \((\d+) images\)$/;

/** The estimate the basis's own numbers give, and the rounding they were shown with. */
function fromBasis(basis: string): { seconds: number; slack: number; k: number; batches: number; n: number } {
  const m = BASIS.exec(basis);
  expect(m, basis).not.toBeNull();
  const [load, per, k, batches, n] = [m![1] ?? '0', m![2], m![3], m![4], m![5]].map(Number);
  return { seconds: load + per * batches, slack: 0.05 + 0.005 * batches + 0.05 * per, k, batches, n };
}

describe('dry-run estimate lines', () => {
  it('batchedEstimate: the basis shows per batch × batches, and a partial batch its share', () => {
    expect(batchedEstimate({ load: 1.2, perBatch: 0.17, k: 8, n: 400, what: 'VAE + captions' })).toEqual({
      seconds: 1.2 + 0.17 * 50,
      basis: 'model load 1.2 s + 0.17 s per batch of 8 images (VAE + captions) × 50 batches (400 images)',
    });
    expect(batchedEstimate({ perBatch: 0.5, k: 8, n: 20 })).toEqual({ seconds: 1.25, basis: '0.50 s per batch of 8 images × 2.5 batches (20 images)' });
  });

  it("reconstruct --dry-run: features, zonly and evaluate read as the seconds they estimate (evaluate: the z-only set, then each seed's)", async () => {
    const r = await reconstruct(singleConfig(world, 1, join(dir, 'run')), { dryRun: true });
    for (const s of ['features', 'zonly'] as const) {
      const e = r.estimates![s];
      const b = fromBasis(e.basis);
      expect(b.batches, s).toBeCloseTo(b.n / b.k, 1);
      expect(Math.abs(b.seconds - e.seconds), `${s}: ${e.basis} vs ${e.seconds} s`).toBeLessThanOrEqual(b.slack);
    }
    const ev = r.estimates!.evaluate;
    const m = EVALUATE_BASIS.exec(ev.basis);
    expect(m, ev.basis).not.toBeNull();
    const [first, k, later, seeds, batches, n] = m!.slice(1).map(Number);
    expect([seeds, n, batches]).toEqual([r.config.img2img.seeds, r.testImages, Number((n / k).toFixed(1))]);
    expect(Math.abs((first + seeds * later) * batches - ev.seconds), ev.basis).toBeLessThanOrEqual(0.005 * batches * (1 + seeds) + 0.01);
    expect(r.estimates!.zonly.basis).toContain(`(${r.testImages} images)`);
  }, 300_000);
});
