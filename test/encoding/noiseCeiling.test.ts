import { describe, expect, it } from 'vitest';

import { estimateNcsnr, meanInverseTrials, noiseCeilingFromNcsnr, trialsPerTestImage } from '../../ts/encoding/noiseCeiling.js';
import { stageRecipe } from '../../ts/pipeline/runFolder.js';
import { rng } from '../helpers/random.js';
import { pearson } from '../helpers/pearson.js';

// With test images of different repetitions the ceiling took 1/mean(n) as the noise term; the NSD data manual's
// is (A/3 + B/2 + C/1)/(A + B + C), the mean over test images of 1/n, which is larger (Jensen), so the ceiling
// came out too high: 13 images seen once and 6 twice gave 1/mean(n) = 19/25 = 0.760 instead of 16/19 = 0.842.
describe('the noise ceiling with mixed repetitions', () => {
  it("takes the NSD manual's mean of 1/n over the test images", () => {
    const trials = trialsPerTestImage({ '1': 13, '2': 6 });
    expect(trials).toHaveLength(19);
    expect(meanInverseTrials(trials)).toBeCloseTo(16 / 19, 12);
    const nc = noiseCeilingFromNcsnr(Float32Array.from([1, 0.5, 0, NaN]), trials);
    expect(nc[0]).toBeCloseTo(1 / (1 + 16 / 19), 6); // 0.542857; 1/mean(n) gave 0.568
    expect(nc[1]).toBeCloseTo(0.25 / (0.25 + 16 / 19), 6);
    expect(nc[2]).toBe(0);
    expect(nc[3]).toBeNaN();
    // the manual's A, B, C: 3, 2 and 1 trials
    expect(meanInverseTrials(trialsPerTestImage({ '3': 100, '2': 20, '1': 5 }))).toBeCloseTo((100 / 3 + 20 / 2 + 5) / 125, 12);
    // all images alike: 1/n
    expect(noiseCeilingFromNcsnr(Float32Array.from([1]), [3, 3, 3])[0]).toBeCloseTo(0.75, 6);
  });

  it('equals the squared correlation of the true signal with the averaged test betas (Monte Carlo)', () => {
    // one voxel, 30,000 test images a third each seen 1, 2 and 3 times; signal SD 1, noise SD 2 (ncsnr 0.5)
    const g = rng(11);
    const images = 30000;
    const signal: number[] = [], averaged: number[] = [], counts: number[] = [], single: number[] = [], ids: number[] = [];
    for (let i = 0; i < images; i++) {
      const n = 1 + (i % 3), s = g();
      let sum = 0;
      for (let k = 0; k < n; k++) {
        const b = s + 2 * g();
        single.push(b);
        ids.push(i + 1);
        sum += b;
      }
      signal.push(s);
      averaged.push(sum / n);
      counts.push(n);
    }
    const r = pearson(signal, averaged);
    // the manual's NC = 0.25 / (0.25 + 11/18) = 0.290; 1/mean(n) gave 0.25 / (0.25 + 1/2) = 0.333
    expect(r * r).toBeCloseTo(0.25 / (0.25 + 11 / 18), 2);
    const ncsnr = estimateNcsnr({ data: Float32Array.from(single), rows: single.length, cols: 1 }, ids);
    expect(ncsnr[0]).toBeCloseTo(0.5, 1.5); // within 0.016
    expect(noiseCeilingFromNcsnr(Float32Array.from([0.5]), counts)[0]).toBeCloseTo(r * r, 2);
    expect(noiseCeilingFromNcsnr(ncsnr, counts)[0]).toBeCloseTo(r * r, 1.5);
  });

  it("is a new recipe of encode's ceiling stage: a run resumed from before recomputes it (and the maps and report after it)", () => {
    expect(stageRecipe('ceiling')).toBe(2);
  });

  it('refuses trial counts that are not whole numbers >= 1, or a bare number', () => {
    expect(() => meanInverseTrials([3, 0])).toThrow('noise ceiling: trials averaged for test image 1 must be a whole number >= 1, got 0');
    expect(() => meanInverseTrials([])).toThrow(/a non-empty list/);
    expect(() => noiseCeilingFromNcsnr(Float32Array.from([1]), 3 as unknown as number[])).toThrow(/the trials averaged for each test image/);
  });
});

describe('trialsPerTestImage', () => {
  it('refuses counts that are not whole numbers', () => {
    // ({3: 2.5} gave three images, {3: -1} none, {'2.5': 1} an image of 2.5 trials)
    expect(() => trialsPerTestImage({ '3': 2.5 })).toThrow(/^trialsPerTestImage: expected a whole number of images >= 0 for 3 trials, got 2\.5$/);
    expect(() => trialsPerTestImage({ '3': -1 })).toThrow(/^trialsPerTestImage: expected a whole number of images >= 0 for 3 trials, got -1$/);
    expect(() => trialsPerTestImage({ '2.5': 1 })).toThrow(/^trialsPerTestImage: expected whole trial counts >= 1 as keys, got '2\.5'$/);
    expect(trialsPerTestImage({ '3': 2, '1': 0 })).toEqual([3, 3]);
  });
});
