/**
 * An SD model's `provider` that this service's ONNX Runtime cannot run ('cuda' on a CPU-only host, a name it does not
 * know) is the request's problem, not the service's fault, and retrying will not change it: a 400 naming
 * body.provider and the providers the service has, in place of the engine's message (ONNX Runtime's internals, the
 * server's paths, and advice to set BRAINLATENT_ORT_LIB, which only the operator can). The engine's message goes to
 * the server's log. Without an ONNX Runtime at all no provider runs: that stays the service's 500.
 */
import type { FastifyBaseLogger } from 'fastify';

import { BackendUnavailableError } from '../../errors.js';
import { nativeSync } from '../../native/call.js';
import type { OrtRuntimeInfo } from '../../native/samplerTypes.js';
import { resolveOrtLibrary } from '../../sd/native.js';
import { requestedBackend } from '../httpErrors.js';

/**
 * The engine's refusals of an execution provider (ort_provider.cpp): its library, its devices, its registration. Other
 * BackendUnavailable failures of a load (ONNX Runtime too old for external data, BRAINLATENT_SD_DEVICE_LOOP without
 * the CUDA backend, a failed device probe) are the service's, whatever the provider asked for: they stay a 500.
 */
const PROVIDER_REFUSED = /execution provider|CUDA provider library|^CUDA device \d+ does not exist/;

export function providerRefusal(e: unknown, provider: string | undefined, log: FastifyBaseLogger): unknown {
  if (!(e instanceof BackendUnavailableError) || provider === undefined || provider === 'cpu') return e;
  if (!PROVIDER_REFUSED.test(e.message)) return e;
  let runtime: OrtRuntimeInfo;
  try {
    // (the library Diffusion.load loaded: the service passes no ortLibrary, so the default one)
    runtime = nativeSync((b) => b.ortLoad(resolveOrtLibrary()));
  } catch {
    return e;
  }
  log.warn({ err: e, provider }, 'model load: the execution provider the request named is unavailable');
  const cudaWithoutLibraries = provider === 'cuda' && runtime.providersWithoutLibrary.some((p) => p.provider === 'CUDAExecutionProvider');
  const why = cudaWithoutLibraries
    ? "; the CUDA provider's libraries are not installed on the server (its operator can install a CUDA build of ONNX Runtime: docs/cuda.md)"
    : '';
  return requestedBackend(
    new BackendUnavailableError(
      `body.provider: '${provider}' cannot run on this service: its ONNX Runtime ${runtime.version} has ${runtime.providers.join(', ')}${why}; send 'cpu', the default (details in the server log)`,
    ),
  );
}
