/**
 * Which failures a batch retries: an OutOfMemoryError refused by a memory budget is an input error (the same budget is
 * refused again: BullMQ's UnrecoverableError, no retry in the local pool); one whose allocation failed is transient
 * and retried. The reason crosses the job process's boundary (serializeError → PoolJobError) so the parent sees it.
 */
import { describe, expect, it } from 'vitest';

import { isInputError, serializeError } from '../../ts/batch/errors.js';
import { PoolJobError } from '../../ts/batch/pool.js';
import { OutOfMemoryError, ShapeError } from '../../ts/errors.js';

describe('batch error classification', () => {
  it("an OutOfMemoryError is an input error when a budget refused it, transient when an allocation failed", () => {
    expect(isInputError(new OutOfMemoryError('the memory budget of 0.001 GiB is below this fit\'s fixed footprint', 'budget'))).toBe(true);
    expect(isInputError(new OutOfMemoryError('allocating a work buffer of 1 bytes failed', 'allocation'))).toBe(false);
    // unknown reason: the retryable kind
    expect(isInputError(new OutOfMemoryError('out of memory'))).toBe(false);
    expect(isInputError(new ShapeError('x'))).toBe(true);
    expect(isInputError(new Error('ECONNRESET'))).toBe(false);
  });

  it('serializeError keeps the reason, and PoolJobError (the parent side, over JSON IPC) has it and the decision', () => {
    for (const reason of ['budget', 'allocation'] as const) {
      const s = serializeError(new OutOfMemoryError('ridge fit: out of memory', reason));
      expect(s).toMatchObject({ name: 'OutOfMemoryError', message: 'ridge fit: out of memory', input: reason === 'budget', reason });
      const parent = new PoolJobError(JSON.parse(JSON.stringify(s)));
      expect(parent.name).toBe('OutOfMemoryError');
      expect(parent.reason).toBe(reason);
      expect(parent.input).toBe(reason === 'budget');
    }
    // other errors carry no reason
    expect(serializeError(new ShapeError('x'))).not.toHaveProperty('reason');
    expect(new PoolJobError(serializeError(new ShapeError('x'))).reason).toBeUndefined();
  });
});
