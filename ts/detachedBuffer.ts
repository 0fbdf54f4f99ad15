/**
 * A typed array whose ArrayBuffer was transferred (postMessage, structuredClone with transfer) reads as length 0:
 * without this check it was refused as a shape mismatch ("data has 0 elements but the shape 2×8 needs 16").
 */
import { InvalidArgumentError } from './errors.js';

/** True when `buffer` was detached (ArrayBuffer.prototype.detached from Node 22; before it, constructing a view throws). */
function isDetached(buffer: ArrayBufferLike): boolean {
  if (typeof SharedArrayBuffer !== 'undefined' && buffer instanceof SharedArrayBuffer) return false;
  const flag = (buffer as { detached?: unknown }).detached;
  if (typeof flag === 'boolean') return flag;
  try {
    new Uint8Array(buffer, 0, 0);
    return false;
  } catch {
    return true;
  }
}

/** Throws an InvalidArgumentError naming `what` when `data`'s buffer was detached (checked only for an empty view: cheap). */
export function assertNotDetached(data: ArrayBufferView, what: string): void {
  if (data.byteLength === 0 && isDetached(data.buffer)) {
    throw new InvalidArgumentError(
      `${what}: data's ArrayBuffer was detached (transferred by postMessage or structuredClone): it holds no values; pass a copy (data.slice()) to keep one`,
    );
  }
}
