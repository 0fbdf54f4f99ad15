import { describe, expect, it } from 'vitest';

import { fmtCount, noiseCeilingFact, regionTable, summaryTable, trainingFact } from '../../ts/encoding/report.js';

// The encoding report's "noise ceiling" line says where the ceiling came from, or why there is none: under the
// default 'auto' with no ncsnr.nii.gz beside the betas (the demo world's NSD) it said only "none".
describe("the encoding report's noise ceiling fact", () => {
  const fact = (noiseCeiling: boolean, asked: unknown) => noiseCeilingFact({ noiseCeiling, config: { out: 'o', nsd: { root: 'n', subject: 1 }, regions: [], noiseCeiling: asked } });

  it('says why there is none', () => {
    expect(fact(false, 'auto')).toBe("none (noiseCeiling 'auto': no ncsnr.nii.gz beside the betas)");
    expect(fact(false, 'none')).toBe("none (noiseCeiling 'none')");
  });

  it('says where one came from', () => {
    expect(fact(true, 'auto')).toBe('yes (ncsnr.nii.gz beside the betas)');
    expect(fact(true, 'estimate')).toBe('yes (estimated from the test repetitions)');
    expect(fact(true, '/data/nsd/ncsnr_subj01.nii.gz')).toBe('yes (ncsnr_subj01.nii.gz)');
  });
});

// Voxel counts were "1,508" in the report's facts but "1508" in its region tables.
describe("the encoding report's voxel counts", () => {
  const map = {
    kind: 'r' as const, file: 'maps/z.nii.gz', mosaic: 'mosaics/z.png', label: 'z', description: 'z', featureSet: 'z',
    volume: new Float32Array(0), bytes: Buffer.alloc(0),
    display: { signed: true, vmax: 1, threshold: 0.1, quantity: 'r', thresholdNote: '' },
    regions: [
      { atlas: 'mask', region: 'all', voxels: 1508, mean: 0.21, median: 0.2 },
      { atlas: 'streams', region: 'early', voxels: 12345, mean: 0.3, median: 0.29 },
      { atlas: 'streams', region: 'ventral', voxels: 87, mean: 0.1, median: 0.1 },
    ],
  };
  const cells = (html: string) => [...html.matchAll(/<td[^>]*>([^<]*)<\/td>/g)].map((m) => m[1]);

  it('writes them with thousands separators in the region tables, as the facts do', () => {
    expect(fmtCount(1508)).toBe('1,508');
    expect(cells(summaryTable([map]))).toEqual(expect.arrayContaining(['1,508', '12,345', '87']));
    expect(cells(summaryTable([map]))).not.toContain('1508');
    const region = regionTable(map);
    expect(cells(region)).toEqual(expect.arrayContaining(['1,508', '12,345', '87']));
    // sorting reads the plain number
    expect(region).toContain('data-v="12345">12,345<');
  });
});

// With averageTrain false the training rows are trials: the report called them images.
describe("the encoding report's training line", () => {
  const line = (averageTrain?: boolean) =>
    trainingFact({ trainImages: 3749, config: { out: 'o', nsd: { root: 'n', subject: 1, ...(averageTrain === undefined ? {} : { averageTrain }) }, regions: [] } });

  it('says trials when the rows are trials, with the images they show (review s45: encoding.json called the trials images)', () => {
    const withRows = trainingFact({ trainImages: 1250, trainRows: 3749, config: { out: 'o', nsd: { root: 'n', subject: 1, ...{ averageTrain: false } }, regions: [] } });
    expect(withRows).toEqual(['training trials', '3,749 (of 1,250 images)']);
    // (a folder from before trainRows: its trainImages held the trials)
    expect(line(false)).toEqual(['training trials', '3,749']);
    expect(line(true)).toEqual(['training images', '3,749']);
    expect(line()).toEqual(['training images', '3,749']);
  });
});
