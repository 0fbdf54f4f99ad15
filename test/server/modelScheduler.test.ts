/**
 * POST /v1/models' `scheduler` for an SD folder: Diffusion.load's, so a folder whose scheduler_config.json names a
 * class the engine does not know loads with one (and img2img requests that name none run it); without one the
 * load is a 400 naming the file, the class and the body's field; a name that is no scheduler lists the valid ones.
 */
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { decodeNpy, encodeNpy } from '../../ts/io/npy.js';
import { writeSdFixture } from '../../ts/sd/fixture.js';
import { SCHEDULERS } from '../../ts/sd/schedulerConfig.js';
import { startTestServer, type TestServer } from './helpers.js';

let s: TestServer;

beforeAll(async () => {
  s = await startTestServer();
  mkdirSync(join(s.root, 'models'));
  await writeSdFixture(join(s.root, 'models', 'sd'));
  cpSync(join(s.root, 'models', 'sd'), join(s.root, 'models', 'foo'), { recursive: true });
  const cfg = join(s.root, 'models', 'foo', 'scheduler', 'scheduler_config.json');
  writeFileSync(cfg, JSON.stringify({ ...JSON.parse(readFileSync(cfg, 'utf8')), _class_name: 'FooScheduler' }));
}, 120_000);
afterAll(async () => s?.stop());

const b64 = (data: Float32Array, shape: number[]) => encodeNpy(data, shape).toString('base64');

async function latents(model: string, scheduler?: string): Promise<Float32Array> {
  const body = {
    z: b64(new Float32Array(4 * 8 * 8).map((_, i) => Math.sin(i)), [1, 4, 8, 8]),
    c: b64(new Float32Array(77 * 32).map((_, i) => Math.cos(i)), [1, 77, 32]),
    steps: 6,
    strength: 0.7,
    output: 'latents',
    ...(scheduler ? { scheduler } : {}),
  };
  const r = await fetch(`${s.url}/v1/sd/${model}/img2img`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(r.status, await r.clone().text()).toBe(200);
  return decodeNpy(new Uint8Array(await r.arrayBuffer()), 'latents').data as Float32Array;
}

describe("POST /v1/models: an SD folder's scheduler", () => {
  it('refuses a folder whose class the engine does not know without "scheduler": 400 naming the file, the class and the field', async () => {
    const r = await s.call('POST', '/v1/models', { kind: 'sd', name: 'foo', path: 'models/foo' });
    expect(r.status, r.text).toBe(400);
    expect(r.json).toMatchObject({ code: 'FormatError', name: 'FormatError' });
    expect(r.json.message).toBe(
      "body.path: models/foo/scheduler/scheduler_config.json: _class_name 'FooScheduler' is not a scheduler the engine knows; known: DDIMScheduler, PNDMScheduler, " +
        'DDPMScheduler, LMSDiscreteScheduler, EulerDiscreteScheduler, EulerAncestralDiscreteScheduler, HeunDiscreteScheduler, DPMSolverMultistepScheduler, ' +
        `UniPCMultistepScheduler (or choose one with the body's "scheduler": ${SCHEDULERS.join(', ')})`,
    );
    expect((await s.call('GET', '/v1/models/foo')).status).toBe(404);
  });

  it('loads it with "scheduler", which img2img requests that name none then run', async () => {
    const r = await s.call('POST', '/v1/models', { kind: 'sd', name: 'foo', path: 'models/foo', scheduler: 'euler' });
    expect(r.status, r.text).toBe(201);
    expect(r.json).toMatchObject({ name: 'foo', kind: 'sd', scheduler: 'euler' });
    expect((await s.call('GET', '/v1/models/foo')).json.scheduler).toBe('euler');
    const byDefault = await latents('foo');
    expect(byDefault).toEqual(await latents('foo', 'euler'));
    expect(byDefault).not.toEqual(await latents('foo', 'ddim'));
  });

  it("reports the folder's own scheduler when the load names none", async () => {
    const r = await s.call('POST', '/v1/models', { kind: 'sd', name: 'sd', path: 'models/sd' });
    expect(r.status, r.text).toBe(201);
    expect(r.json.scheduler).toBe('pndm');
  });

  it('refuses a "scheduler" that is no scheduler, listing the valid names', async () => {
    const r = await s.call('POST', '/v1/models', { kind: 'sd', name: 'bad', path: 'models/foo', scheduler: 'plms' });
    expect(r.status, r.text).toBe(400);
    expect(r.json).toMatchObject({ code: 'InvalidRequest', name: 'RequestValidationError' });
    expect(r.json.problems).toEqual([
      'body.scheduler: expected "ddim", "pndm", "ddpm", "lms", "euler", "euler-ancestral", "heun", "dpmpp2m", "dpmpp2m-sde", or "unipc", got the string "plms" (did you mean "lms"?)',
    ]);
    // a ridge model has no scheduler
    const ridge = await s.call('POST', '/v1/models', { kind: 'ridge', name: 'r', path: 'models/r.safetensors', scheduler: 'ddim' });
    expect(ridge.status).toBe(400);
    expect(ridge.json.problems.join('\n')).toContain('body.scheduler');
  });
});

describe('img2img: more steps than the schedule has', () => {
  // (the 400 said "1000 steps under leading spacing … use fewer steps", naming no field)
  it('is a 400 naming body.steps and the most steps that fit', async () => {
    const loaded = await s.call('POST', '/v1/models', { kind: 'sd', name: 'sd-steps', path: 'models/sd', scheduler: 'ddim' });
    expect(loaded.status, loaded.text).toBe(201);
    const body = {
      z: b64(new Float32Array(4 * 8 * 8), [1, 4, 8, 8]),
      c: b64(new Float32Array(77 * 32), [1, 77, 32]),
      steps: 1000,
      strength: 0.5,
      output: 'latents',
    };
    const r = await s.call('POST', '/v1/sd/sd-steps/img2img', body);
    expect(r.status, r.text).toBe(400);
    expect(r.json).toMatchObject({ code: 'InvalidArgument', name: 'InvalidArgumentError' });
    expect(r.json.message).toMatch(/^body\.steps 1000 is too many for this model's schedule .*under leading spacing with steps_offset 1 ddim's first timestep would pass 999.*; body\.steps is at most 999 here$/);
    expect((await s.call('DELETE', '/v1/models/sd-steps')).status).toBe(204);
  });
});

describe('img2img: a plan that runs no step', () => {
  // (the 400 said "strength 0.3 with 1 steps runs no denoising step (needs strength >= 1/steps)", naming no field)
  it('is a 400 naming body.strength and body.steps, with a strength that runs', async () => {
    const loaded = await s.call('POST', '/v1/models', { kind: 'sd', name: 'sd-none', path: 'models/sd' });
    expect(loaded.status, loaded.text).toBe(201);
    const body = (steps: number, scheduler?: string) => ({
      z: b64(new Float32Array(4 * 8 * 8), [1, 4, 8, 8]),
      c: b64(new Float32Array(77 * 32), [1, 77, 32]),
      steps,
      strength: 0.3,
      output: 'latents',
      ...(scheduler ? { scheduler } : {}),
    });
    const r = await s.call('POST', '/v1/sd/sd-none/img2img', body(1, 'euler'));
    expect(r.status, r.text).toBe(400);
    expect(r.json).toMatchObject({ code: 'InvalidArgument', name: 'InvalidArgumentError' });
    expect(r.json.message).toBe(
      'body.strength 0.3 with body.steps 1 runs no denoising step: img2img runs the last ⌊steps·strength⌋ of the steps, 0 here; strength·steps must be at least 1 (e.g. body.strength 1 with body.steps 1)',
    );
    // the folder's pndm has steps + 1 timesteps: diffusers runs the last alone (one call at t_0), and so does the engine
    const pndm = await s.call('POST', '/v1/sd/sd-none/img2img', body(3));
    expect(pndm.status, pndm.text).toBe(200);
    expect((await s.call('DELETE', '/v1/models/sd-none')).status).toBe(204);
  });
});
