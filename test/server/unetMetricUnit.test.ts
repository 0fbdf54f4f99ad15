/**
 * brainlatent_unet_steps_total counts U-Net evaluations of one latent as the engine ran them: its calls (PNDM's
 * warm-up repeats a timestep, Heun calls twice a step), not the denoising steps asked for. Its HELP text said
 * "images × denoising steps that ran", which these schedulers exceed; it now names the engine's calls.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { encodeNpy } from '../../ts/io/npy.js';
import { Diffusion } from '../../ts/sd/Diffusion.js';
import { writeSdFixture } from '../../ts/sd/fixture.js';
import { startTestServer, type TestServer } from './helpers.js';

let s: TestServer;
let sd: Diffusion;

beforeAll(async () => {
  s = await startTestServer();
  mkdirSync(join(s.root, 'models'));
  await writeSdFixture(join(s.root, 'models', 'sd'));
  sd = await Diffusion.load(join(s.root, 'models', 'sd'));
  expect((await s.call('POST', '/v1/models', { kind: 'sd', name: 'sd', path: 'models/sd' })).status).toBe(201);
}, 120_000);
afterAll(async () => {
  sd?.dispose();
  await s?.stop();
});

const b64 = (data: Float32Array, shape: number[]) => encodeNpy(data, shape).toString('base64');
const counted = async () => Number(/^brainlatent_unet_steps_total\{source="img2img"\} (\d+)$/m.exec((await s.call('GET', '/metrics')).text)?.[1] ?? 0);

describe("the U-Net metric's unit: the engine's calls", () => {
  it("counts each image's U-Net calls (× 2 with guidance), more than its steps for PNDM and Heun, and says so", async () => {
    const c = await sd.encodeText(['a square', 'a circle']);
    const z = new Float32Array(2 * 4 * 8 * 8);
    const steps = 4;
    for (const scheduler of ['pndm', 'heun'] as const) {
      const calls = sd.plan({ scheduler, steps, strength: 1 }).runs.length;
      expect(calls, scheduler).toBeGreaterThan(steps);
      const before = await counted();
      const r = await s.call('POST', '/v1/sd/sd/img2img', { z: b64(z, [2, 4, 8, 8]), c: b64(c.data, c.shape), scheduler, steps, strength: 1, guidance: 3, output: 'latents' });
      expect(r.status, r.text).toBe(200);
      expect((await counted()) - before, scheduler).toBe(2 * calls * 2);
    }
    const help = /^# HELP brainlatent_unet_steps_total (.*)$/m.exec((await s.call('GET', '/metrics')).text)?.[1] ?? '';
    expect(help).toContain('U-Net calls');
    expect(help).not.toMatch(/denoising steps/);
  });
});
