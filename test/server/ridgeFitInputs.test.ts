import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import type { RidgeFitConfig } from '../../ts/config/ridgeFit.js';
import { writeNpy } from '../../ts/io/npy.js';
import { runRidgeFit } from '../../ts/server/jobs/ridgeFitJob.js';

const dir = mkdtempSync(join(tmpdir(), 'bl-ridgefit-inputs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a ridge-fit job with two bad inputs', () => {
  it('names X, the first in order, though the read of Y fails first', async () => {
    // X: a large 1-D array (a shape error once read whole); Y: no file at all (fails at open, sooner)
    const x = join(dir, 'x.npy');
    await writeNpy(x, new Float32Array(4_000_000), [4_000_000]);
    const c = { x, y: join(dir, 'missing-y.npy') } as RidgeFitConfig;
    for (let i = 0; i < 3; i++) {
      const control = { signal: new AbortController().signal, progress: () => {} };
      await expect(runRidgeFit(c, control)).rejects.toThrow(/^X \(.*x\.npy\): expected a 2-D array/);
    }
  });
});
