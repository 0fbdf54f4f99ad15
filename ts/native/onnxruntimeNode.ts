/**
 * onnxruntime-node's JavaScript API, imported on first use. It is an optional peer dependency: the
 * engine runs the diffusion model itself through ONNX Runtime's C API (with the library shipped beside
 * the prebuilt engine, or onnxruntime-node's), and only these need the JS API — feature networks in
 * the evaluation, U-Net layer features for encoding models, and the TypeScript reference loop.
 * Types come from onnxruntime-common (a small dependency), so the public typings compile without it.
 */
import { createRequire } from 'node:module';
import { isMainThread } from 'node:worker_threads';

import type * as OrtCommon from 'onnxruntime-common';

import { BackendUnavailableError } from '../errors.js';
import { onnxruntimeNodeInstallCommand } from '../optionalDependencies.js';
import { resolveOrtLibrary } from '../sd/native.js';
import { nativeSync } from './call.js';
import { defaultOrtTelemetryOff } from './ortTelemetry.js';

export type OnnxRuntime = typeof OrtCommon;

let loading: Promise<OnnxRuntime> | undefined;

/** onnxruntime-node, or a BackendUnavailableError that says what needs it and how to install it. */
export function onnxruntimeNode(purpose: string): Promise<OnnxRuntime> {
  // before onnxruntime-node can make its OrtEnv (ortTelemetry.ts)
  if (defaultOrtTelemetryOff() && !isMainThread) telemetryOffFromThread();
  loading ??= import('onnxruntime-node') as Promise<OnnxRuntime>;
  return loading.catch((e: unknown) => {
    loading = undefined;
    const code = (e as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new BackendUnavailableError(
        `${purpose} runs on onnxruntime-node's JavaScript API, which is not installed: ` +
          `\`${onnxruntimeNodeInstallCommand()}\` (set ONNXRUNTIME_NODE_INSTALL=skip to skip its CUDA download)`,
      );
    }
    throw e;
  });
}

/**
 * A worker thread's process.env is its own copy, which native code does not see (Node: not visible to native
 * add-ons unless the Worker shares the environment), so the variable set there does not reach the ONNX Runtime
 * that onnxruntime-node starts: a first session made in a worker thread wrote the telemetry files. The engine's
 * ONNX Runtime load sets it in the process environment, unless it is there (native/core/src/ort_runtime.cpp), and
 * makes the process's first OrtEnv with it; its default library is onnxruntime-node's own, so no second library is
 * loaded. Best effort: a failure is left for onnxruntime-node's own load to report.
 */
function telemetryOffFromThread(): void {
  try {
    nativeSync((b) => b.ortLoad(resolveOrtLibrary()));
  } catch {
    // (no engine or no library here: onnxruntime-node says what is missing when it loads)
  }
}

/** Whether onnxruntime-node can be imported from here (without importing it). */
export function onnxruntimeNodeInstalled(): boolean {
  try {
    createRequire(import.meta.url).resolve('onnxruntime-node');
    return true;
  } catch {
    return false;
  }
}
