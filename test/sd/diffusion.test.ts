/**
 * The fused native loop against the plain TypeScript reference loop on onnxruntime-node, for every
 * scheduler with and without guidance, on the tiny fixture models of each export variant; the
 * Diffusion API's progress, cancellation, determinism and bad-input errors.
 */
import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { CancelledError, InvalidArgumentError, ShapeError } from '../../ts/errors.js';
import { Diffusion, type Img2ImgOptions, type SchedulerName } from '../../ts/sd/Diffusion.js';
import { philoxNormal } from '../../ts/sd/philox.js';
import { referenceImg2Img } from '../../ts/sd/referenceLoop.js';
import type { Tensor } from '../../ts/sd/tensor.js';
import { disposeTinySd, fixedSizeUnetCopy, fixedSizeVaeCopy, loadTinySd, patternImages, type TinySd } from './fixtures.js';

let root = '';
let sd: Diffusion;
let unet: ort.InferenceSession;
let z: Tensor;
let c: Tensor;
let uncond: Tensor;

function maxDiff(a: Float32Array, b: Float32Array): { abs: number; scaled: number } {
  let abs = 0;
  let scaled = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    abs = Math.max(abs, d);
    scaled = Math.max(scaled, d / Math.max(1, Math.abs(b[i])));
  }
  return { abs, scaled };
}

let tiny: TinySd | undefined;
beforeAll(async () => {
  tiny = await loadTinySd();
  ({ root, sd, unet, z, c, uncond } = tiny);
});

afterAll(() => disposeTinySd(tiny));

describe('fused native loop vs TypeScript reference loop (onnxruntime-node)', () => {
  const cases: { scheduler: SchedulerName; eta?: number; steps: number; strength: number }[] = [
    { scheduler: 'ddim', steps: 10, strength: 0.8 },
    { scheduler: 'ddim', eta: 0.5, steps: 10, strength: 0.8 },
    { scheduler: 'euler', steps: 12, strength: 0.75 },
    { scheduler: 'dpmpp2m', steps: 12, strength: 0.75 },
    { scheduler: 'dpmpp2m', steps: 8, strength: 1 },
  ];
  for (const cs of cases) {
    for (const guidance of [1, 5]) {
      it(`${cs.scheduler}${cs.eta ? ` eta ${cs.eta}` : ''} ${cs.steps} steps strength ${cs.strength}, guidance ${guidance}`, async () => {
        const native = await sd.img2img({ z, c, uncond, guidance, seeds: 42, batchSize: 2, ...cs });
        const ref = await referenceImg2Img(unet, { z, c, uncond, guidance, seeds: 42, ...cs });
        const d = maxDiff(native.latents.data, ref);
        console.log(`${cs.scheduler} eta ${cs.eta ?? 0} g ${guidance}: max |native - reference| ${d.abs.toExponential(2)} (scaled ${d.scaled.toExponential(2)})`);
        expect(d.scaled).toBeLessThan(1e-5);
        expect(native.stats.unetCalls).toBe(Math.floor(cs.steps * cs.strength) * 2);
        // U-Net evaluations of one latent: every image's steps, twice with guidance (its unconditional pass)
        expect(native.stats.unetEvaluations).toBe(z.shape[0] * Math.floor(cs.steps * cs.strength) * (guidance > 1 ? 2 : 1));
      });
    }
  }

  it('gives each image the same result whatever the batch size and order', async () => {
    const a = await sd.img2img({ z, c, uncond, seeds: 7, batchSize: 1, steps: 6, strength: 0.7, scheduler: 'ddim', eta: 1 });
    const b = await sd.img2img({ z, c, uncond, seeds: 7, batchSize: 3, steps: 6, strength: 0.7, scheduler: 'ddim', eta: 1 });
    expect(Array.from(b.latents.data)).toEqual(Array.from(a.latents.data));
    // the same evaluations whatever the batch size (the sampler's calls differ: one per batch and step)
    expect([a.stats.unetEvaluations, b.stats.unetEvaluations]).toEqual([z.shape[0] * 4 * 2, z.shape[0] * 4 * 2]);
    expect(a.stats.unetCalls).not.toBe(b.stats.unetCalls);
    // image 2 alone, at its index, reproduces its slot
    const n = 4 * 8 * 6;
    const one = await sd.img2img({
      z: { data: z.data.slice(2 * n, 3 * n), shape: [1, 4, 8, 6] },
      c: { data: c.data.slice(2 * 77 * 32, 3 * 77 * 32), shape: [1, 77, 32] },
      uncond,
      seeds: 7,
      firstImageIndex: 2,
      steps: 6,
      strength: 0.7,
      scheduler: 'ddim',
      eta: 1,
    });
    expect(Array.from(one.latents.data)).toEqual(Array.from(a.latents.data.slice(2 * n, 3 * n)));
  });

  it('keys the noise of each image by its imageIndices entry: the same result alone, in a subset, or in another order', async () => {
    const n = 4 * 8 * 6;
    const cn = 77 * 32;
    const job = { uncond, seeds: 7, steps: 6, strength: 0.7, scheduler: 'ddim' as const, eta: 1 };
    const pick = (order: number[]) => ({
      z: { data: Float32Array.from(order.flatMap((i) => Array.from(z.data.slice(i * n, (i + 1) * n)))), shape: [order.length, 4, 8, 6] },
      c: { data: Float32Array.from(order.flatMap((i) => Array.from(c.data.slice(i * cn, (i + 1) * cn)))), shape: [order.length, 77, 32] },
    });
    const ids = [530, 17, 2048]; // e.g. NSD 73k ids of the three images
    const all = await sd.img2img({ ...job, ...pick([0, 1, 2]), imageIndices: ids, batchSize: 2 });
    const reversed = await sd.img2img({ ...job, ...pick([2, 1, 0]), imageIndices: [ids[2], ids[1], ids[0]] });
    const alone = await sd.img2img({ ...job, ...pick([1]), imageIndices: [ids[1]] });
    for (let i = 0; i < 3; i++) {
      expect(Array.from(reversed.latents.data.slice((2 - i) * n, (3 - i) * n))).toEqual(Array.from(all.latents.data.slice(i * n, (i + 1) * n)));
    }
    expect(Array.from(alone.latents.data)).toEqual(Array.from(all.latents.data.slice(n, 2 * n)));
    // the index is what keys the noise: image 1 at index 0 (its position) is another sample
    const positional = await sd.img2img({ ...job, ...pick([1]) });
    expect(Array.from(positional.latents.data)).not.toEqual(Array.from(alone.latents.data));
    // encodeImages' posterior sample is keyed the same way
    const imgs = patternImages(2, 16, 16);
    const second = { data: imgs.data.slice(16 * 16 * 3), count: 1, height: 16, width: 16 };
    const both = await sd.encodeImages(imgs, { mode: 'sample', seeds: 3, imageIndices: [90, 12] });
    const one = await sd.encodeImages(second, { mode: 'sample', seeds: 3, imageIndices: [12] });
    expect(Array.from(one.data)).toEqual(Array.from(both.data.slice(one.data.length)));
    const atZero = await sd.encodeImages(second, { mode: 'sample', seeds: 3 });
    expect(Array.from(atZero.data)).not.toEqual(Array.from(one.data));
  });

  it('rejects imageIndices that are not one non-negative safe integer per image, or given with firstImageIndex', async () => {
    await expect(sd.img2img({ z, c, imageIndices: [1, 2] })).rejects.toThrow(/^img2img imageIndices: expected one entry per image \(3\), got an array of 2$/);
    await expect(sd.img2img({ z, c, imageIndices: [1, -2, 3] })).rejects.toThrow(/^img2img imageIndices\[1\]: expected an integer in 0\.\.9007199254740991, got -2$/);
    await expect(sd.img2img({ z, c, imageIndices: [1, 2, 3.5] })).rejects.toThrow(InvalidArgumentError);
    await expect(sd.img2img({ z, c, imageIndices: [1, 2, 3], firstImageIndex: 4 })).rejects.toThrow(/give imageIndices or firstImageIndex, not both/);
    await expect(sd.img2img({ z, c, seeds: [1, 2] })).rejects.toThrow(/^img2img seeds: expected one seed per image \(3\), got an array of 2$/);
    await expect(sd.encodeImages(patternImages(2, 16, 16), { mode: 'sample', imageIndices: [2 ** 53] })).rejects.toThrow(/^encodeImages imageIndices: expected one entry per image \(2\), got an array of 1$/);
    await expect(sd.encodeImages(patternImages(1, 16, 16), { mode: 'sample', imageIndices: [2 ** 53] })).rejects.toThrow(/^encodeImages imageIndices\[0\]: expected an integer in 0\.\.9007199254740991, got 9007199254740992$/);
  });

  it('runs the U-Net on row slices of the batch (maxRowsPerRun, lean memory) with the same result to float32 rounding', async () => {
    const job = { z, c, uncond, guidance: 5, seeds: 3, batchSize: 3, steps: 6, strength: 0.8, scheduler: 'dpmpp2m' as const };
    const whole = await sd.img2img(job);
    for (const options of [{ maxRowsPerRun: 1 }, { maxRowsPerRun: 4 }, { memory: 'lean' as const }]) {
      const sliced = await Diffusion.load(join(root, 'optimum-1.24'), { intraOpThreads: 1, components: ['unet'], ...options });
      try {
        const r = await sliced.img2img(job);
        // 6 rows (3 images with guidance) as 6 or 2 runs per step: each row is its own computation,
        // a slice of 1 row takes other GEMM kernels than one of 2 or more: float32 rounding, no more
        const d = maxDiff(r.latents.data, whole.latents.data);
        if (options.maxRowsPerRun === 4) expect(d.abs).toBe(0);
        else expect(d.scaled).toBeLessThan(1e-5);
        expect(r.stats.unetCalls).toBe(whole.stats.unetCalls);
      } finally {
        sliced.dispose();
      }
    }
    await expect(Diffusion.load(join(root, 'optimum-1.24'), { maxRowsPerRun: -1 })).rejects.toThrow(/maxRowsPerRun: expected an integer in 0..2147483647, got -1/);
    await expect(Diffusion.load(join(root, 'optimum-1.24'), { maxRowsPerRun: 1.5 })).rejects.toThrow(InvalidArgumentError);
  });

  it('uses given initial noise exactly (Philox stream 0 reproduces the default)', async () => {
    const n = 4 * 8 * 6;
    const noise = new Float32Array(3 * n);
    for (let i = 0; i < 3; i++) noise.set(philoxNormal(5, i, 0, 0, n), i * n);
    const a = await sd.img2img({ z, c, uncond, seeds: 5, steps: 5, strength: 0.6 });
    const b = await sd.img2img({ z, c, uncond, noise: { data: noise, shape: z.shape }, steps: 5, strength: 0.6 });
    expect(Array.from(b.latents.data)).toEqual(Array.from(a.latents.data));
  });
});

describe('export variants', () => {
  for (const variant of ['optimum-1.23', 'diffusers-script', 'diffusers-int64']) {
    it(`${variant}: adapts and agrees with the reference loop`, async () => {
      const dir = join(root, variant);
      const v = await Diffusion.load(dir, { intraOpThreads: 1 });
      const u = await ort.InferenceSession.create(join(dir, 'unet', 'model.onnx'), { intraOpNumThreads: 1 });
      try {
        const cv = await v.encodeText(['hello cat']);
        const uv = await v.encodeText(['']);
        const zv = await v.encodeImages(patternImages(1, 32, 32));
        expect(zv.shape).toEqual([1, 4, 4, 4]);
        const native = await v.img2img({ z: zv, c: cv, uncond: uv, steps: 8, strength: 0.8, guidance: 3, seeds: 1, scheduler: 'ddim' });
        const ref = await referenceImg2Img(u, { z: zv, c: cv, uncond: uv, steps: 8, strength: 0.8, guidance: 3, seeds: 1, scheduler: 'ddim' });
        expect(maxDiff(native.latents.data, ref).scaled).toBeLessThan(1e-5);
        const img = await v.decode(native.latents);
        expect([img.count, img.height, img.width]).toEqual([1, 32, 32]);
      } finally {
        v.dispose();
        await u.release();
      }
    });
  }
});

describe('Diffusion API', () => {
  it('reports its runtime, signatures and adapted variant', () => {
    expect(sd.runtime.version).toMatch(/^1\.\d+/);
    expect(sd.runtime.providers).toContain('CPUExecutionProvider');
    // A provider is listed as available only with its library beside the core: onnxruntime-node's core has CUDA and
    // TensorRT compiled in, without libonnxruntime_providers_cuda.so / _tensorrt.so (they were listed: reviewer R2).
    const folder = dirname(sd.runtime.libraryPath);
    for (const [provider, stem] of [['CUDAExecutionProvider', 'cuda'], ['TensorrtExecutionProvider', 'tensorrt']]) {
      const library = join(folder, `libonnxruntime_providers_${stem}.so`);
      const shared = join(folder, 'libonnxruntime_providers_shared.so');
      if (existsSync(library) && existsSync(shared)) continue;
      expect(sd.runtime.providers).not.toContain(provider);
      expect(sd.runtime.providersWithoutLibrary).toContainEqual({ provider, missing: existsSync(library) ? shared : library });
    }
    expect(sd.info.inputIdsDtype).toBe('int64');
    expect(sd.info.timestepRank).toBe(0);
    expect(sd.info.vaeEncoderOutput).toBe('latent_parameters');
    expect(sd.info.models.map((m) => m.component).sort()).toEqual(['text_encoder', 'unet', 'vae_decoder', 'vae_encoder']);
  });

  it('calls onStep once per step, in order, before the promise settles', async () => {
    const seen: number[] = [];
    await sd.img2img({ z, c, uncond, steps: 10, strength: 0.5, batchSize: 3, scheduler: 'ddim', onStep: (p) => seen.push(p.step) });
    expect(seen).toEqual([1, 2, 3, 4, 5]);
  });

  it('stops on an AbortSignal with a CancelledError', async () => {
    // 1000 steps on a 64×64 latent take seconds, so the abort lands mid-run
    const big = { data: new Float32Array(4 * 64 * 64).fill(0.1), shape: [1, 4, 64, 64] };
    const c1 = { data: c.data.slice(0, 77 * 32), shape: [1, 77, 32] };
    const ac = new AbortController();
    let last = 0;
    const p = sd.img2img({
      z: big,
      c: c1,
      uncond,
      steps: 999, // the most the fixture's leading spacing (steps_offset 1) allows
      strength: 1,
      onStep: (s) => {
        last = s.step;
        if (s.step === 2) ac.abort();
      },
      signal: ac.signal,
    });
    await expect(p).rejects.toBeInstanceOf(CancelledError);
    expect(last).toBeLessThan(999); // stopped long before the end
    await expect(sd.img2img({ z, c, signal: ac.signal })).rejects.toBeInstanceOf(CancelledError);
  });

  it('decodes to RGB uint8 at 8× the latent size', async () => {
    const img = await sd.decode(z);
    expect([img.count, img.height, img.width, img.data.length]).toEqual([3, 64, 48, 3 * 64 * 48 * 3]);
  });

  it('samples the posterior with a seed when asked', async () => {
    const a = await sd.encodeImages(patternImages(1, 16, 16), { mode: 'sample', seeds: 3 });
    const b = await sd.encodeImages(patternImages(1, 16, 16), { mode: 'sample', seeds: 3 });
    const m = await sd.encodeImages(patternImages(1, 16, 16));
    expect(Array.from(a.data)).toEqual(Array.from(b.data));
    expect(Array.from(a.data)).not.toEqual(Array.from(m.data));
  });
});

describe('bad input', () => {
  it('rejects a wrong latent shape', async () => {
    await expect(sd.img2img({ z: { data: new Float32Array(3 * 3 * 8 * 6), shape: [3, 3, 8, 6] }, c })).rejects.toThrow(ShapeError);
    await expect(sd.img2img({ z: { data: new Float32Array(10), shape: [3, 4, 8, 6] }, c })).rejects.toThrow(/needs 576 elements/);
    await expect(sd.img2img({ z: { data: z.data.slice(0, 2 * 192), shape: [2, 4, 8, 6] }, c })).rejects.toThrow(/^img2img: c has 3 rows \(\[3, 77, \d+\]\) but z has 2 images \(\[2, 4, 8, 6\]\); expected one row of c per image$/);
  });

  it('rejects z of the wrong channels, or latents and c of sizes a fixed-size U-Net does not take, naming the option and what it takes', async () => {
    const refusal = (p: Promise<unknown>) => p.then(() => 'no error', (e: Error) => `${e.name}: ${e.message}`);
    expect(await refusal(sd.img2img({ z: { data: new Float32Array(3 * 3 * 8 * 6), shape: [3, 3, 8, 6] }, c }))).toBe(
      'ShapeError: img2img: z has shape [3, 3, 8, 6] but the U-Net expects 4 latent channels',
    );
    // (the engine refused these too, but naming its own buffers and the file, not the option and the shape it needs)
    const dir = await fixedSizeUnetCopy(join(root, 'optimum-1.24'), join(root, 'fixed-16'), { side: 16, sequence: 77 });
    const unetPath = join(dir, 'unet', 'model.onnx');
    const fixed = await Diffusion.load(dir, { components: ['unet'], intraOpThreads: 1 });
    try {
      const c1 = { data: c.data.slice(0, 77 * 32), shape: [1, 77, 32] };
      const small = { data: new Float32Array(4 * 8 * 8), shape: [1, 4, 8, 8] };
      expect(await refusal(fixed.img2img({ z: small, c: c1, guidance: 1 }))).toBe(
        `ShapeError: img2img: z has shape [1, 4, 8, 8] but the U-Net (${unetPath}) takes sample [batch_size, 4, 16, 16]: expected [1, 4, 16, 16] (the latents of 128×128-pixel images)`,
      );
      const z16 = { data: new Float32Array(4 * 16 * 16).fill(0.1), shape: [1, 4, 16, 16] };
      const short = { data: new Float32Array(10 * 32), shape: [1, 10, 32] };
      expect(await refusal(fixed.img2img({ z: z16, c: short, guidance: 1 }))).toBe(
        `ShapeError: img2img: c has shape [1, 10, 32] but the U-Net (${unetPath}) takes encoder_hidden_states [batch_size, 77, 32]: expected [1, 77, 32]`,
      );
      // the sizes it takes run
      const r = await fixed.img2img({ z: z16, c: c1, guidance: 1, steps: 4, strength: 0.5 });
      expect(r.latents.shape).toEqual([1, 4, 16, 16]);
      // a guidance that is 1 in float32, as the engine gets it, runs as 1: no unconditional pass (no text encoder
      // here for the embedding of ""), evaluations not doubled (review s35-r1)
      const r1 = await fixed.img2img({ z: z16, c: c1, guidance: 1.00000001, steps: 4, strength: 0.5 });
      expect(r1.stats.unetEvaluations).toBe(r.stats.unetEvaluations);
      expect(Array.from(r1.latents.data)).toEqual(Array.from(r.latents.data));
    } finally {
      fixed.dispose();
    }
  });

  it('decode and encodeImages check z and the images against what a fixed-size VAE declares, naming the option and the shape it takes', async () => {
    const refusal = (p: Promise<unknown>) => p.then(() => 'no error', (e: Error) => `${e.name}: ${e.message}`);
    // (the engine refused these, naming its own buffer and the file: 'latents have shape [B,4,3,3] but … expects latent_sample …')
    const dir = await fixedSizeVaeCopy(join(root, 'optimum-1.24'), join(root, 'fixed-vae-2'), 2);
    const vae = await Diffusion.load(dir, { components: ['vae_encoder', 'vae_decoder'], intraOpThreads: 1 });
    try {
      const decoder = join(dir, 'vae_decoder', 'model.onnx');
      expect(await refusal(vae.decode({ data: new Float32Array(4 * 3 * 3), shape: [1, 4, 3, 3] }))).toBe(
        `ShapeError: decode: z has shape [1, 4, 3, 3] but the VAE decoder (${decoder}) takes latent_sample [batch_size, 4, 2, 2]: expected [1, 4, 2, 2] (the latents of 16×16-pixel images)`,
      );
      expect(await refusal(vae.decode({ data: new Float32Array(2 * 3 * 2 * 2), shape: [2, 3, 2, 2] }))).toBe(
        `ShapeError: decode: z has shape [2, 3, 2, 2] but the VAE decoder (${decoder}) takes latent_sample [batch_size, 4, 2, 2]: expected [2, 4, 2, 2] (the latents of 16×16-pixel images)`,
      );
      expect(await refusal(vae.encodeImages(patternImages(2, 8, 16)))).toBe(
        `ShapeError: encodeImages: images are 16×8 pixels ([2, 8, 16, 3]) but the VAE encoder (${join(dir, 'vae_encoder', 'model.onnx')}) takes sample [batch_size, 3, 16, 16]: expected 16×16-pixel images`,
      );
      // the sizes it takes run
      const z2 = await vae.encodeImages(patternImages(2, 16, 16));
      expect(z2.shape).toEqual([2, 4, 2, 2]);
      const img = await vae.decode(z2);
      expect([img.count, img.height, img.width]).toEqual([2, 16, 16]);
    } finally {
      vae.dispose();
    }
  });

  it('encodeText and tokenize check the captions at the boundary, naming the index', async () => {
    const refusal = (p: Promise<unknown>) => p.then(() => 'no error', (e: Error) => `${e.name}: ${e.message}`);
    const as = (v: unknown) => v as string[];
    // (was "TypeError: text.normalize is not a function")
    expect(await refusal(sd.encodeText(as([5])))).toBe('InvalidArgumentError: encodeText: captions[0] is number 5, expected a string');
    expect(await refusal(sd.encodeText(as(['a cat', null])))).toBe('InvalidArgumentError: encodeText: captions[1] is null, expected a string');
    // (a lone string was read as 5 token ids)
    expect(await refusal(sd.encodeText(as('a cat')))).toBe(
      'InvalidArgumentError: encodeText: expected an array of captions (string[]) or token ids (Int32Array), got a string: wrap one caption in an array, [caption]',
    );
    expect(await refusal(sd.encodeText(as(new Float32Array(77))))).toBe(
      'InvalidArgumentError: encodeText: expected an array of captions (string[]) or token ids (Int32Array), got a Float32Array',
    );
    expect(() => sd.tokenize(as([{}]))).toThrow(/^tokenize: captions\[0\] is an object, expected a string$/);
    expect(sd.tokenize(['a cat', ''])).toHaveLength(2 * 77);
  });

  it('rejects c of the wrong width for the U-Net', async () => {
    const bad = { data: new Float32Array(3 * 77 * 16), shape: [3, 77, 16] };
    await expect(sd.img2img({ z, c: bad })).rejects.toThrow(/width 16.*width 32/);
  });

  it('rejects strength outside (0, 1] and steps 0', async () => {
    await expect(sd.img2img({ z, c, strength: 0 })).rejects.toThrow(InvalidArgumentError);
    await expect(sd.img2img({ z, c, strength: 1.5 })).rejects.toThrow(/^img2img strength: expected a number in \(0, 1\], got 1\.5$/);
    await expect(sd.img2img({ z, c, steps: 0 })).rejects.toThrow(/^img2img steps: expected an integer >= 1, got 0$/);
    expect(() => sd.plan({ steps: 0 })).toThrow(/^Diffusion\.plan steps: expected an integer >= 1, got 0$/);
    // (the folder's pndm would run its last timestep alone at strength·steps < 1, as diffusers does: ddim runs none)
    await expect(sd.img2img({ z, c, steps: 10, strength: 0.05, scheduler: 'ddim' })).rejects.toThrow(/runs no denoising step/);
  });

  it('shows a wrongly typed option with its type, not as if it were a valid number', async () => {
    const as = (v: string) => v as unknown as number;
    await expect(sd.img2img({ z, c, steps: as('10') })).rejects.toThrow(/^img2img steps: expected an integer >= 1, got string "10"$/);
    await expect(sd.img2img({ z, c, strength: as('0.5') })).rejects.toThrow(/^img2img strength: expected a number in \(0, 1\], got string "0\.5"$/);
    await expect(sd.img2img({ z, c, eta: as('0') })).rejects.toThrow(/^img2img eta: expected a finite number >= 0, got string "0"$/);
    await expect(sd.img2img({ z, c, guidance: as('7') })).rejects.toThrow(/^img2img guidance: expected a number from 0 to 100, got string "7"$/);
    await expect(sd.img2img({ z, c, batchSize: as('2') })).rejects.toThrow(/^img2img batchSize: expected an integer in 1\.\.2147483647, got string "2"$/);
    await expect(sd.img2img({ z, c, batchSize: 2 ** 40 })).rejects.toThrow(/^img2img batchSize: expected an integer in 1\.\.2147483647, got 1099511627776$/);
    // (review s35-r6: a raw TypeError naming the engine's sdDecode)
    await expect(sd.decode(z, { chunk: as('2') })).rejects.toThrow(/^decode chunk: expected an integer in 1\.\.2147483647, got string "2"$/);
    await expect(sd.decode(z, { chunk: 1.5 })).rejects.toThrow(InvalidArgumentError);
    await expect(sd.img2img({ z, c, seeds: as('3') })).rejects.toThrow(/^img2img seeds: expected an integer from 0 to 9007199254740991, got string "3"$/);
    await expect(sd.img2img({ z, c, timestepSpacing: 5 as never })).rejects.toThrow(/^img2img timestepSpacing: expected one of leading, trailing, linspace, got 5$/);
  });

  it('refuses an explicit null as any other wrong value: only a missing option takes its default', async () => {
    const nul = null as unknown as number;
    const cases: [Partial<Img2ImgOptions>, string][] = [
      [{ steps: nul }, 'img2img steps: expected an integer >= 1, got null'],
      [{ strength: nul }, 'img2img strength: expected a number in (0, 1], got null'],
      [{ eta: nul }, 'img2img eta: expected a finite number >= 0, got null'],
      [{ guidance: nul }, 'img2img guidance: expected a number from 0 to 100, got null'],
      [{ batchSize: nul }, 'img2img batchSize: expected an integer in 1..2147483647, got null'],
      [{ seeds: nul }, 'img2img seeds: expected an integer from 0 to 9007199254740991, got null'],
      [{ seeds: [1, nul, 3] }, 'img2img seeds[1]: expected an integer from 0 to 9007199254740991, got null'],
      [{ firstImageIndex: nul }, `img2img firstImageIndex: expected an integer in 0..${Number.MAX_SAFE_INTEGER - 3}, got null`],
      [{ img2imgRule: null as never }, 'img2img img2imgRule: expected one of diffusers, compvis, got null'],
    ];
    for (const [bad, message] of cases) {
      await expect(sd.img2img({ z, c, ...bad }), message).rejects.toThrow(new InvalidArgumentError(message));
    }
    expect(() => sd.plan({ steps: nul })).toThrow(new InvalidArgumentError('Diffusion.plan steps: expected an integer >= 1, got null'));
    await expect(sd.encodeImages(patternImages(1, 16, 16), { mode: 'sample', seeds: nul })).rejects.toThrow(
      new InvalidArgumentError('encodeImages seeds: expected an integer from 0 to 9007199254740991, got null'),
    );
  });

  it('names the option when eta or the compvis rule meets a scheduler without them', async () => {
    await expect(sd.img2img({ z, c, scheduler: 'euler', eta: 0.3 })).rejects.toThrow(/^img2img eta: eta > 0 is defined for the ddim scheduler only, not euler \(img2img scheduler\)$/);
    await expect(sd.img2img({ z, c, scheduler: 'euler', img2imgRule: 'compvis' })).rejects.toThrow(
      /^img2img img2imgRule: the compvis img2img rule is defined for the ddim scheduler only, not euler \(img2img scheduler\)$/,
    );
    expect(() => sd.plan({ scheduler: 'ddim', img2imgRule: 'compvis', strength: 1, steps: 10 })).toThrow(
      /^Diffusion\.plan img2imgRule: the compvis img2img rule needs strength·steps < steps .*; got Diffusion\.plan strength 1 with Diffusion\.plan steps 10$/,
    );
    expect(sd.plan({ scheduler: 'ddim', img2imgRule: 'compvis', strength: 0.8, steps: 10, eta: 0.3 }).eta).toBe(0.3);
  });

  it('keys each image\'s noise by an integer firstImageIndex, refusing others (each index its own noise)', async () => {
    const run = (firstImageIndex: number, zz = z, cc = c) => sd.img2img({ z: zz, c: cc, steps: 5, strength: 1, seeds: 3, firstImageIndex });
    // images 1 and 2 run on their own from index 1 are images 1 and 2 of the run from index 0
    const whole = await run(0);
    const n = z.data.length / 3, m = c.data.length / 3;
    const tail = await run(1, { data: z.data.slice(n), shape: [2, ...z.shape.slice(1)] }, { data: c.data.slice(m), shape: [2, ...c.shape.slice(1)] });
    expect(tail.latents.data).toEqual(whole.latents.data.subarray(tail.latents.data.length / 2));
    expect((await run(1)).latents.data).not.toEqual(whole.latents.data);
    for (const bad of [0.5, 1.5, -1, NaN, Infinity, 2 ** 64]) {
      await expect(run(bad), String(bad)).rejects.toThrow(InvalidArgumentError);
      await expect(run(bad), String(bad)).rejects.toThrow(new RegExp(`^img2img firstImageIndex: expected an integer in 0\\.\\.${Number.MAX_SAFE_INTEGER - 3}, got ${String(bad).replace('+', '\\+')}$`));
    }
  });

  it('refuses a scalingFactor that is not a finite number > 0, at load', async () => {
    for (const bad of [NaN, 0, -0.18, Infinity, '0.18' as unknown as number]) {
      await expect(Diffusion.load(join(root, 'optimum-1.24'), { scalingFactor: bad }), String(bad)).rejects.toThrow(
        /^Diffusion\.load: scalingFactor must be a finite number > 0, got /,
      );
    }
  });

  it('checks schedule overrides at load, naming the option and its key, not the folder\'s scheduler_config.json', async () => {
    const dir = join(root, 'optimum-1.24');
    await expect(Diffusion.load(dir, { schedule: { numTrainTimesteps: -5 } })).rejects.toThrow(
      /^Diffusion\.load schedule: numTrainTimesteps must be in \[2, 100000\], got -5$/,
    );
    await expect(Diffusion.load(dir, { schedule: { timestepSpacing: 'sideways' as 'leading' } })).rejects.toThrow(InvalidArgumentError);
    await expect(Diffusion.load(dir, { schedule: { nTimesteps: 10 } as never })).rejects.toThrow(/^Diffusion\.load schedule: unknown key 'nTimesteps' \(did you mean 'numTrainTimesteps'\?\); known: numTrainTimesteps, /);
    // a loaded pipeline's schedule (with the source it names) as the overrides of another load
    const ok = await Diffusion.load(dir, { schedule: { ...sd.schedule, timestepSpacing: 'trailing' } });
    try {
      expect(ok.schedule.timestepSpacing).toBe('trailing');
      expect(ok.schedule.source).toMatch(/with Diffusion\.load's schedule overrides$/);
    } finally {
      ok.dispose();
    }
  });

  it('refuses a signal that is not an AbortSignal, naming the call', async () => {
    await expect(sd.img2img({ z, c, signal: {} as AbortSignal })).rejects.toThrow(/signal: expected an AbortSignal, got an object$/);
    await expect(sd.img2img({ z, c, signal: 5 as unknown as AbortSignal })).rejects.toThrow(InvalidArgumentError);
    await expect(sd.decode(z, { signal: 'stop' as unknown as AbortSignal })).rejects.toThrow(/signal: expected an AbortSignal, got string "stop"$/);
  });

  it('refuses an onStep that is not a function, naming it (not the engine\'s TypeError)', async () => {
    const bad = sd.img2img({ z, c, steps: 2, onStep: 5 as never });
    await expect(bad).rejects.toThrow(InvalidArgumentError);
    await expect(sd.img2img({ z, c, steps: 2, onStep: 5 as never })).rejects.toThrow(/^img2img onStep: expected a function, got 5$/);
    await expect(sd.img2img({ z, c, steps: 2, onStep: 'log' as never })).rejects.toMatchObject({ code: 'InvalidArgument' });
  });

  it('names what is missing in a model folder, and what was found', async () => {
    const dir = join(root, 'broken-missing');
    await rm(dir, { recursive: true, force: true });
    await mkdir(join(dir, 'text_encoder'), { recursive: true });
    await mkdir(join(dir, 'tokenizer'), { recursive: true });
    await copyFile(join(root, 'optimum-1.24', 'tokenizer', 'vocab.json'), join(dir, 'tokenizer', 'vocab.json'));
    await copyFile(join(root, 'optimum-1.24', 'tokenizer', 'merges.txt'), join(dir, 'tokenizer', 'merges.txt'));
    await copyFile(join(root, 'optimum-1.24', 'text_encoder', 'model.onnx'), join(dir, 'text_encoder', 'model.onnx'));
    await expect(Diffusion.load(dir)).rejects.toThrow(/has no unet\/model\.onnx.*found: .*text_encoder\/model\.onnx/);
    await expect(Diffusion.load(join(root, 'no-such-folder'), { components: ['unet'] })).rejects.toThrow(/does not exist/);
  });

  it('reports a corrupt .onnx clearly, without crashing', async () => {
    const dir = join(root, 'broken-corrupt');
    await rm(dir, { recursive: true, force: true });
    await mkdir(join(dir, 'unet'), { recursive: true });
    await writeFile(join(dir, 'unet', 'model.onnx'), Buffer.from('this is not a protobuf'));
    await expect(Diffusion.load(dir, { components: ['unet'] })).rejects.toThrow(/unet\/model\.onnx/);
  });

  it('reports a model whose signature does not match, listing what it found', async () => {
    const dir = join(root, 'broken-swapped');
    await rm(dir, { recursive: true, force: true });
    await mkdir(join(dir, 'unet'), { recursive: true });
    await copyFile(join(root, 'optimum-1.24', 'vae_decoder', 'model.onnx'), join(dir, 'unet', 'model.onnx'));
    await expect(Diffusion.load(dir, { components: ['unet'] })).rejects.toThrow(
      /does not match the SD 1\.x ONNX layout: unet\/model\.onnx .*Found inputs: latent_sample float32/,
    );
  });

  it('rejects unknown schedulers and a disposed pipeline', async () => {
    // @ts-expect-error: not a scheduler name
    expect(() => sd.plan({ scheduler: 'plms' })).toThrow(/unknown scheduler 'plms'/);
    const other = await Diffusion.load(join(root, 'optimum-1.24'), { components: ['unet'] });
    other.dispose();
    await expect(other.img2img({ z, c })).rejects.toThrow(/disposed/);
  });
});
