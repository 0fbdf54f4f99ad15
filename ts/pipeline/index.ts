/** The reconstruction pipeline: config, stages, run folder. */
export { reconstruct, estimateImg2Img } from './reconstruct.js';
export { estimateStages } from './estimate.js';
export type { StageEstimate } from './estimate.js';
export type { ReconstructOptions, ReconstructProgress, ReconstructResult } from './reconstruct.js';
export type { StageReport, StageProgress, StageDef, StageCount, StageRunContext, StageResult } from './stageRunner.js';
export type { PreflightResult } from './preflight.js';
export type { ImageOutputs, PlannedImages } from './outputSpace.js';
export type { Img2ImgShard, Img2ImgSharding } from './stages.js';
export { resolveConfig, configHash, CONFIG_SCHEMA, DEFAULTS, DEFAULT_ALPHAS as DEFAULT_DECODER_ALPHAS } from './config.js';
export type { ReconstructConfig, ReconstructConfigInput, DecoderConfig, FeatureNetworkConfig } from './config.js';
export { ConfigError, PreflightError } from './errors.js';
export { STAGES, paths as runPaths } from './runFolder.js';
export type { StageName, RunFailure, RunManifest, StageVersionsSummary } from './runFolder.js';
