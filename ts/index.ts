/// <reference lib="esnext.disposable" preserve="true" />
// Symbol.dispose / Symbol.asyncDispose (Node >= 20.4) type the library's `using` support; the reference
// above is kept in dist/index.d.ts, so a consumer's ES2022 project needs neither @types/node nor lib esnext.
export * from './errors.js';
export * from './matrix.js';
export { RidgeCV, setThreads, DEFAULT_ALPHAS, MAX_ENGINE_THREADS } from './ridge/RidgeCV.js';
export type { RidgeCVOptions, RidgeProgress, FitControl, FitManyControl, RidgeProblem, RidgeBackend } from './ridge/RidgeCV.js';
export type { RidgeCommonOptions } from './ridge/options.js';
export { RidgeModel } from './ridge/RidgeModel.js';
export type { RidgeScore, RidgeFitSettings, RidgeModelParts, PredictOptions, PredictAsyncOptions, PredictProgress } from './ridge/RidgeModel.js';
// what a fit reports (`model.info`: route, timings, memory: fixedBytes, batchBytes, peakBytes under memoryBudget), and
// what RidgeCV.costModel plans for a shape before any data is read (NativeMemoryPlan)
export type { NativeRidgeInfo, NativeMemoryInfo, NativeMemoryPlan, NativeRidgeSolver } from './native/ridgeTypes.js';
export { logspace, parseAlphas } from './ridge/alphas.js';
export { BoolArray, readNpy, writeNpy, readNpyHeader, readMatrixNpy, readIntVectorNpy } from './io/npy.js';
export type { NpyArray, NpyData, NpyDType, NpyHeader, MatrixReadOptions, NpyReadOptions } from './io/npy.js';
export type { NumericArray, DType } from './io/typedArrays.js';
export { readSafetensors, writeSafetensors } from './io/safetensors.js';
export type { SafetensorsFile, SafetensorsTensor } from './io/safetensors.js';
export { buildInfo } from './native/buildInfo.js';
export type { BuildInfo } from './native/buildInfo.js';
export type { NativeBuildInfo, NativeBackendInfo, NativeBlasCore } from './native/engineTypes.js';
export type { NativeGunzipInfo } from './native/gunzipTypes.js';
export * from './sd/index.js';
export * from './io/index.js';
export * from './nsd/index.js';
export * from './synth/index.js';
export * from './pipeline/index.js';
export * from './eval/index.js';
export { runDemo } from './demo/runDemo.js';
export type { DemoOptions, DemoResult, DemoControl } from './demo/runDemo.js';
export { buildDemoWorld } from './demo/world.js';
export type { DemoWorld, DemoWorldOptions, DemoWorldControl, DemoWorldProgress } from './demo/world.js';
export * from './encoding/index.js';
export * from './batch/index.js';
export * from './config/index.js';
