/**
 * `bench sampler`'s "steps" were the engine's U-Net calls, and "native steps/s" calls per second: for PNDM (its
 * warm-up) and Heun (two calls a step) those are not the denoising steps. loopCounts takes the steps from the plan and
 * the calls from the engine, checked against the plan's U-Net evaluations (unetEvaluationsPerImage, every estimate's count).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, expect, it } from 'vitest';

import { loopCounts } from '../../ts/bench/sampler.js';
import { Diffusion, type SchedulerName } from '../../ts/sd/Diffusion.js';
import { writeSdFixture } from '../../ts/sd/fixture.js';
import { unetEvaluationsPerImage } from '../../ts/sd/samplingOptions.js';
import type { Tensor } from '../../ts/sd/tensor.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-sampler-counts-'));
let sd: Diffusion;
let c: Tensor;
let uncond: Tensor;

beforeAll(async () => {
  await writeSdFixture(join(tmp, 'model'));
  sd = await Diffusion.load(join(tmp, 'model'), { components: ['text_encoder', 'unet'] });
  c = await sd.encodeText(['a photo of the cat']);
  uncond = await sd.encodeText(['']);
});
afterAll(() => {
  sd?.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

it.each([
  // scheduler, strength, denoising steps, U-Net calls (of 20 planned steps)
  ['ddim', 1, 20, 20],
  ['pndm', 1, 20, 21],
  ['heun', 1, 20, 39],
  ['pndm', 0.8, 16, 17],
  ['heun', 0.8, 16, 31],
] as [SchedulerName, number, number, number][])('%s at strength %s: %i steps, %i U-Net calls, as the plan counts them', async (scheduler, strength, steps, calls) => {
  const z: Tensor = { data: new Float32Array(4 * 8 * 8).map((_, i) => Math.sin(i)), shape: [1, 4, 8, 8] };
  const job = { z, c, uncond, steps: 20, strength, guidance: 5, scheduler, seeds: 1 };
  const r = await sd.img2img(job);
  const plan = sd.plan(job);
  const counts = loopCounts(plan, r.stats);
  expect(counts).toEqual({ steps, unetCalls: calls });
  // guidance's unconditional pass is a second row of the same call: 2 evaluations a call
  expect(2 * counts.unetCalls).toBe(unetEvaluationsPerImage(plan, 5));
  expect(r.stats.unetEvaluations).toBe(unetEvaluationsPerImage(plan, 5));
  // (a guidance that is 1 in float32 runs no unconditional pass: the estimates count it so, re-read s35)
  expect(unetEvaluationsPerImage(plan, 1.00000001)).toBe(counts.unetCalls);
});

it('refuses an engine count that is not the plan\'s', () => {
  const plan = sd.plan({ scheduler: 'heun', steps: 20, strength: 1 });
  expect(() => loopCounts(plan, { unetCalls: 20, batches: 1 })).toThrow('bench sampler: the engine made 20 U-Net calls a batch where the heun plan runs 39');
});
