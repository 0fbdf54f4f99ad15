/**
 * An encode job's result summary, taken from what encode() returns for the finished run (encodeResult: the run
 * folder read back, nothing recomputed): the voxel and image counts, and per feature set and joint model its mean
 * held-out Pearson r over the whole mask and, with a noise ceiling, the mean of r / √NC over the voxels whose
 * ceiling is above 1% (the region table's 'mask' row, as regions.csv and the report have it).
 */
import type { EncodeResult } from '../../encoding/encode.js';

export interface EncodeSummaryRow {
  name: string;
  /** 'ridge' for a fitted feature set, 'banded' for a joint model (banded ridge). */
  model: 'ridge' | 'banded';
  features: number;
  /** Mean held-out Pearson r over the mask's voxels (null if no voxel has one). */
  meanR: number | null;
  /** Mean of r / √(noise ceiling) over the voxels with a ceiling above 0.01; null without a noise ceiling. */
  meanRNormalised: number | null;
}

export interface EncodeSummary {
  voxels: number;
  trainImages: number;
  testImages: number;
  noiseCeiling: boolean;
  featureSets: EncodeSummaryRow[];
}

const finite = (v: number | undefined): number | null => (v !== undefined && Number.isFinite(v) ? v : null);

export function encodeSummary(r: Pick<EncodeResult, 'voxels' | 'trainImages' | 'testImages' | 'noiseCeiling' | 'featureSets'>): EncodeSummary {
  return {
    voxels: r.voxels,
    trainImages: r.trainImages,
    testImages: r.testImages,
    noiseCeiling: r.noiseCeiling !== null,
    featureSets: r.featureSets.map((f) => {
      const mask = f.regions.find((row) => row.atlas === 'mask');
      return {
        name: f.name,
        model: f.route === 'banded' ? 'banded' : 'ridge',
        features: f.features,
        meanR: finite(f.meanR),
        meanRNormalised: r.noiseCeiling ? finite(mask?.meanRNormalised) : null,
      };
    }),
  };
}
