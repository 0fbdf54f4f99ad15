/** Where the default ONNX Runtime library lives (the sampler calls the engine through ts/native/call.ts). */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import { BackendUnavailableError } from '../errors.js';
import { shippedOrtLibrary } from '../native/binding.js';

const require = createRequire(import.meta.url);

/**
 * The default ONNX Runtime library: onnxruntime-node's own, when it is installed (so a process that
 * also uses its JS API loads one library), else the copy shipped beside the prebuilt engine.
 */
export function defaultOrtLibrary(): string {
  let pkgDir: string | undefined;
  try {
    pkgDir = dirname(require.resolve('onnxruntime-node/package.json'));
  } catch {
    pkgDir = undefined;
  }
  if (pkgDir) {
    const file =
      process.platform === 'win32' ? 'onnxruntime.dll' : process.platform === 'darwin' ? 'libonnxruntime.1.dylib' : 'libonnxruntime.so.1';
    return join(pkgDir, 'bin', 'napi-v6', process.platform, process.arch, file);
  }
  const shipped = shippedOrtLibrary();
  if (shipped) return shipped;
  throw new BackendUnavailableError(
    `no ONNX Runtime library: none ships with the package for ${process.platform}-${process.arch}, and onnxruntime-node is not installed; ` +
      '`npm install onnxruntime-node@1.30.0` (with ONNXRUNTIME_NODE_INSTALL=skip) or set BRAINLATENT_ORT_LIB',
  );
}

/** Option > BRAINLATENT_ORT_LIB > onnxruntime-node's library > the one shipped with the prebuilt engine. */
export function resolveOrtLibrary(option?: string): string {
  const path = option ?? process.env.BRAINLATENT_ORT_LIB ?? defaultOrtLibrary();
  if (!existsSync(path)) throw new BackendUnavailableError(`ONNX Runtime library not found: ${path}`);
  return path;
}
