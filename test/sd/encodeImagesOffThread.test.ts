/**
 * encodeImages converted the whole batch of uint8 pixels to the VAE's float input in the call, on the JS thread,
 * before queueing its job: ~250 ms of event loop for 48 images of 512² (a reviewer's `serve`), and a float copy 4× the
 * input held for the whole job. The job now reads the Uint8Array in place and converts one chunk at a time on its
 * engine thread (the bits are the same: test_sd_pipeline compares both paths).
 *
 * The test does not time anything. Four long encodes take every engine thread (kit.cpp's kJobThreads), so a fifth
 * waits in the queue; in the same synchronous turn that started it, its pixels are overwritten and only then are the
 * four aborted. A conversion in the call saw the pixels as they were at the call; a job that reads them when it
 * runs — necessarily after the overwrite, since no thread is free before the aborts — sees the overwritten ones.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, expect, it } from 'vitest';

import { Diffusion } from '../../ts/sd/Diffusion.js';
import { writeSdFixture } from '../../ts/sd/fixture.js';
import type { RgbImages } from '../../ts/sd/tensor.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-encode-off-thread-'));
let sd: Diffusion;
const pixels = (count: number, size: number, f: (i: number) => number): RgbImages => ({
  data: Uint8Array.from({ length: count * size * size * 3 }, (_, i) => f(i)),
  count,
  height: size,
  width: size,
});

beforeAll(async () => {
  await writeSdFixture(join(tmp, 'model'));
  sd = await Diffusion.load(join(tmp, 'model'), { components: ['vae_encoder'] });
});
afterAll(() => {
  sd?.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

it('encodeImages reads the pixels on its engine thread when the job runs, not in the call', async () => {
  const original = (i: number) => (i * 37) % 256;
  const overwritten = (i: number) => 255 - ((i * 11) % 256);
  const images = pixels(2, 64, original);
  const replacement = pixels(2, 64, overwritten).data;
  // (each of 256 chunks a VAE run: tens of milliseconds before any blocker could end, against the microseconds to the aborts)
  const many = pixels(256, 64, original);
  const aborts = [1, 2, 3, 4].map(() => new AbortController());
  const blockers = aborts.map((ac) => sd.encodeImages(many, { signal: ac.signal }).catch((e: unknown) => e));
  const encoded = sd.encodeImages(images, { chunk: 1 });
  images.data.set(replacement);
  for (const ac of aborts) ac.abort();
  await Promise.all(blockers);
  const z = await encoded;

  const zOverwritten = await sd.encodeImages(pixels(2, 64, overwritten), { chunk: 1 });
  const zOriginal = await sd.encodeImages(pixels(2, 64, original), { chunk: 1 });
  expect(z.shape).toEqual([2, 4, 8, 8]);
  expect(Buffer.from(z.data.buffer, z.data.byteOffset, z.data.byteLength).equals(Buffer.from(zOverwritten.data.buffer, zOverwritten.data.byteOffset, zOverwritten.data.byteLength))).toBe(true);
  expect(z.data).not.toEqual(zOriginal.data);
});
