/**
 * How the img2img stage is cut into shards for a batch's workers: the manifest's shards (images rounded up to whole
 * img2img batches, seeds), widened where they would make more shards than a batch takes (seeds first, then images),
 * every (image, seed) in exactly one shard.
 */
import { describe, expect, it } from 'vitest';

import type { ReconstructConfig } from '../../ts/pipeline/config.js';
import { img2imgShards, img2imgShardSize, type Img2ImgShard } from '../../ts/pipeline/stages.js';

const config = (seeds: number, batchSize = 8) => ({ img2img: { seeds, batchSize } }) as unknown as ReconstructConfig;

/** Every (image, seed) pair the shards cover, each once, or a list of those covered twice. */
function covered(shards: Img2ImgShard[], images: number, seeds: number): { count: number; twice: number } {
  const seen = new Uint8Array(images * seeds);
  let twice = 0;
  for (const s of shards) for (let k = s.seedStart; k < s.seedEnd; k++) for (let i = s.imageStart; i < s.imageEnd; i++) twice += seen[k * images + i]++ ? 1 : 0;
  return { count: seen.reduce((n, v) => n + (v ? 1 : 0), 0), twice };
}

describe('img2img shards', () => {
  it("cuts the manifest's shards, images rounded up to whole batches", () => {
    expect(img2imgShardSize(config(5), 1000, { images: 60, seeds: 1 })).toEqual({ images: 64, seeds: 1 });
    const shards = img2imgShards(config(5), 1000, { images: 64, seeds: 2 });
    expect(shards).toHaveLength(16 * 3);
    expect(shards[0]).toEqual({ imageStart: 0, imageEnd: 64, seedStart: 0, seedEnd: 2 });
    expect(shards.at(-1)).toEqual({ imageStart: 960, imageEnd: 1000, seedStart: 4, seedEnd: 5 });
    expect(covered(shards, 1000, 5)).toEqual({ count: 5000, twice: 0 });
  });

  it('widens the seeds of a shard where one-seed shards would be more than a batch takes, the same samples', () => {
    // 24 images × 100,000 seeds in shards of 64 × 1: 100,000 shards; at most 10,000: 10 seeds each
    expect(img2imgShardSize(config(100_000), 24, { images: 64, seeds: 1 }, 10_000)).toEqual({ images: 64, seeds: 10 });
    const shards = img2imgShards(config(100_003), 130, { images: 64, seeds: 1 }, 10_000);
    expect(shards.length).toBeLessThanOrEqual(10_000);
    expect(covered(shards, 130, 100_003)).toEqual({ count: 130 * 100_003, twice: 0 });
    // a count within the limit is cut as asked
    expect(img2imgShardSize(config(100), 24, { images: 64, seeds: 1 }, 10_000)).toEqual({ images: 64, seeds: 1 });
    // 2⁵³ seeds are 10,000 shards, not 2⁵³ (what a preflight refuses, the plan does not hang on)
    expect(img2imgShards(config(2 ** 53), 24, { images: 64, seeds: 1 }, 10_000).length).toBeLessThanOrEqual(10_000);
  });

  it('widens the images of a shard where even one seed per shard would be too many', () => {
    const size = img2imgShardSize(config(3, 4), 1000, { images: 4, seeds: 1 }, 50);
    expect(size.images % 4).toBe(0);
    const shards = img2imgShards(config(3, 4), 1000, { images: 4, seeds: 1 }, 50);
    expect(shards.length).toBeLessThanOrEqual(50);
    expect(covered(shards, 1000, 3)).toEqual({ count: 3000, twice: 0 });
  });
});
