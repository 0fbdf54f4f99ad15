/**
 * The final row of a reconstruction's metrics averages the seeds. An image with no correlation in one seed (a
 * uniform-grey sample: NaN) made its averaged value NaN, though the other seeds scored it; now each image is the
 * mean of the seeds that score it, and `leftOut` counts the images no seed scores.
 */
import { describe, expect, it } from 'vitest';

import type { MetricValue } from '../../ts/eval/evaluate.js';
import { averageMetrics } from '../../ts/pipeline/stages.js';

describe('averageMetrics over seeds', () => {
  it('averages each image over the seeds that have a value, and counts the images none has', () => {
    const seed = (perImage: number[]): MetricValue[] => {
      const scored = perImage.filter((v) => !Number.isNaN(v));
      return [{ name: 'PixCorr', better: 'higher', value: scored.reduce((a, b) => a + b, 0) / scored.length, perImage: Float64Array.from(perImage) }];
    };
    const [m] = averageMetrics([seed([0.5, NaN, NaN, 0.25]), seed([0.7, 0.4, NaN, 0.75])]);
    expect(Array.from(m.perImage, (v) => (Number.isNaN(v) ? null : v))).toEqual([0.6, 0.4, null, 0.5]);
    expect(m.leftOut).toBe(1);
    // the mean of the seeds' means (0.375 and 0.6166…)
    expect(m.value).toBeCloseTo((0.375 + 1.85 / 3) / 2, 12);
  });
});
