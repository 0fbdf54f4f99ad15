/** Evaluation of reconstructions with the NSD protocol's definitions. */
export { MAX_METRIC_SIZE, pixCorr, ssim } from './pixel.js';
export type { PerImageMetric, PixelMetricOptions } from './pixel.js';
export { twoWayIdentification, twoWayFromCorrelations, correlationDistance, correlationMatrix } from './identification.js';
export type { CorrelationDistanceResult, IdentificationOptions, TwoWayResult } from './identification.js';
export { FeatureNetwork, IMAGENET_MEAN, IMAGENET_STD } from './featureNetwork.js';
export type { FeatureNetworkSpec } from './featureNetwork.js';
export { averageMetrics, Evaluation, evaluateReconstructions, pixelFeatures } from './evaluate.js';
export type { EvaluationProgress } from './evaluate.js';
export type { EvaluateOptions, EvaluationResult, MetricValue } from './evaluate.js';
export { metricsCsv, metricsText } from './table.js';
export type { TableRow, Better } from './table.js';
export { PUBLISHED, METRIC_COLUMNS } from './published.js';
export type { PublishedRow, MetricColumn } from './published.js';
