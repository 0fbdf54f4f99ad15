import { describe, expect, it } from 'vitest';

import { regionCsv, regionTable } from '../../ts/encoding/regions.js';
import { regionStats } from '../../ts/encoding/report.js';
import { stageRecipe } from '../../ts/pipeline/runFolder.js';

// median_r (regions.csv) and the report's region medians took vals[floor(n/2)]: for an even number of voxels
// that is the upper middle value, not the median (np.median averages the two middle values).
describe('region medians', () => {
  // np.median([0.4, 0.1, 0.3, 0.2]) = 0.25; np.median([0.4, 0.1, 0.3]) = 0.3; np.median([0.2, 0.4]) = 0.3
  const r = Float32Array.from([0.4, 0.1, 0.3, 0.2, NaN]);

  it('average the two middle values when the count is even (regions.csv)', () => {
    const labels = [{ atlas: 'streams', path: 'x', values: Int32Array.from([1, 2, 1, 1, 0]), names: new Map([[1, 'early'], [2, 'ventral']]) }];
    const rows = regionTable('z', r, labels, null);
    expect(rows.map((x) => [x.region, x.voxels])).toEqual([['all', 5], ['early', 3], ['ventral', 1]]);
    expect(rows[0].medianR).toBeCloseTo(0.25, 6); // four finite values: (0.2 + 0.3) / 2
    expect(rows[1].medianR).toBeCloseTo(0.3, 6); // 0.4, 0.3, 0.2
    expect(rows[2].medianR).toBeCloseTo(0.1, 6);
    expect(regionCsv(rows).split('\n')[1]).toBe('z,mask,all,0,5,0.25000,0.25000,,,,1'); // voxel 4's r is NaN: left out, counted
  });

  it("average the two middle values in the report's region tables", () => {
    expect(regionStats(r, [])[0]).toMatchObject({ atlas: 'mask', voxels: 4 });
    expect(regionStats(r, [])[0].median).toBeCloseTo(0.25, 6);
    expect(regionStats(Float32Array.from([0.2, 0.4]), [])[0].median).toBeCloseTo(0.3, 6);
    expect(regionStats(Float32Array.from([0.5]), [])[0].median).toBeCloseTo(0.5, 6);
    expect(regionStats(Float32Array.from([NaN]), [])[0].median).toBeNaN();
  });

  it("is a new recipe of encode's maps stage: a run resumed from before rewrites regions.csv (and the report after it)", () => {
    expect(stageRecipe('maps')).toBeGreaterThanOrEqual(2);
  });
});
