/**
 * Every scheduler of the engine against diffusers' classes transcribed in float64
 * (ts/sd/referenceSchedulers.ts) on the fixture's nonlinear U-Net (onnxruntime-node), with and without
 * guidance, at several step counts, strengths, spacings and with Karras sigmas; the details of
 * diffusers that are easy to get wrong; --step-noise; the config's _class_name; config validation;
 * non-finite inputs.
 */
import { mkdir, writeFile, cp, rm } from 'node:fs/promises';
import { join } from 'node:path';

import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { FormatError, InvalidArgumentError, NonFiniteError } from '../../ts/errors.js';
import { Diffusion } from '../../ts/sd/Diffusion.js';
import { philoxNormal } from '../../ts/sd/philox.js';
import { referenceImg2Img, type UNetFn } from '../../ts/sd/referenceLoop.js';
import { textbookLms } from '../../ts/sd/referenceSchedulers.js';
import { KARRAS_SCHEDULERS, SCHEDULERS, type SchedulerName } from '../../ts/sd/schedulerConfig.js';
import type { Tensor } from '../../ts/sd/tensor.js';
import { disposeTinySd, loadTinySd, patternImages, type TinySd } from './fixtures.js';

let root = '';
let sd: Diffusion;
let unet: ort.InferenceSession;
let z: Tensor;
let c: Tensor;
let uncond: Tensor;

function scaledDiff(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  return worst;
}

let tiny: TinySd | undefined;
beforeAll(async () => {
  tiny = await loadTinySd();
  ({ root, sd, unet, z, c, uncond } = tiny);
});

afterAll(() => disposeTinySd(tiny));

interface Case {
  scheduler: SchedulerName;
  steps: number;
  strength: number;
  guidance: number;
  karras?: boolean;
  eta?: number;
  spacing?: 'leading' | 'trailing' | 'linspace';
}

const cases: Case[] = [];
for (const scheduler of SCHEDULERS) {
  cases.push({ scheduler, steps: 10, strength: 0.8, guidance: 5 });
  cases.push({ scheduler, steps: 7, strength: 1, guidance: 1 });
  cases.push({ scheduler, steps: 25, strength: 0.55, guidance: 3, spacing: 'leading' });
  if (KARRAS_SCHEDULERS.includes(scheduler)) cases.push({ scheduler, steps: 12, strength: 0.75, guidance: 5, karras: true });
}
cases.push({ scheduler: 'ddim', steps: 12, strength: 0.9, guidance: 5, eta: 0.5 });
cases.push({ scheduler: 'unipc', steps: 9, strength: 1, guidance: 5, spacing: 'trailing' });
cases.push({ scheduler: 'pndm', steps: 9, strength: 0.7, guidance: 1, spacing: 'linspace' });

describe('each scheduler against diffusers transcribed in float64', () => {
  for (const cs of cases) {
    const name = `${cs.scheduler}${cs.karras ? ' karras' : ''}${cs.eta ? ` eta ${cs.eta}` : ''}${cs.spacing ? ` ${cs.spacing}` : ''}: ${cs.steps} steps, strength ${cs.strength}, guidance ${cs.guidance}`;
    it(name, async () => {
      const schedule = cs.spacing ? { ...sd.schedule, timestepSpacing: cs.spacing } : sd.schedule;
      const native = await sd.img2img({
        z, c, uncond, seeds: 11, batchSize: 2, scheduler: cs.scheduler, steps: cs.steps, strength: cs.strength,
        guidance: cs.guidance, karras: cs.karras, eta: cs.eta, timestepSpacing: cs.spacing,
      });
      const timings = { unetSeconds: 0, loopSeconds: 0, unetCalls: 0 };
      const ref = await referenceImg2Img(unet, {
        z, c, uncond, seeds: 11, batchSize: 3, scheduler: cs.scheduler, steps: cs.steps, strength: cs.strength,
        guidance: cs.guidance, karras: cs.karras, eta: cs.eta, schedule, timings,
      });
      const d = scaledDiff(native.latents.data, ref);
      // (float32 U-Net outputs through ONNX Runtime's kernels, batches of 2 here and 3 there, and float32 steps: on a
      // Zen 3 CPU (AVX2 kernels) the largest of these cases came to 1.06e-5 (dpmpp2m-sde karras) and 9.95e-6
      // (unipc trailing), most 3e-6–7e-6; a wrong coefficient or step order moves them by 1e-3 and more)
      expect(d).toBeLessThan(3e-5);
      // the same number of U-Net calls per image as diffusers' loop makes
      const plan = sd.plan({ scheduler: cs.scheduler, steps: cs.steps, strength: cs.strength, karras: cs.karras, timestepSpacing: cs.spacing, eta: cs.eta });
      expect(timings.unetCalls).toBe(plan.runs.length);
      expect(native.stats.unetCalls).toBe(plan.runs.length * 2); // two batches of 2 and 1 images
    });
  }
});

describe('details of diffusers that are easy to get wrong', () => {
  const plan = (scheduler: SchedulerName, steps: number, strength: number, extra: { karras?: boolean; timestepSpacing?: 'leading' | 'trailing' | 'linspace' } = {}) =>
    sd.plan({ scheduler, steps, strength, ...extra });

  it('PNDM (skip_prk_steps): N+1 timesteps, second doubled; N=10, s=0.8 starts at 801 with 9 U-Net calls', () => {
    const p = plan('pndm', 10, 0.8);
    expect(p.timesteps).toEqual([901, 801, 801, 701, 601, 501, 401, 301, 201, 101, 1]);
    expect(p.runs.length).toBe(9);
    expect(p.runs[0].timestep).toBe(801);
    expect(p.noiseTimestep).toBe(801);
    expect(p.className).toBe('PNDMScheduler');
  });

  it("PNDM with strength·steps < 1: diffusers' timesteps[N:] is its last timestep alone, one call from the latents noised there", async () => {
    // SD 1.x (leading, steps_offset 1): N=3 → [667, 334, 334, 1]; get_timesteps: init 0, t_start 3, timesteps[3:] = [1]
    const p = plan('pndm', 3, 0.3);
    expect(p.timesteps).toEqual([667, 334, 334, 1]);
    expect(p.runs.map((r) => r.timestep)).toEqual([1]);
    expect(p.noiseTimestep).toBe(1);
    const o = { z, c, uncond, seeds: 11, scheduler: 'pndm' as const, steps: 3, strength: 0.3, guidance: 5 };
    const native = await sd.img2img({ ...o, batchSize: 2 });
    const timings = { unetSeconds: 0, loopSeconds: 0, unetCalls: 0 };
    const ref = await referenceImg2Img(unet, { ...o, batchSize: 3, schedule: sd.schedule, timings });
    expect(timings.unetCalls).toBe(1);
    expect(scaledDiff(native.latents.data, ref)).toBeLessThan(1e-5);
    // (one step at one step: nothing is left, as in diffusers, where PNDM at N=1 has one timestep)
    expect(() => plan('pndm', 1, 0.3)).toThrow(/runs no denoising step/);
  });

  it('Heun: 2N−1 timesteps and order 2: 15 U-Net calls at N=10, s=0.8, begin index 4', () => {
    const p = plan('heun', 10, 0.8);
    expect(p.timesteps.length).toBe(19);
    expect(p.runs.length).toBe(15);
    expect(p.beginIndex).toBe(4);
  });

  it('DPM-Solver and UniPC with leading spacing use N+1 points: they start at t=721 at N=10, s=0.8', () => {
    for (const s of ['dpmpp2m', 'dpmpp2m-sde', 'unipc'] as const) {
      const p = plan(s, 10, 0.8, { timestepSpacing: 'leading' });
      expect(p.timesteps.slice(0, 3)).toEqual([901, 811, 721]);
      expect(p.runs[0].timestep).toBe(721);
      expect(p.runs.length).toBe(8);
    }
  });

  it("each class's own default spacing applies when SD 1.5's config names none", () => {
    for (const s of ['ddim', 'pndm', 'ddpm'] as const) expect(plan(s, 10, 1).timestepSpacing).toBe('leading');
    for (const s of ['euler', 'euler-ancestral', 'lms', 'heun', 'dpmpp2m', 'dpmpp2m-sde', 'unipc'] as const) {
      expect(plan(s, 10, 1).timestepSpacing).toBe('linspace');
    }
    // linspace Euler runs fractional timesteps: 999, 888, 777, …
    expect(plan('euler', 10, 1).timesteps[1]).toBe(888);
    expect(plan('euler', 7, 1).timesteps[1]).toBeCloseTo(832.5, 4);
  });

  it('Karras: Euler spans the leading sigmas with fractional timesteps, DPM-Solver σ(0)…σ(999) with rounded ones', () => {
    const e = plan('euler', 10, 1, { karras: true, timestepSpacing: 'leading' });
    const ac = sd.plan({ scheduler: 'ddim', steps: 999, strength: 1 }).runs; // every timestep 1..999 (1000 would pass T − 1)
    const sigmaAt = (t: number) => ac.find((r) => r.timestep === t)!.sigma;
    expect(e.runs[0].sigma).toBeCloseTo(sigmaAt(901), 4);
    expect(e.runs.at(-1)!.sigma).toBeCloseTo(sigmaAt(1), 5);
    expect(e.runs.some((r) => !Number.isInteger(r.timestep))).toBe(true);
    const d = plan('dpmpp2m', 10, 1, { karras: true, timestepSpacing: 'leading' });
    expect(d.runs[0].timestep).toBe(999);
    expect(d.runs.at(-1)!.timestep).toBe(0);
    expect(d.runs.every((r) => Number.isInteger(r.timestep))).toBe(true);
    expect(() => plan('euler-ancestral', 10, 1, { karras: true })).toThrow(/Karras sigmas are defined for/);
  });

  it('LMS: order counted from the img2img start with as many coefficients as derivatives — not the textbook method', async () => {
    const job = { z, c, uncond, seeds: 5, scheduler: 'lms' as const, steps: 10, strength: 0.8, guidance: 5 };
    const native = await sd.img2img({ ...job, batchSize: 3 });
    const diffusers = await referenceImg2Img(unet, { ...job, schedule: sd.schedule, batchSize: 3 });
    const textbook = await referenceImg2Img(unet, { ...job, schedule: sd.schedule, batchSize: 3, makeScheduler: (s) => textbookLms(s) });
    expect(scaledDiff(native.latents.data, diffusers)).toBeLessThan(1e-5);
    // the two rules differ from the first step on (order 4 with one derivative vs order 1)
    const gap = scaledDiff(native.latents.data, textbook);
    console.log(`LMS, N=10, s=0.8: engine vs textbook LMS ${gap.toExponential(2)} (vs diffusers ${scaledDiff(native.latents.data, diffusers).toExponential(2)})`);
    expect(gap).toBeGreaterThan(1e-2);
  });

  it("an int64 U-Net receives the scheduler's fractional timestep truncated", async () => {
    const dir = join(root, 'optimum-1.23'); // timestep int64 [B]
    const v = await Diffusion.load(dir, { intraOpThreads: 1 });
    const u = await ort.InferenceSession.create(join(dir, 'unet', 'model.onnx'), { intraOpNumThreads: 1 });
    try {
      const zv = await v.encodeImages(patternImages(1, 32, 32));
      const cv = await v.encodeText(['hello cat']);
      const uv = await v.encodeText(['']);
      const o = { z: zv, c: cv, uncond: uv, steps: 7, strength: 1, guidance: 3, seeds: 2, scheduler: 'euler' as const };
      expect(v.plan(o).runs.some((r) => !Number.isInteger(r.timestep))).toBe(true);
      const native = await v.img2img(o);
      const ref = await referenceImg2Img(u, { ...o, schedule: v.schedule });
      expect(scaledDiff(native.latents.data, ref)).toBeLessThan(1e-5);
    } finally {
      v.dispose();
      await u.release();
    }
  });
});

describe('step noise (--step-noise)', () => {
  for (const scheduler of ['euler-ancestral', 'dpmpp2m-sde', 'ddpm'] as const) {
    it(`${scheduler}: the given noise is consumed call by call, exactly as the reference consumes it`, async () => {
      const o = { z, c, uncond, steps: 8, strength: 0.75, guidance: 4, scheduler, seeds: 5 };
      const calls = sd.plan(o).runs.length;
      const n = z.data.length / 3;
      // Philox streams 1 + step index reproduce the engine's default
      const begin = sd.plan(o).beginIndex;
      const philox = new Float32Array(calls * 3 * n);
      for (let k = 0; k < calls; k++) for (let i = 0; i < 3; i++) philox.set(philoxNormal(5, i, 1 + begin + k, 0, n), (k * 3 + i) * n);
      const a = await sd.img2img(o);
      const b = await sd.img2img({ ...o, stepNoise: { data: philox, shape: [calls, ...z.shape] } });
      expect(Array.from(b.latents.data)).toEqual(Array.from(a.latents.data));
      // other noise: the reference loop fed the same noise agrees
      const other = new Float32Array(philox.length);
      for (let i = 0; i < other.length; i++) other[i] = Math.sin(i * 1.7) * 1.3;
      const stepNoise = { data: other, shape: [calls, ...z.shape] };
      const native = await sd.img2img({ ...o, stepNoise });
      const ref = await referenceImg2Img(unet, { ...o, stepNoise, schedule: sd.schedule });
      expect(scaledDiff(native.latents.data, ref)).toBeLessThan(1e-5);
      expect(scaledDiff(native.latents.data, a.latents.data)).toBeGreaterThan(1e-3);
      const short = { data: other.subarray(0, (calls - 1) * 3 * n), shape: [calls - 1, ...z.shape] };
      await expect(sd.img2img({ ...o, stepNoise: short })).rejects.toThrow(/stepNoise has shape .* expected \[\d+, 3, 4, 8, 6\]/);
    });
  }
});

describe('step noise on a run that draws none', () => {
  it('is refused naming stepNoise, the scheduler and the schedulers that use it (it was ignored: the same latents)', async () => {
    const cases = [
      { scheduler: 'euler', steps: 8, strength: 0.75 },
      { scheduler: 'ddim', steps: 8, strength: 0.75 },
      { scheduler: 'heun', steps: 8, strength: 0.75 },
      { scheduler: 'pndm', steps: 8, strength: 0.75 },
      { scheduler: 'dpmpp2m', steps: 8, strength: 0.75 },
      // euler-ancestral's last step draws no noise: at 8 steps and strength 0.1 it is the only one that runs
      { scheduler: 'euler-ancestral', steps: 8, strength: 0.125 },
    ] as const;
    for (const cs of cases) {
      const o = { z, c, uncond, guidance: 4, seeds: 5, ...cs };
      const calls = sd.plan(o).runs.length;
      const stepNoise = { data: new Float32Array(calls * z.data.length).fill(0.5), shape: [calls, ...z.shape] };
      const e = await sd.img2img({ ...o, stepNoise }).catch((err: unknown) => err);
      expect(e, cs.scheduler).toBeInstanceOf(InvalidArgumentError);
      const which = cs.scheduler === 'ddim' ? 'ddim with eta 0' : cs.scheduler;
      expect((e as Error).message, cs.scheduler).toBe(
        `img2img stepNoise: no U-Net call of this run draws noise (${which}, 8 steps, strength ${cs.strength}), so the step noise would be ignored and the result ` +
          'would be the same as without it; step noise is for the schedulers whose steps draw noise: ddim with eta > 0, ddpm, euler-ancestral and dpmpp2m-sde (the last two draw none at their last step)',
      );
    }
    // ddim with eta > 0 draws noise at every step: taken
    const o = { z, c, uncond, guidance: 4, seeds: 5, scheduler: 'ddim' as const, steps: 8, strength: 0.75, eta: 0.5 };
    const calls = sd.plan(o).runs.length;
    const a = await sd.img2img({ ...o, stepNoise: { data: new Float32Array(calls * z.data.length).fill(0.5), shape: [calls, ...z.shape] } });
    const b = await sd.img2img(o);
    expect(scaledDiff(a.latents.data, b.latents.data)).toBeGreaterThan(1e-3);
  });
});

describe('referenceImg2Img checks its options as img2img does', () => {
  it('refuses a bad batchSize, steps, seeds, guidance or an unknown key before any U-Net call, naming the option', async () => {
    let calls = 0;
    const zeros: UNetFn = async (sample) => {
      calls++;
      return new Float32Array(sample.length);
    };
    const o = { z, c, uncond, steps: 4, strength: 1, guidance: 3, scheduler: 'ddim' as const, seeds: 1 };
    const refused = async (over: Record<string, unknown>, message: string) => {
      const e = await referenceImg2Img(zeros, { ...o, ...over }).catch((err: unknown) => err);
      expect(e, message).toBeInstanceOf(InvalidArgumentError);
      expect((e as Error).message).toBe(message);
    };
    // (batchSize 0 looped forever, -1 was a RangeError from the typed array; steps 0, -1 and null gave NaN latents)
    await refused({ batchSize: 0 }, 'referenceImg2Img batchSize: expected an integer in 1..2147483647, got 0');
    await refused({ batchSize: -1 }, 'referenceImg2Img batchSize: expected an integer in 1..2147483647, got -1');
    await refused({ steps: 0 }, 'referenceImg2Img steps: expected an integer >= 1, got 0');
    await refused({ steps: -1 }, 'referenceImg2Img steps: expected an integer >= 1, got -1');
    await refused({ steps: 2.5 }, 'referenceImg2Img steps: expected an integer >= 1, got 2.5');
    await refused({ steps: null }, 'referenceImg2Img steps: required, got null');
    await refused({ seeds: -1 }, 'referenceImg2Img seeds: expected an integer from 0 to 9007199254740991, got -1');
    await refused({ seeds: '3' }, 'referenceImg2Img seeds: expected an integer from 0 to 9007199254740991, got string "3"');
    await refused({ guidance: -1 }, 'referenceImg2Img guidance: expected a number from 0 to 100, got -1');
    const e = await referenceImg2Img(zeros, { ...o, batchsize: 2 } as typeof o).catch((err: unknown) => err);
    expect((e as Error).message).toMatch(/^referenceImg2Img: unknown option 'batchsize' \(did you mean 'batchSize'\?\); known: z, c, uncond,/);
    expect(calls).toBe(0);
    // good options run: 4 steps at strength 1, one call each for the 3 images in one batch
    const out = await referenceImg2Img(zeros, { ...o, batchSize: 3 });
    expect(out.length).toBe(z.data.length);
    expect(calls).toBe(4);
  });
});

describe('the scheduler config', () => {
  const dirWith = async (name: string, config: unknown): Promise<string> => {
    const dir = join(root, `cfg-${name}`);
    await rm(dir, { recursive: true, force: true });
    await cp(join(root, 'optimum-1.24'), dir, { recursive: true });
    await mkdir(join(dir, 'scheduler'), { recursive: true });
    await writeFile(join(dir, 'scheduler', 'scheduler_config.json'), JSON.stringify(config));
    return dir;
  };
  const sd15 = { beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear', num_train_timesteps: 1000, steps_offset: 1 };

  it("_class_name picks the scheduler when none is asked for (SD 1.x: PNDM)", async () => {
    expect(sd.defaultScheduler()).toBe('pndm');
    for (const [cls, want] of [
      ['EulerAncestralDiscreteScheduler', 'euler-ancestral'],
      ['UniPCMultistepScheduler', 'unipc'],
      ['DPMSolverMultistepScheduler', 'dpmpp2m'],
    ] as const) {
      const d = await Diffusion.load(await dirWith(cls, { _class_name: cls, ...sd15 }), { components: ['unet'] });
      expect(d.defaultScheduler()).toBe(want);
      expect(d.plan({ steps: 10 }).className).toBe(cls);
      d.dispose();
    }
    const sde = await Diffusion.load(await dirWith('sde', { _class_name: 'DPMSolverMultistepScheduler', algorithm_type: 'sde-dpmsolver++', use_karras_sigmas: true, ...sd15 }), { components: ['unet'] });
    expect(sde.defaultScheduler()).toBe('dpmpp2m-sde');
    expect(sde.plan({ steps: 10 }).karras).toBe(true);
    sde.dispose();
  });

  it("Karras sigmas span the config's sigma_min..sigma_max in every class that has them but LMS, as diffusers (review s43)", async () => {
    // An Euler config with a sigma range, the other classes made from it (from_config keeps the keys their __init__
    // lacks, which Heun's and DPM-Solver++'s _convert_to_karras read); LMS's reads only the schedule's ends.
    const d = await Diffusion.load(await dirWith('sigma-range', { _class_name: 'EulerDiscreteScheduler', ...sd15, sigma_min: 0.1, sigma_max: 10 }), {
      components: ['unet'],
    });
    const sigmas = (scheduler: SchedulerName) => d.plan({ scheduler, steps: 5, strength: 1, karras: true }).runs.map((r) => r.sigma);
    // (diffusers' DPMSolverMultistepScheduler.from_config(euler.config, use_karras_sigmas=True), 5 steps: the Karras
    // ramp from 10 to 0.1 at rho 7)
    const want = [10, 4.0701, 1.4507, 0.4325, 0.1];
    for (const scheduler of ['euler', 'dpmpp2m', 'dpmpp2m-sde', 'unipc'] as const) {
      sigmas(scheduler).forEach((s, i) => expect(s, `${scheduler} σ${i}`).toBeCloseTo(want[i], 3));
    }
    const heun = sigmas('heun');
    [10, 4.0701, 4.0701, 1.4507, 1.4507].forEach((w, i) => expect(heun[i], `heun σ${i}`).toBeCloseTo(w, 3));
    expect(heun.at(-1)).toBeCloseTo(0.1, 4);
    const lms = sigmas('lms');
    expect(lms[0]).toBeCloseTo(14.6146, 3);
    expect(lms.at(-1)).toBeCloseTo(0.0292, 3);
    d.dispose();
  });

  it('an unknown class is an error listing the known ones', async () => {
    const dir = await dirWith('unknown', { _class_name: 'FlowMatchEulerDiscreteScheduler', ...sd15 });
    await expect(Diffusion.load(dir)).rejects.toThrow(
      /scheduler_config\.json: _class_name 'FlowMatchEulerDiscreteScheduler' is not a scheduler the engine knows; known: DDIMScheduler, PNDMScheduler/,
    );
  });

  it("a chosen scheduler runs instead of an unknown class, with the file's other keys; without one the error names the remedy", async () => {
    const dir = await dirWith('unknown-chosen', { _class_name: 'FooScheduler', ...sd15, beta_end: 0.02 });
    const err = await Diffusion.load(dir, { components: ['unet'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FormatError);
    expect((err as Error).message).toContain("_class_name 'FooScheduler' is not a scheduler the engine knows");
    expect((err as Error).message).toContain("choose one with --scheduler (the command line) or Diffusion.load's scheduler option (the API): ddim, pndm");
    const d = await Diffusion.load(dir, { components: ['unet'], scheduler: 'ddim' });
    expect(d.defaultScheduler()).toBe('ddim');
    expect(d.schedule.betaEnd).toBe(0.02);
    expect(d.plan({ steps: 10 }).className).toBe('DDIMScheduler');
    expect(d.schedulerConfig.className).toBe('FooScheduler');
    d.dispose();
    await expect(Diffusion.load(dir, { components: ['unet'], scheduler: 'plms' as SchedulerName })).rejects.toThrow(
      "Diffusion.load scheduler: unknown scheduler 'plms', expected one of ddim, pndm",
    );
  });

  it("a load without the U-Net does not need the class (it samples nothing): VAE and text encoder load, a call that needs the class names it", async () => {
    const dir = await dirWith('unknown-no-unet', { _class_name: 'FooScheduler', ...sd15, beta_end: 0.02 });
    const d = await Diffusion.load(dir, { components: ['vae_encoder', 'text_encoder'] });
    expect(d.schedulerConfig.className).toBe('FooScheduler');
    expect(d.schedule.betaEnd).toBe(0.02);
    expect((await d.encodeText(['a cat'])).shape[0]).toBe(1);
    expect(() => d.defaultScheduler()).toThrow(FormatError);
    expect(() => d.defaultScheduler()).toThrow(/_class_name 'FooScheduler' is not a scheduler the engine knows.*\(this model was loaded without its unet\)$/);
    d.dispose();
    // its keys are still checked, and a load with the U-Net still needs the class
    const bad = await dirWith('unknown-no-unet-bad', { _class_name: 'FooScheduler', ...sd15, beta_schedule: 'cosine' });
    await expect(Diffusion.load(bad, { components: ['vae_encoder'] })).rejects.toThrow(/beta_schedule/);
    await expect(Diffusion.load(dir, { components: ['unet', 'text_encoder'] })).rejects.toThrow(/_class_name 'FooScheduler' is not a scheduler the engine knows/);
  });

  it('a config without _class_name runs PNDM, as a folder without a config does (SD 1.x)', async () => {
    const d = await Diffusion.load(await dirWith('no-class', { ...sd15, skip_prk_steps: true }), { components: ['unet'] });
    expect(d.defaultScheduler()).toBe('pndm');
    expect(d.plan({ steps: 10 }).className).toBe('PNDMScheduler');
    d.dispose();
    // PNDM needs skip_prk_steps: refused naming the missing class and the remedy, unless a scheduler is chosen
    const dir = await dirWith('no-class-prk', sd15);
    const err = await Diffusion.load(dir, { components: ['unet'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FormatError);
    expect((err as Error).message).toContain(`${join(dir, 'scheduler', 'scheduler_config.json')}: names no _class_name, so it runs PNDMScheduler (SD 1.x's), which needs skip_prk_steps: true`);
    const e = await Diffusion.load(dir, { components: ['unet'], scheduler: 'euler' });
    expect(e.defaultScheduler()).toBe('euler');
    e.dispose();
  });

  it('validates betas, enumerations and unsupported options, naming the file and the field', async () => {
    const bad = async (name: string, cfg: Record<string, unknown>, re: RegExp) => {
      const dir = await dirWith(name, { _class_name: 'DDIMScheduler', ...sd15, ...cfg });
      const err = await Diffusion.load(dir).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FormatError);
      expect((err as Error).message).toMatch(re);
      expect((err as Error).message).toContain(join(dir, 'scheduler', 'scheduler_config.json'));
    };
    await bad('neg', { beta_start: -1 }, /beta_start must be in \(0, 1\), got -1/);
    await bad('big', { beta_end: 1.2 }, /beta_end must be in \(0, 1\), got 1\.2/);
    await bad('sched', { beta_schedule: 'sigmoid' }, /beta_schedule is "sigmoid"; supported: linear, scaled_linear, squaredcos_cap_v2/);
    await bad('pred', { prediction_type: 'v_prediction' }, /prediction_type is "v_prediction"; supported: epsilon/);
    await bad('spacing', { timestep_spacing: 'karras' }, /timestep_spacing is "karras"/);
    await bad('thresh', { thresholding: true }, /thresholding = true is not supported/);
    await bad('offset', { steps_offset: 1.5 }, /steps_offset must be an integer/);
  });
});

describe('non-finite numbers', () => {
  it('refuses NaN latents and Inf conditioning, naming the input and the first bad index', async () => {
    const zb = { data: z.data.slice(), shape: z.shape };
    zb.data[200] = Number.NaN;
    const e1 = await sd.img2img({ z: zb, c, uncond, scheduler: 'ddim' }).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(NonFiniteError);
    expect((e1 as Error).message).toMatch(/z \(the initial latents\) has a non-finite value \(NaN\) at index 200 \(row 1, element 8\)/);
    const cb = { data: c.data.slice(), shape: c.shape };
    cb.data[77 * 32 + 5] = Number.POSITIVE_INFINITY;
    const e2 = await sd.img2img({ z, c: cb, uncond, scheduler: 'ddim' }).catch((e: unknown) => e);
    expect(e2).toBeInstanceOf(NonFiniteError);
    expect((e2 as Error).message).toMatch(/cond \(the conditioning c\) has a non-finite value \(Inf\) at index 2469 \(row 1, element 5\)/);
    const nb = { data: new Float32Array(z.data.length), shape: z.shape };
    nb.data[7] = Number.NEGATIVE_INFINITY;
    await expect(sd.img2img({ z, c, uncond, noise: nb })).rejects.toThrow(/noise \(the initial noise\) has a non-finite value \(Inf\) at index 7/);
  });
});
