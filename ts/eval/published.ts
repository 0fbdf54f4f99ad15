/**
 * Published NSD reconstruction results (method.md §7), for comparison tables. The eight columns every paper
 * uses; the 2WI columns are in %, PixCorr and SSIM are correlations, EffNet-B and SwAV correlation distances.
 */
export const METRIC_COLUMNS = ['PixCorr', 'SSIM', 'AlexNet(2)', 'AlexNet(5)', 'Inception', 'CLIP', 'EffNet-B', 'SwAV'] as const;
export type MetricColumn = (typeof METRIC_COLUMNS)[number];

/** Higher or lower is better, per published column. */
export const COLUMN_BETTER: Record<MetricColumn, 'higher' | 'lower'> = {
  PixCorr: 'higher', SSIM: 'higher', 'AlexNet(2)': 'higher', 'AlexNet(5)': 'higher', Inception: 'higher', CLIP: 'higher', 'EffNet-B': 'lower', SwAV: 'lower',
};

export interface PublishedRow {
  method: string;
  /** Paper and table the numbers come from. */
  source: string;
  /** Test set and subjects, which differ between tables (37 vs 40 sessions, one subject vs a mean). */
  testSet: string;
  values: Partial<Record<MetricColumn, number>>;
}

const BD_T1 = 'Brain-Diffuser (Ozcelik & VanRullen 2023), Table 1';
const BD_SET = '982 images, 37 sessions; appears to be the mean of subjects 1, 2, 5, 7';
const ME2_T1 = 'MindEye2 (Scotti et al. 2024), Table 1';
const ME2_SET = '1,000 images, 40 sessions; mean of subjects 1, 2, 5, 7; every method re-run with its public code';

const row = (method: string, source: string, testSet: string, v: (number | null)[]): PublishedRow => ({
  method,
  source,
  testSet,
  values: Object.fromEntries(METRIC_COLUMNS.flatMap((c, i) => (v[i] === null ? [] : [[c, v[i] as number]]))),
});

export const PUBLISHED: readonly PublishedRow[] = [
  row('Takagi & Nishimoto (CVPR 2023)', BD_T1, BD_SET, [null, null, 83.0, 83.0, 76.0, 77.0, null, null]),
  row('Lin et al. (2022)', BD_T1, BD_SET, [null, null, null, null, 78.2, null, null, null]),
  row('Gu et al. (2022)', BD_T1, BD_SET, [0.15, 0.325, null, null, null, null, 0.862, 0.465]),
  row('Brain-Diffuser', BD_T1, BD_SET, [0.254, 0.356, 94.2, 96.2, 87.2, 91.5, 0.775, 0.423]),
  row('Takagi & Nishimoto "+Decoded Text" (2023 tech report)', ME2_T1, ME2_SET, [0.246, 0.41, 78.9, 85.6, 83.8, 82.1, 0.811, 0.504]),
  row('Brain-Diffuser', ME2_T1, ME2_SET, [0.273, 0.365, 94.4, 96.6, 91.3, 90.9, 0.728, 0.421]),
  row('MindEye1', ME2_T1, ME2_SET, [0.319, 0.36, 92.8, 96.9, 94.6, 93.3, 0.648, 0.377]),
  row('MindEye2', ME2_T1, ME2_SET, [0.322, 0.431, 96.1, 98.6, 95.4, 93.0, 0.619, 0.344]),
];
