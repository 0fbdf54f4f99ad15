/// <reference lib="esnext.disposable" preserve="true" />
/// <reference types="node" preserve="true" />
// (what the references at the top of ts/index.ts do, for a service that imports only this entry)
/**
 * `brainlatent/ridge`: the ridge engine alone — RidgeCV and BandedRidgeCV, the models they fit, the errors they throw
 * and the engine's build report — for a service that embeds only the solvers. It loads about 37 of the package's
 * modules where `import('brainlatent')` loads about 225 (test/package/entryModules.test.ts). The main entry re-exports
 * this module, so a class is the same object from either entry (`instanceof` holds across them).
 */
export * from '../errors.js';
export * from '../matrix.js';
export { RidgeCV, setThreads, DEFAULT_ALPHAS, MAX_ENGINE_THREADS } from './RidgeCV.js';
export type { RidgeCVOptions, RidgeProgress, FitControl, FitManyControl, RidgeProblem, RidgeBackend } from './RidgeCV.js';
export type { RidgeCommonOptions } from './options.js';
export { RidgeModel } from './RidgeModel.js';
export type { RidgeScore, RidgeFitSettings, RidgeModelParts, PredictOptions, PredictAsyncOptions, PredictProgress } from './RidgeModel.js';
// what a fit reports (`model.info`: route, timings, memory: fixedBytes, batchBytes, peakBytes under memoryBudget), and
// what RidgeCV.costModel plans for a shape before any data is read (NativeMemoryPlan)
export type { NativeRidgeInfo, NativeMemoryInfo, NativeMemoryPlan, NativeRidgeSolver } from '../native/ridgeTypes.js';
export { logspace, parseAlphas } from './alphas.js';
export { BandedRidgeCV, dirichletGammas } from './BandedRidgeCV.js';
export type { BandedRidgeCVOptions } from './BandedRidgeCV.js';
export { concatSpaces } from './featureSpaces.js';
export type { FeatureSpaces } from './featureSpaces.js';
export { BandedRidgeModel } from './BandedRidgeModel.js';
export type { BandedRidgeModelParts } from './BandedRidgeModel.js';
export type { NativeBandedInfo } from '../native/bandedTypes.js';
// the engine a service reports (BLAS, threads, backends, where the addon was loaded from)
export { buildInfo } from '../native/buildInfo.js';
export type { BuildInfo } from '../native/buildInfo.js';
export type { NativeBuildInfo, NativeBackendInfo, NativeBlasCore } from '../native/engineTypes.js';
export type { NativeGunzipInfo } from '../native/gunzipTypes.js';
