/** Public surface of the encoding models (for ts/index.ts). */
export { encode, encodeResult, encodeStages, alignFeatures, encodeExtractOptions } from './encode.js';
export type { EncodeConfig, EncodeConfigInput, EncodeOptions, EncodeProgress, EncodeResult, FeatureSetResult, BandedResult } from './encode.js';
export { BandedRidgeCV, dirichletGammas, concatSpaces } from './BandedRidgeCV.js';
export type { BandedRidgeCVOptions, FeatureSpaces } from './BandedRidgeCV.js';
export { BandedRidgeModel } from './BandedRidgeModel.js';
export { partitionVariance } from './variancePartition.js';
export type { VariancePartition } from './variancePartition.js';
export { computeFeatures, readFeatureFile, featureSetNames } from './features.js';
export type { FeatureSetSpec, FeatureTable, ImageSource, FeatureOptions } from './features.js';
export { listUnetLayers, exposeUnetLayers } from './unetLayers.js';
export type { UnetLayer, ExposedUnet } from './unetLayers.js';
export { columnPearson, columnR2 } from './metrics.js';
export { noiseCeilingFromNcsnr, estimateNcsnr } from './noiseCeiling.js';
export { writeMosaic } from './mosaic.js';
export type { MosaicOptions } from './mosaic.js';
export { regionTable, regionCsv, loadRegionLabels } from './regions.js';
export type { RegionRow, RegionLabels } from './regions.js';
