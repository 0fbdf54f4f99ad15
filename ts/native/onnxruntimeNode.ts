/**
 * onnxruntime-node's JavaScript API, imported on first use. It is an optional peer dependency: the
 * engine runs the diffusion model itself through ONNX Runtime's C API (with the library shipped beside
 * the prebuilt engine, or onnxruntime-node's), and only these need the JS API — feature networks in
 * the evaluation, U-Net layer features for encoding models, and the TypeScript reference loop.
 * Types come from onnxruntime-common (a small dependency), so the public typings compile without it.
 */
import { createRequire } from 'node:module';

import type * as OrtCommon from 'onnxruntime-common';

import { BackendUnavailableError } from '../errors.js';
import { defaultOrtTelemetryOff } from './ortTelemetry.js';

export type OnnxRuntime = typeof OrtCommon;

let loading: Promise<OnnxRuntime> | undefined;

/** onnxruntime-node, or a BackendUnavailableError that says what needs it and how to install it. */
export function onnxruntimeNode(purpose: string): Promise<OnnxRuntime> {
  defaultOrtTelemetryOff(); // before onnxruntime-node can make its OrtEnv (ortTelemetry.ts)
  loading ??= import('onnxruntime-node') as Promise<OnnxRuntime>;
  return loading.catch((e: unknown) => {
    loading = undefined;
    const code = (e as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new BackendUnavailableError(
        `${purpose} runs on onnxruntime-node's JavaScript API, which is not installed: ` +
          '`npm install onnxruntime-node@1.30.0` (set ONNXRUNTIME_NODE_INSTALL=skip to skip its CUDA download)',
      );
    }
    throw e;
  });
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
