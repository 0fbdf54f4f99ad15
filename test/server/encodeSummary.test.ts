import { describe, expect, it } from 'vitest';

import type { FeatureSetResult } from '../../ts/encoding/encode.js';
import { encodeSummary } from '../../ts/server/jobs/encodeSummary.js';

// An encode job's result summary is what encode() returned, taken as it is: the mean r of each set, and the
// whole mask's r / √NC, mean r / mean √NC and the count of voxels they are over from its region table where the
// run has a noise ceiling.
const set = (name: string, route: string, meanR: number, meanRNormalised: number, voxelsOverCeiling: number | null = 700, ratioOfMeans = 0.3): FeatureSetResult =>
  ({
    name, description: name, features: 8, route, meanR, r: new Float32Array(0), r2: new Float32Array(0), bestAlphas: new Float32Array(0), map: '', mosaic: '',
    regions: [
      { featureSet: name, atlas: 'streams', region: 'early', label: 1, voxels: 10, meanR: 0.9, medianR: 0.9, meanRNormalised: 0.95, voxelsOverCeiling: 9, ratioOfMeans: 0.92 },
      { featureSet: name, atlas: 'mask', region: 'all', label: 0, voxels: 1508, meanR, medianR: meanR, meanRNormalised, voxelsOverCeiling, ratioOfMeans },
    ],
  }) as FeatureSetResult;

describe("an encode job's result summary", () => {
  it('has the counts and, per feature set and joint model, the mean r and the normalised means over the whole mask, with the voxels they are over', () => {
    const s = encodeSummary({ voxels: 1508, trainImages: 400, trainRows: 1200, testImages: 40, noiseCeiling: new Float32Array(1508), featureSets: [set('z', 'primal/grouped', 0.21, 0.4, 731, 0.33), set('z+c', 'banded', 0.25, 0.45, 731, 0.36)] });
    expect(s).toEqual({
      voxels: 1508, trainImages: 400, trainRows: 1200, testImages: 40, noiseCeiling: true,
      featureSets: [
        { name: 'z', model: 'ridge', features: 8, meanR: 0.21, meanRNormalised: 0.4, voxelsOverCeiling: 731, ratioOfMeans: 0.33 },
        { name: 'z+c', model: 'banded', features: 8, meanR: 0.25, meanRNormalised: 0.45, voxelsOverCeiling: 731, ratioOfMeans: 0.36 },
      ],
    });
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
  });

  it('has no normalised mean without a noise ceiling, and null (not NaN, which JSON cannot carry) for a mean with no value', () => {
    const s = encodeSummary({ voxels: 3, trainImages: 4, trainRows: 4, testImages: 2, noiseCeiling: null, featureSets: [set('c', 'dual/grouped', NaN, NaN, null, NaN)] });
    expect(s.noiseCeiling).toBe(false);
    expect(s.featureSets[0]).toMatchObject({ meanR: null, meanRNormalised: null, voxelsOverCeiling: null, ratioOfMeans: null });
    // with a ceiling that no voxel's is above 1%: no voxels, no means (NaN in the table), and JSON carries all of it
    const none = encodeSummary({ voxels: 3, trainImages: 4, trainRows: 4, testImages: 2, noiseCeiling: new Float32Array(3), featureSets: [set('c', 'dual/grouped', 0.1, NaN, 0, NaN)] });
    expect(none.featureSets[0]).toMatchObject({ meanR: 0.1, meanRNormalised: null, voxelsOverCeiling: 0, ratioOfMeans: null });
    expect(JSON.parse(JSON.stringify(none))).toEqual(none);
  });
});
