/**
 * An encode job's result summary, taken from what encode() returns for the finished run (encodeResult: the run
 * folder read back, nothing recomputed): the voxel and image counts, and per feature set and joint model its mean
 * held-out Pearson r over the whole mask and, with a noise ceiling, over the voxels whose ceiling is above 1% (how
 * many: the mean of r / √NC is dominated by ceilings just above 1%) the mean of r / √NC and mean r / mean √NC (the
 * region table's 'mask' row, as regions.csv and the report have it).
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
  /** How many voxels meanRNormalised and ratioOfMeans are over (regions.csv's voxels_over_ceiling); null without a noise ceiling. */
  voxelsOverCeiling: number | null;
  /** Mean r / mean √(noise ceiling) over the same voxels (regions.csv's mean_r_over_mean_sqrt_nc); null without a noise ceiling. */
  ratioOfMeans: number | null;
}

export interface EncodeSummary {
  voxels: number;
  /** Distinct training images. */
  trainImages: number;
  /** Rows of the fits: the training images, or their trials with averageTrain false. */
  trainRows: number;
  testImages: number;
  noiseCeiling: boolean;
  featureSets: EncodeSummaryRow[];
}

const finite = (v: number | undefined): number | null => (v !== undefined && Number.isFinite(v) ? v : null);

export function encodeSummary(r: Pick<EncodeResult, 'voxels' | 'trainImages' | 'trainRows' | 'testImages' | 'noiseCeiling' | 'featureSets'>): EncodeSummary {
  return {
    voxels: r.voxels,
    trainImages: r.trainImages,
    trainRows: r.trainRows,
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
        voxelsOverCeiling: r.noiseCeiling ? (mask?.voxelsOverCeiling ?? null) : null,
        ratioOfMeans: r.noiseCeiling ? finite(mask?.ratioOfMeans) : null,
      };
    }),
  };
}
