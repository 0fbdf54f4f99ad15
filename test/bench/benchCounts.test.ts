/**
 * The bench runners' counts are checked before any work, in the library's one form ('<call> <option>: expected …,
 * got …'): the CLI's flags are checked by integerFlag, but runRidgeBench and runBandedBench are called directly too.
 */
import { describe, expect, it } from 'vitest';

import { runBandedBench } from '../../ts/bench/banded.js';
import { runRidgeBench } from '../../ts/bench/ridge.js';
import { InvalidArgumentError } from '../../ts/errors.js';

describe('bench runners refuse a count that is not one, before any work', () => {
  it('runRidgeBench: repeats and threads', async () => {
    const log = () => {};
    await expect(runRidgeBench({ repeats: 0, log })).rejects.toThrow(new InvalidArgumentError('bench ridge repeats: expected an integer >= 1, got 0'));
    await expect(runRidgeBench({ threads: 1.5, log })).rejects.toThrow(new InvalidArgumentError('bench ridge threads: expected an integer >= 1, got 1.5'));
  });

  it('runBandedBench: alphas, folds, candidates, repeats and threads', async () => {
    const log = () => {};
    await expect(runBandedBench({ folds: 1, log })).rejects.toThrow(new InvalidArgumentError('bench banded folds: expected an integer >= 2, got 1'));
    await expect(runBandedBench({ candidates: 0, log })).rejects.toThrow(new InvalidArgumentError('bench banded candidates: expected an integer >= 1, got 0'));
    await expect(runBandedBench({ threads: 0, log })).rejects.toThrow(new InvalidArgumentError('bench banded threads: expected an integer >= 1, got 0'));
  });
});
