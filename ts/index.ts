/// <reference lib="esnext.disposable" preserve="true" />
/// <reference types="node" preserve="true" />
// Symbol.dispose / Symbol.asyncDispose (Node >= 20.4) type the library's `using` support: the lib reference is kept in
// dist/index.d.ts, so a consumer's project needs no lib esnext. The typings name Node's types (Buffer, FileHandle,
// NodeJS.ReadableStream): the types reference brings in the consumer's @types/node even where its tsconfig lists
// `types` without it, and names the missing package where none is installed (README, "TypeScript").
// the ridge engine (RidgeCV, BandedRidgeCV, their models, the errors, Matrix, buildInfo): also the entry point
// brainlatent/ridge, which loads only its own modules; re-exported here, so each class is one object from both entries
export * from './ridge/index.js';
export { BoolArray, readNpy, writeNpy, readNpyHeader, readMatrixNpy, readIntVectorNpy } from './io/npy.js';
export type { NpyArray, NpyData, NpyDType, NpyHeader, MatrixReadOptions, NpyReadOptions } from './io/npy.js';
export type { NumericArray, DType } from './io/typedArrays.js';
export { readSafetensors, writeSafetensors } from './io/safetensors.js';
export type { SafetensorsFile, SafetensorsTensor } from './io/safetensors.js';
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
