/**
 * The bounds of img2img's options, checked before anything runs and named as the API names them: guidance from 0 to
 * MAX_GUIDANCE (0–1 all run c alone), seeds up to 2⁵³ − 1, karras a boolean, DDIM's eta up to the schedule's maxEta,
 * and no unknown option key on any of the sd module's option objects. The plan's ᾱ is one value per call.
 */
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { InvalidArgumentError } from '../../ts/errors.js';
import { Diffusion, type Img2ImgOptions } from '../../ts/sd/Diffusion.js';
import { OnnxModel } from '../../ts/sd/OnnxModel.js';
import { MAX_GUIDANCE } from '../../ts/sd/optionBounds.js';
import type { Tensor } from '../../ts/sd/tensor.js';
import { disposeTinySd, loadTinySd, patternImages, type TinySd } from './fixtures.js';

let tiny: TinySd | undefined;
let sd: Diffusion;
let z: Tensor;
let c: Tensor;
beforeAll(async () => {
  tiny = await loadTinySd();
  ({ sd } = tiny);
  // one image: the checks, not the batch, are under test
  z = { data: tiny.z.data.slice(0, tiny.z.data.length / 3), shape: [1, ...tiny.z.shape.slice(1)] };
  c = { data: tiny.c.data.slice(0, tiny.c.data.length / 3), shape: [1, ...tiny.c.shape.slice(1)] };
});
afterAll(() => disposeTinySd(tiny));

const refused = async (o: Partial<Img2ImgOptions>, message: RegExp) => {
  const p = sd.img2img({ z, c, steps: 4, ...o });
  await expect(p).rejects.toThrow(InvalidArgumentError);
  await expect(p).rejects.toThrow(message);
};

describe('guidance', () => {
  it('is refused above MAX_GUIDANCE and below 0, with one message', async () => {
    expect(MAX_GUIDANCE).toBe(100);
    await refused({ guidance: 1e30 }, /^img2img guidance: expected a number from 0 to 100, got 1e\+30$/);
    await refused({ guidance: -5 }, /^img2img guidance: expected a number from 0 to 100, got -5$/);
    await refused({ guidance: NaN }, /^img2img guidance: expected a number from 0 to 100, got NaN$/);
    await refused({ guidance: '7' as unknown as number }, /^img2img guidance: expected a number from 0 to 100, got string "7"$/);
    expect((await sd.img2img({ z, c, steps: 4, guidance: MAX_GUIDANCE, uncond: tiny!.uncond })).latents.data.every(Number.isFinite)).toBe(true);
  });

  it('runs c alone at every value from 0 to 1 (no guidance, as diffusers): the same latents', async () => {
    const run = async (guidance: number) => (await sd.img2img({ z, c, steps: 4, seeds: 7, guidance })).latents.data;
    const one = await run(1);
    expect(await run(0)).toEqual(one);
    expect(await run(0.5)).toEqual(one);
    expect(await run(1.5)).not.toEqual(one);
  });
});

describe('seeds', () => {
  it('are integers from 0 to 2^53 - 1, the bound in the message', async () => {
    await refused({ seeds: 2 ** 53 }, /^img2img seeds: expected an integer from 0 to 9007199254740991, got 9007199254740992$/);
    await refused({ seeds: -1 }, /^img2img seeds: expected an integer from 0 to 9007199254740991, got -1$/);
    await refused({ seeds: '3' as unknown as number }, /^img2img seeds: expected an integer from 0 to 9007199254740991, got string "3"$/);
    await expect(sd.encodeImages(patternImages(2, 16, 16), { mode: 'sample', seeds: [1, 2 ** 53] })).rejects.toThrow(
      /^encodeImages seeds\[1\]: expected an integer from 0 to 9007199254740991, got 9007199254740992$/,
    );
    expect((await sd.img2img({ z, c, steps: 4, guidance: 1, seeds: Number.MAX_SAFE_INTEGER })).latents.data.every(Number.isFinite)).toBe(true);
  });
});

describe('karras', () => {
  it('must be a boolean, named as the option (not the engine\'s useKarrasSigmas)', async () => {
    await refused({ scheduler: 'euler', karras: 'yes' as unknown as boolean }, /^img2img karras: expected true or false, got 'yes'$/);
    expect(() => sd.plan({ scheduler: 'euler', karras: 1 as unknown as boolean })).toThrow(/^Diffusion\.plan karras: expected true or false, got 1$/);
    expect(sd.plan({ scheduler: 'euler', karras: true }).karras).toBe(true);
  });
});

describe('eta', () => {
  it('is refused above the schedule\'s maxEta before anything runs, naming the option and the bound', async () => {
    const { maxEta } = sd.plan({ scheduler: 'ddim', steps: 10 });
    expect(maxEta).toBeGreaterThan(1);
    expect(maxEta).toBeLessThan(1.1);
    expect(sd.plan({ scheduler: 'euler', steps: 10 }).maxEta).toBe(0);
    // at the bound the plan is made; above it, refused with the bound rounded down to 6 digits
    expect(sd.plan({ scheduler: 'ddim', steps: 10, eta: maxEta }).eta).toBe(maxEta);
    const shown = Math.floor(maxEta * 1e5) / 1e5;
    expect(() => sd.plan({ scheduler: 'ddim', steps: 10, eta: 1e9 })).toThrow(
      new RegExp(`^Diffusion\\.plan eta 1000000000 is too large for this schedule: DDIM's noise eta·σ_t must stay within 1 − ᾱ_prev at every step, which holds up to eta ${String(shown).replace('.', '\\.')} here \\(10 steps, strength 0\\.8\\)`),
    );
    await refused({ scheduler: 'ddim', eta: maxEta * 1.01 }, /^img2img eta \S+ is too large for this schedule/);
  });
});

describe('unknown option keys', () => {
  it('are refused on img2img and plan, with the key meant when one holds the name', async () => {
    await refused({ scheduler: 'euler', spacing: 'foo' } as never, /^img2img: unknown option 'spacing' \(did you mean 'timestepSpacing'\?\); known: z, c, uncond, .*, signal$/);
    await refused({ scheduler: 'ddim', rule: 'compvis' } as never, /^img2img: unknown option 'rule' \(did you mean 'img2imgRule'\?\)/);
    await refused({ seed: 3 } as never, /^img2img: unknown option 'seed' \(did you mean 'seeds'\?\)/);
    expect(() => sd.plan({ spacing: 'trailing' } as never)).toThrow(/^Diffusion\.plan: unknown option 'spacing' \(did you mean 'timestepSpacing'\?\)/);
    // plan takes img2img's own options (the same object can be planned, then run)
    expect(sd.plan({ z, c, guidance: 5, seeds: 1, scheduler: 'ddim', steps: 10 }).runs).toHaveLength(8);
  });

  it('are refused on Diffusion.load (and its schedule overrides), OnnxModel.load, encodeImages and decode', async () => {
    const dir = join(tiny!.root, 'optimum-1.24');
    await expect(Diffusion.load(dir, { schedular: 'ddim' } as never)).rejects.toThrow(/^Diffusion\.load: unknown option 'schedular' \(did you mean 'scheduler'\?\); known: maxRowsPerRun, /);
    await expect(Diffusion.load(dir, { threads: 2 } as never)).rejects.toThrow(/^Diffusion\.load: unknown option 'threads'/);
    await expect(Diffusion.load(dir, { schedule: { timestep_spacing: 'trailing' } as never })).rejects.toThrow(
      /^Diffusion\.load schedule: unknown key 'timestep_spacing' \(did you mean 'timestepSpacing'\?\); known: numTrainTimesteps, .*, source$/,
    );
    await expect(OnnxModel.load(join(dir, 'unet', 'model.onnx'), { intraOpThread: 1 } as never)).rejects.toThrow(
      /^OnnxModel\.load: unknown option 'intraOpThread' \(did you mean 'intraOpThreads'\?\)/,
    );
    await expect(sd.encodeImages(patternImages(1, 16, 16), { seed: 1 } as never)).rejects.toThrow(/^encodeImages: unknown option 'seed' \(did you mean 'seeds'\?\); known: mode, seeds, imageIndices, chunk, signal$/);
    await expect(sd.decode(z, { chunks: 2 } as never)).rejects.toThrow(/^decode: unknown option 'chunks' \(did you mean 'chunk'\?\); known: chunk, signal$/);
    // options put among the images were dropped without a word (an abort then did nothing)
    const signal = new AbortController().signal;
    await expect(sd.encodeImages({ ...patternImages(1, 16, 16), chunk: 48, signal } as never)).rejects.toThrow(
      /^encodeImages images: 'chunk', 'signal' are options: pass them in the second argument, encodeImages\(images, \{ chunk, signal \}\)$/,
    );
  });
});

describe('Diffusion.load session options', () => {
  it('refuses a wrongly typed switch, provider or device as InvalidArgumentError naming the option', async () => {
    const dir = join(tiny!.root, 'optimum-1.24');
    const cases: [object, RegExp][] = [
      [{ spinning: 'yes' }, /^Diffusion\.load spinning: expected true or false, got string "yes"$/],
      [{ memoryArena: 1 }, /^Diffusion\.load memoryArena: expected true or false, got 1$/],
      [{ provider: 5 }, /^Diffusion\.load provider: expected a non-empty string, got 5$/],
      [{ deviceId: -1 }, /^Diffusion\.load deviceId: expected an integer >= 0 \(the CUDA device's ordinal\), got -1$/],
      [{ components: 'unet' }, /^Diffusion\.load: components must be an array of component names/],
    ];
    for (const [o, message] of cases) {
      const p = Diffusion.load(dir, o as never);
      await expect(p, JSON.stringify(o)).rejects.toThrow(InvalidArgumentError);
      await expect(p, JSON.stringify(o)).rejects.toThrow(message);
    }
  });
});

describe('the plan\'s ᾱ', () => {
  it('is one value per call: a σ-based scheduler\'s is 1/(1+σ²) of the float32 σ it runs, for the noise and the first call alike', () => {
    for (const scheduler of ['euler', 'lms', 'dpmpp2m'] as const) {
      const p = sd.plan({ scheduler, steps: 3, strength: 1 });
      expect(p.noiseAlphaCumprod, scheduler).toBe(p.runs[0].alphaCumprod);
      for (const r of p.runs) expect(r.alphaCumprod, scheduler).toBe(1 / (1 + r.sigma * r.sigma));
      expect(Math.fround(p.runs[0].sigma)).toBe(p.runs[0].sigma);
    }
    // the ᾱ-indexed ones report the table's ᾱ, and σ from it
    const ddim = sd.plan({ scheduler: 'ddim', steps: 3, strength: 1 });
    expect(ddim.noiseAlphaCumprod).toBe(ddim.runs[0].alphaCumprod);
  });
});
