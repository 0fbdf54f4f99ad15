/**
 * The sampler's view of the native addon, loaded by ts/native/binding.ts, and where the default
 * ONNX Runtime library lives.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import { BackendUnavailableError } from '../errors.js';
import { binding } from '../native/binding.js';
import type { SamplerBinding } from '../native/samplerTypes.js';

const require = createRequire(import.meta.url);

export function samplerBinding(): SamplerBinding {
  const mod = binding() as unknown as Partial<SamplerBinding>;
  if (typeof mod.sdLoad !== 'function') {
    throw new BackendUnavailableError('the native engine was built without the sampler (no sdLoad export); rebuild it');
  }
  return mod as SamplerBinding;
}

/** onnxruntime-node's own libonnxruntime for this platform (the default runtime). */
export function defaultOrtLibrary(): string {
  let pkgDir: string;
  try {
    pkgDir = dirname(require.resolve('onnxruntime-node/package.json'));
  } catch {
    throw new BackendUnavailableError(
      'onnxruntime-node is not installed, so there is no default ONNX Runtime library; install it or set BRAINLATENT_ORT_LIB',
    );
  }
  const file =
    process.platform === 'win32' ? 'onnxruntime.dll' : process.platform === 'darwin' ? 'libonnxruntime.1.dylib' : 'libonnxruntime.so.1';
  return join(pkgDir, 'bin', 'napi-v6', process.platform, process.arch, file);
}

/** Option > BRAINLATENT_ORT_LIB > onnxruntime-node's library. */
export function resolveOrtLibrary(option?: string): string {
  const path = option ?? process.env.BRAINLATENT_ORT_LIB ?? defaultOrtLibrary();
  if (!existsSync(path)) throw new BackendUnavailableError(`ONNX Runtime library not found: ${path}`);
  return path;
}
