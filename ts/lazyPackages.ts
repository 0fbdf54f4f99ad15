/**
 * Packages loaded on first use rather than when a module that needs them is imported: the main entry re-exports
 * nearly everything, so a static import anywhere under it made every caller (a service that only fits ridge
 * models) load ajv, onnx-proto with protobufjs, pngjs and nifti-reader-js at start-up. test/package/entryModules
 * .test.ts checks that importing the entry loads none of them. The CommonJS ones are required synchronously, so
 * the synchronous functions that use them keep their signatures; nifti-reader-js is ESM only (a require of it
 * needs Node ≥ 20.19), so it is imported, from async code. Node caches each package after its first load.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** ajv (CommonJS): the JSON Schema validator of configs and batch manifests. */
export function ajvPackage(): typeof import('ajv') {
  return require('ajv') as typeof import('ajv');
}

/** onnx-proto's `onnx` namespace (CommonJS, on protobufjs): ONNX messages encoded and decoded. */
export function onnxProto(): typeof import('onnx-proto').onnx {
  // (kept: the weight-reference walk asks for it once per tensor)
  onnx ??= (require('onnx-proto') as typeof import('onnx-proto')).onnx;
  return onnx;
}
let onnx: typeof import('onnx-proto').onnx | undefined;

/** pngjs (CommonJS): PNG files read in the formats brainlatent does not write (ts/io/pngWrite writes them). */
export function pngjsPackage(): typeof import('pngjs') {
  return require('pngjs') as typeof import('pngjs');
}

/** nifti-reader-js (ESM only): NIfTI headers parsed. */
export function niftiReaderPackage(): Promise<typeof import('nifti-reader-js')> {
  return import('nifti-reader-js');
}
