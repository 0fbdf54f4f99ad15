import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import type { ReconstructConfig } from '../../ts/pipeline/config.js';
import { jobMetrics, reconstructOutcome } from '../../ts/server/jobs/reconstructOutcome.js';

// A reconstruct job's result is its run folder's metrics.json, taken as it is: the means, which metrics are
// accuracies, and the test images with the images each metric left out of its mean (no correlation: a uniform image
// or a constant feature row), as metrics.json, the report and the CLI have them. Before, the result had the means
// and `better` only.
const dir = mkdtempSync(join(tmpdir(), 'bl-reconstruct-outcome-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A run folder holding only `metrics` as its metrics.json. */
function runWith(name: string, metrics: Record<string, unknown>): ReconstructConfig {
  const out = join(dir, name);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'metrics.json'), JSON.stringify(metrics));
  return { out } as ReconstructConfig;
}

const zonly = { PixCorr: 0.31, SSIM: 0.42, 'Pixels(2WI)': 0.9 };
const final = { PixCorr: 0.35, SSIM: 0.44, 'Pixels(2WI)': 0.95 };
const better = { PixCorr: 'higher', SSIM: 'higher', 'Pixels(2WI)': 'higher' };

describe("a reconstruct job's result", () => {
  it('carries the test images and the images each metric left out of its mean', async () => {
    const leftOut = { zonly: { PixCorr: 0, SSIM: 0, 'Pixels(2WI)': 0 }, final: { PixCorr: 1, SSIM: 0, 'Pixels(2WI)': 1 } };
    const perSeed = [{ seed: 0, ...final }];
    const perImage = { ids: [1, 2, 3, 4, 5, 6, 7, 8], zonly: {}, final: {} };
    const r = await reconstructOutcome(runWith('now', { images: 8, zonly, final, perSeed, better, leftOut, perImage }));
    expect(r).toEqual({ testImages: 8, metrics: { zonly, final, better, images: 8, leftOut }, report: 'report.html' });
  });

  it('from a run folder written before the images left out were counted: no leftOut (nothing said is none)', async () => {
    const r = await reconstructOutcome(runWith('before', { images: 8, zonly, final, better }));
    expect(r.metrics).toEqual({ zonly, final, better, images: 8 });
  });

  it("a demo job's metrics (the evaluate stage's summary) are the same fields", () => {
    const leftOut = { zonly: { PixCorr: 2, SSIM: 0, 'Pixels(2WI)': 2 }, final: { PixCorr: 0, SSIM: 0, 'Pixels(2WI)': 0 } };
    const summary = { images: 4, zonly, final, better, leftOut, unrelated: 1 } as never;
    expect(jobMetrics(summary)).toEqual({ zonly, final, better, images: 4, leftOut });
  });
});
