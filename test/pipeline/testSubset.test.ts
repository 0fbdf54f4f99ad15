import { describe, expect, it } from 'vitest';
import { selectTestImages } from '../../ts/pipeline/testSubset.js';

describe('nsd.testImages: which test images a run reconstructs', () => {
  // The extraction lists test images in the order the subject first saw them, not by id.
  const seen = [1554, 1706, 444, 659, 2554, 76, 305, 2084];

  it('takes the N smallest 73k ids ("the first N test images in id order"), whatever order they were seen in', () => {
    expect(selectTestImages(seen, 3)).toEqual([76, 305, 444]);
    expect(selectTestImages([...seen].reverse(), 3)).toEqual([76, 305, 444]);
    expect(selectTestImages(seen, 100)).toEqual([...seen].sort((a, b) => a - b));
  });

  it('keeps every test image, in the extraction order, without a limit', () => {
    expect(selectTestImages(seen, null)).toEqual(seen);
  });
});
