/** Where the default ONNX Runtime library lives (the sampler calls the engine through ts/native/call.ts). */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import { BackendUnavailableError, InvalidArgumentError } from '../errors.js';
import { onnxruntimeNodeInstallLine } from '../optionalDependencies.js';
import { shippedOrtLibrary, shippedOrtLibraryLocation } from '../native/binding.js';
import { describeNumber } from '../ridge/alphas.js';
import { MAX_ORT_THREADS } from './optionBounds.js';
import { spinningFromEnv } from './spinningEnv.js';
import type { NativeOrtSessionOptions } from '../native/samplerTypes.js';

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
  throw new BackendUnavailableError(noOrtLibraryMessage(shippedOrtLibraryLocation(), `${process.platform}-${process.arch}`));
}

/**
 * Why no default ONNX Runtime library was found: onnxruntime-node is not installed, and the package's own copy is
 * missing from where it ships (`shipped.file`, named) or none ships for this platform; with the ways out.
 */
export function noOrtLibraryMessage(shipped: { file: string; prebuildFolder: boolean } | undefined, platform: string): string {
  const packaged = shipped?.prebuildFolder
    ? `the copy that ships with the package is missing (no ${shipped.file}: reinstall brainlatent)`
    : `none ships with the package for ${platform}`;
  return (
    `no ONNX Runtime library: ${packaged}, and onnxruntime-node is not installed; ` +
    `\`${onnxruntimeNodeInstallLine()}\` or set BRAINLATENT_ORT_LIB to a libonnxruntime`
  );
}

/** Option > BRAINLATENT_ORT_LIB > onnxruntime-node's library > the one shipped with the prebuilt engine. */
export function resolveOrtLibrary(option?: string): string {
  const fromEnv = process.env.BRAINLATENT_ORT_LIB;
  const [path, source] =
    option !== undefined
      ? [option, 'the ortLibrary option (--ort-lib)']
      : fromEnv
        ? [fromEnv, 'BRAINLATENT_ORT_LIB']
        : [defaultOrtLibrary(), "onnxruntime-node's, the default"];
  if (!existsSync(path)) throw new BackendUnavailableError(`ONNX Runtime library not found: ${path} (from ${source})`);
  return path;
}

/** How provider 'cuda' is loaded and configured (DiffusionLoadOptions, OnnxModelLoadOptions). */
export interface ProviderSettings {
  provider?: string;
  /**
   * A plugin execution-provider library for provider 'cuda' (libonnxruntime_providers_cuda.so), for an
   * ONNX Runtime core whose classic CUDA provider is not enabled (e.g. ONNX Runtime 1.29's CPU core with
   * its CUDA 13 provider): registered once per process, its device `deviceId` selected. Default
   * BRAINLATENT_ORT_PROVIDER_LIB; neither: the core's built-in CUDA provider.
   */
  providerLibrary?: string;
  /** Passed through to the provider as strings, e.g. `{ use_tf32: '0' }` for fp32 results; the device is `deviceId`. */
  providerOptions?: Record<string, string>;
}

/** How an ONNX Runtime session is made: the library, the provider and device, threads and memory (Diffusion.load, OnnxModel.load). */
export interface OrtSessionOptions extends ProviderSettings {
  /** libonnxruntime to load; default BRAINLATENT_ORT_LIB, else onnxruntime-node's, else the one shipped with the prebuilt engine. */
  ortLibrary?: string;
  /** Execution provider: 'cpu' (default), 'cuda', or another name ONNX Runtime knows. */
  provider?: string;
  /** The CUDA device (ordinal), default 0. */
  deviceId?: number;
  intraOpThreads?: number;
  interOpThreads?: number;
  /**
   * ONNX Runtime's intra-op thread spinning (default true, or BRAINLATENT_ORT_SPINNING's 0/1). Off is faster when
   * the threads share their cores: several sessions sampling at once, a busy machine (docs/sampler.md).
   */
  spinning?: boolean;
  optimization?: 'disable' | 'basic' | 'extended' | 'all';
  /**
   * ONNX Runtime's memory behaviour. 'default': its own (a CPU arena, memory patterns, pre-packed weights);
   * 'lean': all three off, initializers allocated outside the arena, graph optimization 'extended' (no
   * NCHWc re-layout: the external weights stay memory-mapped) and, in Diffusion, one row per U-Net run —
   * SD 1.x's 3.4 GB U-Net at 64×64 peaked at 1.46× its weights. The switches below override either.
   */
  memory?: 'default' | 'lean';
  memoryArena?: boolean;
  memoryPattern?: boolean;
  prepacking?: boolean;
  initializersMalloc?: boolean;
}

/** The names of OrtSessionOptions (each once: the record's type lists them all), for the callers' unknown-key checks. */
const SESSION_KEYS: Record<keyof OrtSessionOptions, true> = {
  ortLibrary: true,
  provider: true,
  providerLibrary: true,
  providerOptions: true,
  deviceId: true,
  intraOpThreads: true,
  interOpThreads: true,
  spinning: true,
  optimization: true,
  memory: true,
  memoryArena: true,
  memoryPattern: true,
  prepacking: true,
  initializersMalloc: true,
};
export const ORT_SESSION_OPTION_KEYS = Object.keys(SESSION_KEYS) as (keyof OrtSessionOptions)[];

/**
 * The session options the engine would otherwise refuse with a TypeError naming its own field ("option 'spinning'
 * must be a boolean"): the switches, the provider, the library and the device, named with `where`.
 */
function checkSessionTypes(o: OrtSessionOptions, where: string): void {
  for (const key of ['spinning', 'memoryArena', 'memoryPattern', 'prepacking', 'initializersMalloc'] as const) {
    const v: unknown = o[key];
    if (v !== undefined && typeof v !== 'boolean') throw new InvalidArgumentError(`${where} ${key}: expected true or false, got ${describeNumber(v)}`);
  }
  for (const key of ['provider', 'ortLibrary'] as const) {
    const v: unknown = o[key];
    if (v !== undefined && (typeof v !== 'string' || v.length === 0)) {
      throw new InvalidArgumentError(`${where} ${key}: expected a non-empty string, got ${describeNumber(v)}`);
    }
  }
  const device: unknown = o.deviceId;
  if (device !== undefined && (typeof device !== 'number' || !Number.isSafeInteger(device) || device < 0)) {
    throw new InvalidArgumentError(`${where} deviceId: expected an integer >= 0 (the CUDA device's ordinal), got ${describeNumber(device)}`);
  }
}

/** Checks providerLibrary / providerOptions once, at the public boundary; returns only what was given. */
export function checkProviderSettings(o: ProviderSettings, where: string): Pick<ProviderSettings, 'providerLibrary' | 'providerOptions'> {
  const out: Pick<ProviderSettings, 'providerLibrary' | 'providerOptions'> = {};
  if (o.providerLibrary !== undefined) {
    if (typeof o.providerLibrary !== 'string' || o.providerLibrary.length === 0) {
      throw new InvalidArgumentError(`${where}: providerLibrary must be a file path (a non-empty string), got ${JSON.stringify(o.providerLibrary)}`);
    }
    if (o.provider !== 'cuda') {
      throw new InvalidArgumentError(`${where}: providerLibrary is for provider 'cuda', but provider is ${JSON.stringify(o.provider ?? 'cpu')}`);
    }
    out.providerLibrary = o.providerLibrary;
  }
  if (o.providerOptions !== undefined) {
    const po: unknown = o.providerOptions;
    if (po === null || typeof po !== 'object' || Array.isArray(po) || Object.getPrototypeOf(po) !== Object.prototype) {
      throw new InvalidArgumentError(`${where}: providerOptions must be a plain object of strings, e.g. { use_tf32: '0' }`);
    }
    const copy: Record<string, string> = {};
    for (const [key, value] of Object.entries(po)) {
      if (key.length === 0) throw new InvalidArgumentError(`${where}: providerOptions has an empty key`);
      if (key === 'device_id') throw new InvalidArgumentError(`${where}: providerOptions.device_id is not taken: give the device as deviceId`);
      if (typeof value !== 'string') {
        throw new InvalidArgumentError(`${where}: providerOptions.${key} must be a string, got ${typeof value} (${String(value)})`);
      }
      copy[key] = value;
    }
    // (ONNX Runtime's CPU provider takes no options: the engine would drop them without a word)
    if ((o.provider ?? 'cpu') === 'cpu' && Object.keys(copy).length > 0) {
      throw new InvalidArgumentError(
        `${where}: providerOptions (${Object.keys(copy).join(', ')}) are for an execution provider such as 'cuda', but provider is "cpu", which takes none`,
      );
    }
    out.providerOptions = copy;
  }
  return out;
}

/** The largest count the engine takes where it holds an int (threads, rows per run, batch sizes, chunks). */
export const INT32_MAX = 2 ** 31 - 1;

/** ONNX Runtime's thread counts: integers from 0 (its default, all cores for intra-op) to MAX_ORT_THREADS. */
export function checkThreadCounts(o: { intraOpThreads?: unknown; interOpThreads?: unknown }, where: string): void {
  for (const key of ['intraOpThreads', 'interOpThreads'] as const) {
    const v = o[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > MAX_ORT_THREADS) {
      throw new InvalidArgumentError(`${where} ${key}: expected an integer in 0..${MAX_ORT_THREADS} (0: ONNX Runtime's default), got ${describeNumber(v)}`);
    }
  }
}

/**
 * A session's options as the addon takes them (Diffusion.load, OnnxModel.load): the library resolved, the provider
 * settings and thread counts checked, and the session's own fields passed on, no other key of the caller's object.
 */
export function nativeSessionOptions(o: OrtSessionOptions, where: string): NativeOrtSessionOptions {
  checkSessionTypes(o, where);
  const ortLibrary = resolveOrtLibrary(o.ortLibrary);
  const providerSettings = checkProviderSettings(o, where);
  checkThreadCounts(o, where);
  return {
    ortLibrary,
    intraOpThreads: o.intraOpThreads,
    interOpThreads: o.interOpThreads,
    provider: o.provider,
    deviceId: o.deviceId,
    ...providerSettings,
    // (unset: BRAINLATENT_ORT_SPINNING, which a batch pool of several job processes sets to 0; else ONNX Runtime's true)
    spinning: o.spinning ?? spinningFromEnv(),
    optimization: o.optimization,
    memory: o.memory,
    memoryArena: o.memoryArena,
    memoryPattern: o.memoryPattern,
    prepacking: o.prepacking,
    initializersMalloc: o.initializersMalloc,
  };
}
