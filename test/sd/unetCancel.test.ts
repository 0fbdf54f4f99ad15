/**
 * Cancelling img2img interrupts the U-Net call in flight (ONNX Runtime's terminate flag, through the job's cancel
 * token) instead of waiting for it to end: nothing called the runner's request_cancel(), so an abort, a worker's end
 * or the process's exit waited for a whole U-Net call (seconds with a real model). The interrupted call ends the job
 * as Cancelled, not as an ONNX Runtime failure, and no latents come back.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, expect, it } from 'vitest';

import { CancelledError } from '../../ts/errors.js';
import { Diffusion } from '../../ts/sd/Diffusion.js';
import { writeSdFixture } from '../../ts/sd/fixture.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-unet-cancel-'));
let sd: Diffusion;

beforeAll(async () => {
  // (a U-Net whose every call computes for a while: the abort lands inside one. One thread, so that a call's length
  // is its work's, ~39 GFLOP at 512×512 (64×64 latents, with the "" row), not divided by the machine's cores)
  await writeSdFixture(join(tmp, 'model'), { unetChannels: 128, unetLayers: 16 });
  sd = await Diffusion.load(join(tmp, 'model'), { intraOpThreads: 1, interOpThreads: 1 });
}, 120_000);
afterAll(() => {
  sd?.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

it('an abort during a U-Net call stops that call: the step never completes, and the job rejects as cancelled', async () => {
  // (side 512: a U-Net call of 0.3 s or more on one thread of a fast machine; at 256, 4× less and on all cores, a call
  // was tens of ms, all the time the test's thread had to take step 1's event and abort before step 2 ended)
  const n = 2, side = 512;
  const z = await sd.encodeImages({ data: Uint8Array.from({ length: n * side * side * 3 }, (_, i) => (i * 37) % 256), count: n, height: side, width: side });
  const c = await sd.encodeText(['a', 'b']);
  const ac = new AbortController();
  const steps: number[] = [];
  // (step 1's event reaches JS while the engine runs step 2's U-Net call: the abort lands inside that call, which
  // before ran to its end and reported step 2)
  const outcome = await sd
    .img2img({ z, c, steps: 50, strength: 1, signal: ac.signal, onStep: (p) => {
      steps.push(p.step);
      if (p.step === 1) ac.abort();
    } })
    .then(
      (r) => ({ resolved: r }),
      (e: unknown) => ({ rejected: e }),
    );
  expect(outcome).not.toHaveProperty('resolved');
  const e = (outcome as { rejected: unknown }).rejected;
  expect(e).toBeInstanceOf(CancelledError);
  expect((e as Error).message).toMatch(/^img2img cancelled (during|before) step 2 of \d+/);
  expect(steps).toEqual([1]);
}, 120_000);
