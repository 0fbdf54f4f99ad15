import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants as bufferConstants } from 'node:buffer';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';

import { BrainlatentError } from '../errors.js';
import type { Binding } from './addonTypes.js';
import { loadFailureAdvice } from './loadAdvice.js';
import { defaultOrtTelemetryOff } from './ortTelemetry.js';

/** The package root: dist/native/binding.js and ts/native/binding.ts both sit two levels below it. */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const require = createRequire(import.meta.url);

/** node-gyp-build's resolver: the file it would load for this platform, arch, libc and Node-API. */
interface NodeGypBuild {
  resolve(dir: string): string;
}

const HOW_TO_BUILD =
  'Build the engine from source: `BRAINLATENT_BUILD_FROM_SOURCE=1 npm rebuild brainlatent --foreground-scripts` ' +
  "(a few minutes; npm 11 runs the package's install script unless allowScripts denies it: `npm install-scripts approve brainlatent` " +
  'allows it; in a checkout: `npm run build`). It needs cmake, a C++17 compiler and a BLAS/LAPACK ' +
  '(Debian/Ubuntu: sudo apt-get install cmake g++ libopenblas-dev).';

/**
 * The addon file to load, in this order: BRAINLATENT_ADDON (a path), then what node-gyp-build picks
 * — a source build in build/Release (or build/Debug), then the prebuild shipped in
 * prebuilds/<platform>-<arch>/ that matches this libc and Node-API (BRAINLATENT_PREBUILD=<dir> points it at
 * another package folder).
 */
export function addonPath(): string {
  const forced = process.env.BRAINLATENT_ADDON;
  if (forced) {
    if (!existsSync(forced)) throw new BrainlatentError(`BRAINLATENT_ADDON=${forced}: no such file`, 'NativeNotBuilt');
    return forced;
  }
  // node-gyp-build's first choice, found without loading it (~4 ms of every engine command's start-up): a source
  // build in build/Release, unless BRAINLATENT_PREBUILD points node-gyp-build elsewhere.
  const sourceBuild = path.join(packageRoot, 'build', 'Release', 'brainlatent.node');
  if (!process.env.BRAINLATENT_PREBUILD && existsSync(sourceBuild)) return sourceBuild;
  try {
    return (require('node-gyp-build') as NodeGypBuild).resolve(packageRoot);
  } catch (e) {
    throw new BrainlatentError(
      `no native engine for ${process.platform}-${process.arch}: no source build in ${path.join(packageRoot, 'build', 'Release')} ` +
        `and no matching prebuild in ${path.join(packageRoot, 'prebuilds')} (${(e as Error).message.split('\n')[0]}). ${HOW_TO_BUILD}`,
      'NativeNotBuilt',
    );
  }
}

let cached: Binding | undefined;
let cachedPath: string | undefined;

/** Loads the native addon once. The only place that touches the .node file. */
export function binding(): Binding {
  if (cached) return cached;
  defaultOrtTelemetryOff(); // before the engine can load ONNX Runtime (ortTelemetry.ts)
  const file = addonPath();
  try {
    cached = require(file) as Binding;
  } catch (e) {
    const message = (e as Error).message;
    throw new BrainlatentError(`the native engine ${file} failed to load: ${message}. ${loadFailureAdvice(message, HOW_TO_BUILD)}`, 'NativeNotBuilt');
  }
  cachedPath = file;
  // (this Node's own limit for memory handed over from native code: 4 GiB on Node 20, 2^53 − 1 from Node 22)
  cached.setMaxExternalBytes(Math.min(bufferConstants.MAX_LENGTH, Number.MAX_SAFE_INTEGER));
  if (isMainThread) stopJobThreadsAtExit(cached, file);
  return cached;
}

/**
 * Ends the engine's jobs and joins its threads when the process exits, before Node's exit sequence runs (and exit()
 * the libraries' exit handlers, OpenBLAS's among them, which joins its worker threads: with an engine thread still
 * computing in them, process.exit() during a fit hung for ever; ONNX Runtime's statics, destroyed under a running
 * U-Net, crashed it). Three hooks, as Node 20's exit paths go (lib/internal/process/per_thread.js, execution.js,
 * src/api/hooks.cc):
 * - process.emit, wrapped: every 'exit' event (process.exit()'s first step, an uncaught exception's exit, the event
 *   loop's natural end, whose C++ looks `emit` up on the process object) stops the threads before any listener runs.
 *   A listener of the caller's prepended after the engine loaded, throwing during an uncaught exception's exit, ended
 *   the event before the engine's listener (Node swallows the throw and exits through exit()), which left the jobs to
 *   the backstop below;
 * - a prepended 'exit' listener, in case a later wrapper of process.emit does not call through;
 * - process.reallyExit, which process.exit() calls after the event: it still runs when the event skipped the
 *   listeners (the caller's own listener called process.exit() again, or the listeners were removed).
 * (The first stop makes the others no-ops.) exit() called by native code (another addon; process.reallyExit's
 * original, kept from before the engine loaded) reaches none of them, and meets the engine's exit handler, the
 * backstop (kit.cpp): with jobs still computing it ends the process at once with exit()'s status (README, "When the
 * process exits"). A job that cannot be cancelled (a model load) runs to its end first, as libuv's pool made the exit
 * wait for it. (A worker_thread's jobs end with its environment.)
 */
function stopJobThreadsAtExit(b: Binding, file: string): void {
  // Once per addon file and process: this module is evaluated again wherever a module registry is not shared (vitest's
  // vm pools, a cache-busting import), and each copy added a listener (MaxListenersExceededWarning at the 11th). The
  // engine's job threads belong to the loaded .node file, which every copy shares.
  const registry = process as unknown as Record<symbol, Set<string> | undefined>;
  const stopped = (registry[EXIT_HOOKS] ??= new Set<string>());
  if (stopped.has(file)) return;
  stopped.add(file);
  const emit = process.emit as (this: NodeJS.Process, event: string | symbol, ...args: unknown[]) => boolean;
  process.emit = function (this: NodeJS.Process, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'exit') b.stopJobThreads();
    return emit.call(this, event, ...args);
  } as typeof process.emit;
  process.prependListener('exit', () => b.stopJobThreads());
  const proc = process as unknown as { reallyExit: (code?: number) => never };
  const reallyExit = proc.reallyExit;
  proc.reallyExit = function (this: unknown, code?: number): never {
    b.stopJobThreads();
    return reallyExit.call(this, code);
  };
}

/** Where the process records the addon files whose job threads its exit stops (shared by every copy of this module). */
const EXIT_HOOKS = Symbol.for('brainlatent.stopJobThreadsAtExit');

/** The file binding() loaded (loading it first). */
export function loadedAddonPath(): string {
  binding();
  return cachedPath as string;
}

/**
 * Where the package keeps the ONNX Runtime library it ships beside the prebuilt engine on this platform
 * (prebuilds/<platform>-<arch>/libonnxruntime.so.1 on Linux), and whether it ships a prebuilt engine here at all (that
 * folder exists: linux-x64 in the package, not in a checkout or on other platforms); undefined off Linux.
 */
export function shippedOrtLibraryLocation(): { file: string; prebuildFolder: boolean } | undefined {
  if (process.platform !== 'linux') return undefined;
  const folder = path.join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`);
  return { file: path.join(folder, 'libonnxruntime.so.1'), prebuildFolder: existsSync(folder) };
}

/**
 * The ONNX Runtime library shipped in the package beside the prebuilt engine (prebuilds/linux-x64/
 * carries onnxruntime-node's libonnxruntime.so.1), or undefined where none ships (other platforms, a
 * checkout) or it is gone. A source build on linux-x64 uses it too.
 */
export function shippedOrtLibrary(): string | undefined {
  const lib = shippedOrtLibraryLocation()?.file;
  return lib && existsSync(lib) ? lib : undefined;
}
