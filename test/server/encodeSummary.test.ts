import { describe, expect, it } from 'vitest';

import type { FeatureSetResult } from '../../ts/encoding/encode.js';
import { encodeSummary } from '../../ts/server/jobs/encodeSummary.js';

// An encode job's result summary is what encode() returned, taken as it is: the mean r of each set, and the
// whole mask's r / √NC from its region table where the run has a noise ceiling.
const set = (name: string, route: string, meanR: number, meanRNormalised: number): FeatureSetResult =>
  ({
    name, description: name, features: 8, route, meanR, r: new Float32Array(0), r2: new Float32Array(0), bestAlphas: new Float32Array(0), map: '', mosaic: '',
    regions: [
      { featureSet: name, atlas: 'streams', region: 'early', label: 1, voxels: 10, meanR: 0.9, medianR: 0.9, meanRNormalised: 0.95 },
      { featureSet: name, atlas: 'mask', region: 'all', label: 0, voxels: 1508, meanR, medianR: meanR, meanRNormalised },
    ],
  }) as FeatureSetResult;

describe("an encode job's result summary", () => {
  it('has the counts and, per feature set and joint model, the mean r and the normalised mean over the whole mask', () => {
    const s = encodeSummary({ voxels: 1508, trainImages: 400, testImages: 40, noiseCeiling: new Float32Array(1508), featureSets: [set('z', 'primal/grouped', 0.21, 0.4), set('z+c', 'banded', 0.25, 0.45)] });
    expect(s).toEqual({
      voxels: 1508, trainImages: 400, testImages: 40, noiseCeiling: true,
      featureSets: [
        { name: 'z', model: 'ridge', features: 8, meanR: 0.21, meanRNormalised: 0.4 },
        { name: 'z+c', model: 'banded', features: 8, meanR: 0.25, meanRNormalised: 0.45 },
      ],
    });
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
  });

  it('has no normalised mean without a noise ceiling, and null (not NaN, which JSON cannot carry) for a mean with no value', () => {
    const s = encodeSummary({ voxels: 3, trainImages: 4, testImages: 2, noiseCeiling: null, featureSets: [set('c', 'dual/grouped', NaN, NaN)] });
    expect(s.noiseCeiling).toBe(false);
    expect(s.featureSets[0]).toMatchObject({ meanR: null, meanRNormalised: null });
  });
});
