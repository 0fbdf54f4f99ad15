/**
 * ONNX Runtime's telemetry, off unless the user turns it on. ONNX Runtime 1.30 on Linux and macOS starts
 * a telemetry uploader (Microsoft's 1DS SDK) when its first OrtEnv is made — by the engine's ort_load or
 * by onnxruntime-node's first session — and that uploader writes files: `$TMPDIR/.ses` and
 * `$TMPDIR/mat-debug-<pid>.log` (one per process: a service leaks one per worker), and
 * `$XDG_CACHE_HOME/Microsoft/DeveloperTools/.onnxruntime/{deviceid,onnxruntime.db}`, besides its uploads.
 *
 * The one lever that stops all of it is the environment variable ORT_DISABLE_TELEMETRY, which ONNX Runtime
 * reads when its first OrtEnv is made (values 1/true/yes/on/y, case and surrounding blanks ignored, turn it
 * off). The C API's DisableTelemetryEvents (on an OrtEnv, so after the uploader started) and onnxruntime-node
 * (which has no telemetry option) do not. So it is set here, before the engine or onnxruntime-node can make
 * an OrtEnv, unless the user set it: ORT_DISABLE_TELEMETRY=0 leaves ONNX Runtime's telemetry on. The engine
 * sets the same default for C++ callers (native/core/src/ort_runtime.cpp).
 */

export const ORT_TELEMETRY_VARIABLE = 'ORT_DISABLE_TELEMETRY';

/**
 * Sets ORT_DISABLE_TELEMETRY=1 in this process (and the processes it starts) unless it is set already; true when
 * it set it. (In a worker thread it sets the thread's own copy of the environment only: see onnxruntimeNode.ts.)
 */
export function defaultOrtTelemetryOff(): boolean {
  if (process.env[ORT_TELEMETRY_VARIABLE] !== undefined) return false;
  process.env[ORT_TELEMETRY_VARIABLE] = '1';
  return true;
}
