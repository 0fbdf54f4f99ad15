import { describe, expect, it } from 'vitest';

import { regionCsv, regionTable } from '../../ts/encoding/regions.js';
import { stageRecipe } from '../../ts/pipeline/runFolder.js';

// regions.csv's mean_r_over_ceiling is over the voxels whose noise ceiling is above 1%, but the row said only how
// many voxels the region has (1,508 where the mean was over 1,105); and a voxel with NC just above 1% divides by
// about 0.1, so its r/√NC dominates the mean. The rows now count the voxels over the ceiling and give mean r / mean √NC.
describe('region rows over the noise ceiling', () => {
  // voxel:        0     1     2     3      4
  const r = Float32Array.from([0.3, 0.2, -0.1, 0.05, 0.4]);
  const nc = Float32Array.from([0.81, 0.36, 0.0121, 0.005, 0.64]); // √: 0.9, 0.6, 0.11, (below 1%), 0.8
  const labels = [{ atlas: 'streams', path: 'x', values: Int32Array.from([1, 1, 1, 1, 2]), names: new Map([[1, 'early'], [2, 'ventral']]) }];
  const rows = regionTable('z', r, labels, nc);

  it('count the voxels the ceiling-normalised means are over, and give the ratio of means over the same voxels', () => {
    const early = rows.find((x) => x.region === 'early')!;
    expect(early.voxels).toBe(4);
    expect(early.voxelsOverCeiling).toBe(3); // voxel 3's ceiling is below 1%
    // mean of r/√NC: (0.3/0.9 + 0.2/0.6 − 0.1/0.11) / 3, pulled below 0 by the voxel at NC 1.2%
    expect(early.meanRNormalised).toBeCloseTo((0.3 / 0.9 + 0.2 / 0.6 - 0.1 / 0.11) / 3, 5);
    expect(early.meanRNormalised).toBeLessThan(0);
    // mean r / mean √NC over the same three voxels
    expect(early.ratioOfMeans).toBeCloseTo((0.3 + 0.2 - 0.1) / 3 / ((0.9 + 0.6 + 0.11) / 3), 5);
    expect(early.meanR).toBeCloseTo((0.3 + 0.2 - 0.1 + 0.05) / 4, 6);
    const all = rows.find((x) => x.atlas === 'mask')!;
    expect([all.voxels, all.voxelsOverCeiling]).toEqual([5, 4]);
  });

  it('write both to regions.csv, after the columns that were there', () => {
    const csv = regionCsv(rows).split('\n');
    expect(csv[0]).toBe('feature_set,atlas,region,label,voxels,mean_r,median_r,mean_r_over_ceiling,voxels_over_ceiling,mean_r_over_mean_sqrt_nc,constant_voxels');
    const early = csv.find((l) => l.startsWith('z,streams,early,'))!.split(',');
    expect(early[4]).toBe('4');
    expect(early[8]).toBe('3');
    expect(Number(early[7])).toBeCloseTo((0.3 / 0.9 + 0.2 / 0.6 - 0.1 / 0.11) / 3, 4);
    expect(Number(early[9])).toBeCloseTo(0.4 / 3 / (1.61 / 3), 4);
  });

  it('leave them empty without a noise ceiling', () => {
    const none = regionTable('z', r, labels, null);
    expect(none[0]).toMatchObject({ voxelsOverCeiling: null });
    expect(none[0].ratioOfMeans).toBeNaN();
    expect(regionCsv(none).split('\n')[1]).toBe('z,mask,all,0,5,0.17000,0.20000,,,,0');
  });

  it("are a new recipe of encode's maps stage, and joint models a new recipe of their banded stages", () => {
    // (later recipes count up from these: test/encoding/constantVoxels.test.ts)
    expect(stageRecipe('maps')).toBeGreaterThanOrEqual(3);
    expect(stageRecipe('banded.z+c')).toBeGreaterThanOrEqual(2);
    // stages of other kinds keep theirs
    expect([stageRecipe('features.zc'), stageRecipe('features'), stageRecipe('ceiling')]).toEqual([1, 2, 2]);
  });
});
