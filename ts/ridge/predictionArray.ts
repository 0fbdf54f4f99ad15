import { allocFloat32 } from '../allocate.js';

/**
 * The rows × targets array a prediction fills: allocated here, in memory V8 owns, and filled by the engine in place.
 * V8 frees it when it collects it, even in a synchronous loop; an array of the engine's own memory (an external
 * buffer) is freed by a finalizer Node runs only when the event loop turns, so 300 sync predicts of 4 MB in one loop
 * grew the process by 1.1 GB. OutOfMemoryError (reason 'allocation') when the machine cannot provide it.
 */
export function predictionArray(rows: number, targets: number, what: string): Float32Array {
  return allocFloat32(rows * targets, `${what}: the ${rows}×${targets} predictions`);
}
