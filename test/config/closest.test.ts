/** closest(): the "did you mean" of every unknown option and choice. */
import { describe, expect, it } from 'vitest';

import { closest } from '../../ts/config/problems.js';

describe('closest', () => {
  it('suggests the known name one edit away, a swap of two letters counting as one edit', () => {
    expect(closest('tokne', ['root', 'token', 'tokens'])).toBe('token');
    expect(closest('averageTrian', ['averageTrain', 'zscore'])).toBe('averageTrain');
    expect(closest('alpha', ['alphas', 'folds'])).toBe('alphas');
    expect(closest('Folds', ['alphas', 'folds'])).toBe('folds');
  });
  it('suggests nothing for a name that is not close to any', () => {
    expect(closest('xyz', ['token', 'root'])).toBeUndefined();
    expect(closest('alpah', ['alphas'])).toBeUndefined(); // (a swap and an insertion: two edits in five letters)
  });
});
