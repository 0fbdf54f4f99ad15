import { describe, expect, it } from 'vitest';

import { noiseCeilingFact } from '../../ts/encoding/report.js';

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
