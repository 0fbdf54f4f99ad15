/**
 * The final row of a reconstruction's metrics averages the seeds. An image with no correlation in one seed (a
 * uniform-grey sample: NaN) made its averaged value NaN, though the other seeds scored it; now each image is the
 * mean of the seeds that score it, and `leftOut` counts the images no seed scores. The final value is the mean of
 * those per-image values (it was the mean of the seeds' means: another number than the per-image CSV's, and NaN
 * with nothing left out when one seed scored no image).
 */
import { describe, expect, it } from 'vitest';

import type { MetricValue } from '../../ts/eval/evaluate.js';
import { averageMetrics } from '../../ts/eval/evaluate.js';

// one seed's metric as evaluateReconstructions gives it: the mean of the images it scores (NaN when none)
const seed = (perImage: number[]): MetricValue[] => {
  const scored = perImage.filter((v) => !Number.isNaN(v));
  return [{ name: 'PixCorr', better: 'higher', value: scored.length ? scored.reduce((a, b) => a + b, 0) / scored.length : NaN, perImage: Float64Array.from(perImage) }];
};
const values = (a: Float64Array) => Array.from(a, (v) => (Number.isNaN(v) ? null : v));

describe('averageMetrics over seeds', () => {
  it('averages each image over the seeds that have a value, and counts the images none has', () => {
    const [m] = averageMetrics([seed([0.5, NaN, NaN, 0.25]), seed([0.7, 0.4, NaN, 0.75])]);
    expect(values(m.perImage)).toEqual([0.6, 0.4, null, 0.5]);
    expect(m.leftOut).toBe(1);
    // the mean of the defined per-image values (not of the seeds' means, 0.375 and 0.6166…: 0.4958…)
    expect(m.value).toBeCloseTo(0.5, 12);
  });

  it('the final value is the mean of the per-image finals when one seed leaves an image out', () => {
    const [m] = averageMetrics([seed([0.9, 0.1, NaN]), seed([0.9, 0.1, 0.2])]);
    expect(values(m.perImage)).toEqual([0.9, 0.1, 0.2]);
    // the seeds' means were 0.5 and 0.4: their mean 0.45 weighted image 3 by one seed of two
    expect(m.value).toBeCloseTo(0.4, 12);
    expect(m.leftOut).toBe(0);
  });

  it('a seed with no value at all leaves the final to the others; an image no seed scores is counted', () => {
    const [m] = averageMetrics([seed([NaN, NaN, NaN]), seed([0.9, 0.1, 0.2])]);
    expect(values(m.perImage)).toEqual([0.9, 0.1, 0.2]);
    expect(m.value).toBeCloseTo(0.4, 12);
    expect(m.leftOut).toBe(0);
    const [none] = averageMetrics([seed([NaN, NaN]), seed([NaN, NaN])]);
    expect(none.value).toBeNaN();
    expect(none.leftOut).toBe(2);
  });
});
