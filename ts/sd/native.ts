/**
 * The sampler's view of the native addon. Loads build/Release/brainlatent.node (the one file
 * ts/native/binding.ts also loads; Node caches it, so both see the same module).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { BackendUnavailableError } from '../errors.js';
import type { SamplerBinding } from '../native/samplerTypes.js';

const require = createRequire(import.meta.url);
let cached: SamplerBinding | undefined;

/** The repository (package) root: the folder above ts/ or dist/. */
export function packageRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
}

export function samplerBinding(): SamplerBinding {
  if (cached) return cached;
  const path = process.env.BRAINLATENT_ADDON ?? join(packageRoot(), 'build', 'Release', 'brainlatent.node');
  if (!existsSync(path)) {
    throw new BackendUnavailableError(`the native engine is not built: ${path} is missing (run npm run build)`);
  }
  const mod = require(path) as Partial<SamplerBinding>;
  if (typeof mod.sdLoad !== 'function') {
    throw new BackendUnavailableError(`${path} was built without the sampler (no sdLoad export); rebuild it`);
  }
  cached = mod as SamplerBinding;
  return cached;
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
