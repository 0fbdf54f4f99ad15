/** The local runner's wait before a retry: retry.backoffMs doubled per attempt, held within setTimeout's range. */
import { describe, expect, it } from 'vitest';

import { retryDelayMs } from '../../ts/batch/localRunner.js';
import { MAX_TIMER_MS } from '../../ts/ridge/options.js';

describe('retryDelayMs', () => {
  it('doubles per attempt', () => {
    expect([1, 2, 3].map((a) => retryDelayMs(2000, a))).toEqual([2000, 4000, 8000]);
  });
  it("stops at setTimeout's longest delay (5000 ms at the 20th attempt was 2^19 × 5000: the timer fired after 1 ms)", () => {
    expect(retryDelayMs(5000, 20)).toBe(MAX_TIMER_MS);
    expect(retryDelayMs(MAX_TIMER_MS, 1)).toBe(MAX_TIMER_MS);
    expect(retryDelayMs(MAX_TIMER_MS, 20)).toBe(MAX_TIMER_MS);
  });
});
