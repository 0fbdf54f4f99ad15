/**
 * Large typed arrays whose memory the machine may not have. V8's own failure is a bare "RangeError: Array buffer
 * allocation failed" naming nothing; here it is an OutOfMemoryError of reason 'allocation' (transient: another time
 * or machine may have the memory, so a batch retries it) naming what was being allocated and its size.
 */
import { OutOfMemoryError } from './errors.js';

/** A zeroed Float32Array of `length` values; `what` names it in the error when the machine cannot provide it. */
export function allocFloat32(length: number, what: string): Float32Array {
  try {
    return new Float32Array(length);
  } catch (e) {
    // (an invalid length, past V8's maximum, stays a RangeError: no machine has room for it)
    if (e instanceof RangeError && /allocation failed/i.test(e.message)) {
      const gib = (length * 4) / 2 ** 30;
      throw new OutOfMemoryError(
        `${what}: the machine could not provide ${gib.toPrecision(3)} GiB for ${length.toLocaleString('en')} float32 values (${e.message}); free memory or use a machine with more`,
        'allocation',
      );
    }
    throw e;
  }
}
