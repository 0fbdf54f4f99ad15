/** Public surface of the sampler (for ts/index.ts: `export * from './sd/index.js'`). */
export { Diffusion, SCHEDULERS, noiseKeys } from './Diffusion.js';
export type { DiffusionLoadOptions, Img2ImgOptions, Img2ImgResult, PlanOptions, SchedulerName, SdComponent, StepProgress } from './Diffusion.js';
export { ClipTokenizer, bytesToUnicode } from './clipTokenizer.js';
export type { ClipTokenizerOptions } from './clipTokenizer.js';
export { writeSdFixture, SD_FIXTURE_VARIANTS } from './fixture.js';
export type { SdFixtureOptions } from './fixture.js';
export { readPng, writePng } from './png.js';
export { philoxNormal } from './philox.js';
export { readScheduleConfig, SD1_SCHEDULE } from './schedulerConfig.js';
export { tensor, type Tensor, type RgbImages } from './tensor.js';
export type { OrtSessionOptions, ProviderSettings } from './native.js';
export { referenceImg2Img } from './referenceLoop.js';
export type { ReferenceOptions, UNetFn } from './referenceLoop.js';
export type { RefScheduler, RefSchedulerConfig, SchedulerVector } from './referenceSchedulers.js';
export type { TimestepSpacing } from './samplingOptions.js';
export type { OrtRuntimeInfo, SdModelSummary, SamplerPlanInfo, ScheduleConfig, Img2ImgStats, SdTensorInfo, PlannedStepInfo, NativeStepProgress } from '../native/samplerTypes.js';
export { OnnxModel, unetFeatures } from './OnnxModel.js';
export type { OnnxModelLoadOptions, OnnxInputTensor } from './OnnxModel.js';
