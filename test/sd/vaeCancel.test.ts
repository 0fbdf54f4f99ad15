/**
 * Diffusion.decode and encodeImages take an AbortSignal: the engine stops before its next chunk of images
 * (sd img2img's Ctrl-C during the decode used to be noticed only after the whole decode).
 *
 * Each test aborts once its job computes: when the process has used CPU time that the JS thread, awaiting, did not
 * (one ONNX Runtime thread per run, so no pool spins between runs). An abort right after the call could land while
 * the job still waited for its engine thread ('… cancelled before it started', on a loaded machine); encodeImages
 * hid that until s24, its call converting the whole batch to floats before it returned.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, expect, it } from 'vitest';

import { CancelledError } from '../../ts/errors.js';
import { Diffusion } from '../../ts/sd/Diffusion.js';
import { writeSdFixture } from '../../ts/sd/fixture.js';
import type { RgbImages } from '../../ts/sd/tensor.js';
import { computing } from '../helpers/computing.js';
import { writeSlowVaeEncoder } from '../helpers/slowVaeEncoder.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-vae-cancel-'));
let sd: Diffusion;
/** The VAE encoder of writeSlowVaeEncoder: ~1 GFLOP per 128×128 image, seconds for the 1,024 on one thread of any machine. */
let slow: Diffusion;
const N = 1024;
const images: RgbImages = { data: Uint8Array.from({ length: N * 128 * 128 * 3 }, (_, i) => (i * 37) % 256), count: N, height: 128, width: 128 };

beforeAll(async () => {
  await writeSdFixture(join(tmp, 'model'));
  sd = await Diffusion.load(join(tmp, 'model'), { components: ['vae_encoder', 'vae_decoder'], intraOpThreads: 1, interOpThreads: 1 });
  await writeSdFixture(join(tmp, 'slow'));
  writeSlowVaeEncoder(join(tmp, 'slow'));
  slow = await Diffusion.load(join(tmp, 'slow'), { components: ['vae_encoder'], intraOpThreads: 1, interOpThreads: 1 });
});
afterAll(() => {
  sd?.dispose();
  slow?.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

it('decode stops at its next image when the signal aborts, and runs whole without one', async () => {
  const z = await sd.encodeImages(images);
  expect(z.shape[0]).toBe(N);
  const ac = new AbortController();
  const p = sd.decode(z, { signal: ac.signal });
  await computing(20, p);
  ac.abort();
  await expect(p).rejects.toBeInstanceOf(CancelledError);
  await expect(p).rejects.toThrow(/^decode cancelled after \d+ of 1024 images( \(its run was interrupted\))?$/);
  await expect(sd.decode(z, { signal: ac.signal })).rejects.toThrow(/decode: aborted before it started/);
  const img = await sd.decode(z, { signal: new AbortController().signal });
  expect(img.count).toBe(N);
});

it('encodeImages stops at its next image when the signal aborts', async () => {
  // The job lasts seconds by construction, and is cancelled anyway: the slow encoder's 1,024 images are ~1.1 TFLOP on one
  // thread, over 5 s at a core's peak. (With the fixture's encoder the 1,024 images were ~0.1–0.2 s of CPU, aborted
  // after 20 ms: a margin of a few times that a busy main thread or a faster phase of the machine could use up, as
  // 128 images, ~20 ms, once did on CI.)
  // The process's CPU time is not this job's alone: on a loaded machine (three test files at once) the 20 ms were
  // used while the job still waited for its engine thread, and the abort landed before it started. That is a
  // cancellation too, but not the one under test: then the job is started again, and given more time.
  let e: unknown = null;
  for (let attempt = 0, ms = 20; attempt < 4; attempt++, ms *= 4) {
    const ac = new AbortController();
    const p = slow.encodeImages(images, { signal: ac.signal });
    await computing(ms, p);
    ac.abort();
    e = await p.then(
      () => null,
      (err: unknown) => err,
    );
    if (!(e instanceof CancelledError && /cancelled before it started/.test(e.message))) break;
  }
  // (an abort that lands inside a chunk's ONNX Runtime run terminates it: the message says so, s23-h10)
  expect(e).toBeInstanceOf(CancelledError);
  expect((e as Error).message).toMatch(/^encode_images cancelled after \d+ of 1024 images( \(its run was interrupted\))?$/);
});
