/** Published NSD reconstruction results (method.md §7), for the comparison table. 2WI columns in %. */
export const METRIC_COLUMNS = ['PixCorr', 'SSIM', 'AlexNet(2)', 'AlexNet(5)', 'Inception', 'CLIP', 'EffNet-B', 'SwAV'] as const;
export type MetricColumn = (typeof METRIC_COLUMNS)[number];

export interface PublishedRow {
  method: string;
  source: string;
  values: Partial<Record<MetricColumn, number>>;
}

const row = (method: string, source: string, v: (number | null)[]): PublishedRow => ({
  method,
  source,
  values: Object.fromEntries(METRIC_COLUMNS.flatMap((c, i) => (v[i] === null ? [] : [[c, v[i] as number]]))),
});

export const PUBLISHED: readonly PublishedRow[] = [
  row('Takagi & Nishimoto (CVPR 2023)', 'Brain-Diffuser Table 1, 982 images, 37 sessions', [null, null, 83.0, 83.0, 76.0, 77.0, null, null]),
  row('Brain-Diffuser', 'Brain-Diffuser Table 1, 982 images, 37 sessions', [0.254, 0.356, 94.2, 96.2, 87.2, 91.5, 0.775, 0.423]),
  row('Takagi & Nishimoto "+Decoded Text"', 'MindEye2 Table 1, mean subj 1/2/5/7, 1,000 images, 40 sessions', [0.246, 0.41, 78.9, 85.6, 83.8, 82.1, 0.811, 0.504]),
  row('Brain-Diffuser', 'MindEye2 Table 1, mean subj 1/2/5/7, 40 sessions', [0.273, 0.365, 94.4, 96.6, 91.3, 90.9, 0.728, 0.421]),
  row('MindEye1', 'MindEye2 Table 1, mean subj 1/2/5/7, 40 sessions', [0.319, 0.36, 92.8, 96.9, 94.6, 93.3, 0.648, 0.377]),
  row('MindEye2', 'MindEye2 Table 1, mean subj 1/2/5/7, 40 sessions', [0.322, 0.431, 96.1, 98.6, 95.4, 93.0, 0.619, 0.344]),
];
