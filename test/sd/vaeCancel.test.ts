/**
 * Diffusion.decode and encodeImages take an AbortSignal: the engine stops before its next chunk of images
 * (sd img2img's Ctrl-C during the decode used to be noticed only after the whole decode).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, expect, it } from 'vitest';

import { CancelledError } from '../../ts/errors.js';
import { Diffusion } from '../../ts/sd/Diffusion.js';
import { writeSdFixture } from '../../ts/sd/fixture.js';
import type { RgbImages } from '../../ts/sd/tensor.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-vae-cancel-'));
let sd: Diffusion;
const N = 128;
const images: RgbImages = { data: Uint8Array.from({ length: N * 128 * 128 * 3 }, (_, i) => (i * 37) % 256), count: N, height: 128, width: 128 };

beforeAll(async () => {
  await writeSdFixture(join(tmp, 'model'));
  sd = await Diffusion.load(join(tmp, 'model'), { components: ['vae_encoder', 'vae_decoder'] });
});
afterAll(() => {
  sd?.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

it('decode stops at its next image when the signal aborts, and runs whole without one', async () => {
  const z = await sd.encodeImages(images);
  expect(z.shape[0]).toBe(N);
  const ac = new AbortController();
  const p = sd.decode(z, { signal: ac.signal });
  ac.abort();
  await expect(p).rejects.toBeInstanceOf(CancelledError);
  await expect(p).rejects.toThrow(/^decode cancelled after \d+ of 128 images( \(its run was interrupted\))?$/);
  await expect(sd.decode(z, { signal: ac.signal })).rejects.toThrow(/decode: aborted before it started/);
  const img = await sd.decode(z, { signal: new AbortController().signal });
  expect(img.count).toBe(N);
});

it('encodeImages stops at its next image when the signal aborts', async () => {
  // (8× the decode test's images: encoding 128 took ~20 ms, within which a busy main thread did not always get to
  // abort — the whole job finished first on a CI run; 1,024 take ~0.2 s)
  const many: RgbImages = { data: Uint8Array.from({ length: 8 * N * 128 * 128 * 3 }, (_, i) => (i * 37) % 256), count: 8 * N, height: 128, width: 128 };
  const ac = new AbortController();
  const p = sd.encodeImages(many, { signal: ac.signal });
  ac.abort();
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  // (an abort that lands inside a chunk's ONNX Runtime run terminates it: the message says so, s23-h10)
  expect(e).toBeInstanceOf(CancelledError);
  expect((e as Error).message).toMatch(/^encode_images cancelled after \d+ of 1024 images( \(its run was interrupted\))?$/);
});
