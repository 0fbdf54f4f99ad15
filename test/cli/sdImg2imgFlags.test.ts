/**
 * `sd img2img` checks every flag and input file before it loads the model (SD 1.x takes seconds to a minute to
 * load): each refusal names the flag (or the file) and what was expected. The model folder below has a corrupt
 * U-Net, so an error that waited for the load would be "cannot load …unet/model.onnx" instead. Ctrl-C (SIGINT)
 * cancels a run at its next step and leaves no output file. `sd schedule` shares the checks.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { registerSdCommand } from '../../ts/cli/commands/sd.js';
import { InvalidArgumentError, MissingFileError, ShapeError } from '../../ts/errors.js';
import { writeNpy } from '../../ts/io/npy.js';
import { resolveFixtureOptions, writeSdFixture } from '../../ts/sd/fixture.js';
import { onnx } from '../helpers/onnx.js';
import { writePng } from '../../ts/sd/png.js';
import { distModule } from '../helpers/dist.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-sd-flags-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const f = (name: string) => join(tmp, name);

async function run(...args: string[]): Promise<Error | undefined> {
  const program = new Command().exitOverride();
  registerSdCommand(program);
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    await program.parseAsync(['node', 'brainlatent', ...args]);
    return undefined;
  } catch (e) {
    return e as Error;
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

const rgb = (w: number, h: number) => ({ data: new Uint8Array(w * h * 3).map((_, i) => (i * 37) % 256), count: 1, width: w, height: h });

beforeAll(async () => {
  await writeSdFixture(f('good'));
  await writeSdFixture(f('corrupt'));
  writeFileSync(f('corrupt/unet/model.onnx'), 'not an ONNX file');
  await writePng(f('in64.png'), rgb(64, 64));
  await writePng(f('in60.png'), rgb(60, 64));
  // 10 steps at strength 0.8 with DDIM (eta > 0: its steps draw noise): 8 U-Net calls, so 3 slices are wrong
  await writeNpy(f('step-noise-3.npy'), new Float32Array(3 * 4 * 8 * 8), [3, 1, 4, 8, 8]);
  await writeNpy(f('z1.npy'), new Float32Array(4 * 8 * 8), [1, 4, 8, 8]);
  await writeNpy(f('z3ch.npy'), new Float32Array(3 * 8 * 8), [1, 3, 8, 8]);
  await writeNpy(f('noise2.npy'), new Float32Array(2 * 4 * 8 * 8), [2, 4, 8, 8]);
  await writeNpy(f('c768.npy'), new Float32Array(77 * 768), [1, 77, 768]);
  await writeNpy(f('c3.npy'), new Float32Array(3 * 77 * 32), [3, 77, 32]);
});

describe('sd img2img: flags and inputs are refused before the model loads', () => {
  const base = ['sd', 'img2img', '--model', f('corrupt'), '--image', f('in64.png'), '--prompt', 'a cat', '--out', f('out.png')];

  it('names the flag and what was expected', async () => {
    const cases: [string[], string][] = [
      [['--scheduler', 'plms'], "--scheduler: unknown scheduler 'plms', expected one of ddim, pndm,"],
      [['--steps', '0'], '--steps: expected an integer >= 1, got 0'],
      [['--steps', '2.5'], '--steps: expected an integer >= 1, got 2.5'],
      [['--strength', '1.5'], '--strength: expected a number in (0, 1], got 1.5'],
      [['--strength', '0'], '--strength: expected a number in (0, 1], got 0'],
      [['--eta', '-1'], '--eta: expected a finite number >= 0, got -1'],
      [['--spacing', 'uniform'], "--spacing: expected one of leading, trailing, linspace, got 'uniform'"],
      [['--rule', 'a1111'], "--rule: expected one of diffusers, compvis, got 'a1111'"],
      [['--scheduler', 'ddim', '--karras'], '--karras: Karras sigmas are defined for euler, heun, lms, dpmpp2m, dpmpp2m-sde, unipc, not ddim'],
      [['--seed', '-1'], '--seed: expected an integer from 0 to 9007199254740991, got -1'],
      // (above 2^53 - 1 a number no longer holds the seed exactly: the bound is in the message)
      [['--seed', '9007199254740993'], '--seed: expected an integer from 0 to 9007199254740991, got 9007199254740993'],
      // the API's guidance bounds, in its words: a negative one would run as 1, a huge one overflow at the run's end
      [['--guidance', '1e30'], '--guidance: expected a number from 0 to 100, got 1e30'],
      [['--guidance', '-1'], '--guidance: expected a number from 0 to 100, got -1'],
      [['--scheduler', 'ddim', '--eta', '1e9'], "--eta 1000000000 is too large for this schedule: DDIM's noise eta·σ_t must stay within 1 − ᾱ_prev at every step, which holds up to eta 1.0"],
      [['--batch-size', '0'], '--batch-size: expected an integer >= 1, got 0'],
      [['--threads', '-2'], '--threads: expected an integer from 0 to 1024, got -2'],
      [['--threads', '99999999'], '--threads: expected an integer from 0 to 1024, got 99999999'],
      [['--scheduler', 'pndm', '--steps', '1000'], "--steps 1000 is too many for this model's schedule"],
      [['--scheduler', 'euler', '--eta', '0.3'], '--eta: eta > 0 is defined for the ddim scheduler only, not euler (--scheduler)'],
      [['--scheduler', 'euler', '--rule', 'compvis'], '--rule: the compvis img2img rule is defined for the ddim scheduler only, not euler (--scheduler)'],
      [['--scheduler', 'ddim', '--rule', 'compvis', '--strength', '1'], '--rule: the compvis img2img rule needs strength·steps < steps'],
      // accepted and then ignored before: the CPU provider takes no options; guidance 1 runs no unconditional side
      [['--provider-option', 'use_tf32=0'], '--provider-option: for an execution provider such as --provider cuda; --provider cpu takes none'],
      [['--provider', 'cpu', '--provider-lib', '/x/libonnxruntime_providers_cuda.so', '--provider-option', 'use_tf32=0'], '--provider-lib and --provider-option: for an execution provider such as --provider cuda'],
      [['--negative-prompt', 'blurry', '--guidance', '1'], '--negative-prompt has no effect with --guidance 1: classifier-free guidance, whose unconditional side it is, runs only when guidance > 1'],
      [['--negative-prompt', 'blurry', '--guidance', '0.5'], '--negative-prompt has no effect with --guidance 0.5'],
      // (a deterministic scheduler ignored it: byte-identical output)
      [['--scheduler', 'euler', '--step-noise', f('step-noise-3.npy')], `--step-noise ${f('step-noise-3.npy')}: no U-Net call of this run draws noise (euler, 50 steps, strength 0.8), so the step noise would be ignored`],
      [['--scheduler', 'ddim', '--step-noise', f('step-noise-3.npy')], `--step-noise ${f('step-noise-3.npy')}: no U-Net call of this run draws noise (ddim with eta 0, 50 steps, strength 0.8), so the step noise would be ignored and the result would be the same as without it; step noise is for the schedulers whose steps draw noise: ddim with eta > 0, ddpm, euler-ancestral and dpmpp2m-sde`],
    ];
    for (const [flags, message] of cases) {
      const e = await run(...base, ...flags);
      expect(e, flags.join(' ')).toBeInstanceOf(InvalidArgumentError);
      expect(e?.message, flags.join(' ')).toContain(message);
    }
    // the same flags, valid: the load is reached (and fails on the corrupt U-Net)
    expect((await run(...base, '--steps', '10'))?.message).toContain(`cannot load ${f('corrupt/unet/model.onnx')}`);
    expect((await run(...base, '--negative-prompt', 'blurry', '--guidance', '1.5'))?.message).toContain(`cannot load ${f('corrupt/unet/model.onnx')}`);
    // sd info takes the provider flags too
    const info = await run('sd', 'info', '--model', f('good'), '--provider-option', 'use_tf32=0');
    expect(info).toBeInstanceOf(InvalidArgumentError);
    expect(info?.message).toBe('--provider-option: for an execution provider such as --provider cuda; --provider cpu takes none');
  });

  it('names every input and output it lacks at once (one a run: three runs to learn them)', async () => {
    const all = await run('sd', 'img2img', '--model', f('corrupt'));
    expect(all?.name).toBe('PreflightError');
    expect(all?.message).toBe(
      'cannot start sd img2img:\n  - give exactly one of --image or --latents\n  - give exactly one of --prompt or --cond\n  - give --out and/or --latents-out',
    );
    // one alone is its own error
    const one = await run('sd', 'img2img', '--model', f('corrupt'), '--image', f('in64.png'), '--prompt', 'a cat');
    expect(one).toBeInstanceOf(InvalidArgumentError);
    expect(one?.message).toBe('give --out and/or --latents-out');
  });

  it('checks the image, the step noise and the model folder first', async () => {
    const img = await run(...base.map((a) => (a === f('in64.png') ? f('in60.png') : a)));
    expect(img).toBeInstanceOf(ShapeError);
    expect(img?.message).toBe(`--image ${f('in60.png')}: the image is 60×64; expected both sides to be multiples of 8 (the VAE's downsampling)`);
    const noise = await run(...base, '--scheduler', 'ddim', '--eta', '0.5', '--steps', '10', '--step-noise', f('step-noise-3.npy'));
    expect(noise).toBeInstanceOf(ShapeError);
    expect(noise?.message).toContain(`--step-noise ${f('step-noise-3.npy')}: has 3 slices ([3, 1, 4, 8, 8]); expected one per U-Net call that runs: 8 (ddim, 10 steps, strength 0.8)`);
    // the image's size gives z's shape ([1, C, 8, 8]): the noise files and c's rows are checked against it
    const imageNoise = await run(...base, '--noise', f('noise2.npy'));
    expect(imageNoise).toBeInstanceOf(ShapeError);
    expect(imageNoise?.message).toBe(
      `--noise ${f('noise2.npy')}: has shape [2, 4, 8, 8]; expected [1, C, 8, 8]: the latents of --image ${f('in64.png')} (64×64 pixels; C the model's latent channels, 4 for SD 1.x)`,
    );
    await writeNpy(f('step-noise-8x2.npy'), new Float32Array(8 * 2 * 4 * 8 * 8), [8, 2, 4, 8, 8]);
    const imageSteps = await run(...base, '--scheduler', 'ddim', '--eta', '0.5', '--steps', '10', '--step-noise', f('step-noise-8x2.npy'));
    expect(imageSteps?.message).toBe(
      `--step-noise ${f('step-noise-8x2.npy')}: has shape [8, 2, 4, 8, 8]; expected [8, 1, C, 8, 8]: the latents of --image ${f('in64.png')} (64×64 pixels; C the model's latent channels, 4 for SD 1.x)`,
    );
    const imageCond = await run(...base.filter((a) => a !== '--prompt' && a !== 'a cat'), '--cond', f('c3.npy'));
    expect(imageCond?.message).toBe(`--cond ${f('c3.npy')}: has 3 rows ([3, 77, 32]); expected 1 or one per image of --image (1)`);
    // the channels only the model can tell: after the load, before the image is encoded
    await writeNpy(f('noise3ch.npy'), new Float32Array(3 * 8 * 8), [1, 3, 8, 8]);
    const channels = await run(...base.map((a) => (a === f('corrupt') ? f('good') : a)), '--noise', f('noise3ch.npy'));
    expect(channels?.message).toBe(`--noise ${f('noise3ch.npy')}: has 3 channels ([1, 3, 8, 8]); the U-Net of ${f('good')} expects 4`);
    const file = await run('sd', 'img2img', '--model', f('in64.png'), '--image', f('in64.png'), '--prompt', 'a cat', '--out', f('out.png'));
    expect(file?.message).toBe(`--model ${f('in64.png')}: is a file; expected an SD 1.x ONNX model folder`);
    const none = await run('sd', 'img2img', '--model', f('nothing'), '--image', f('in64.png'), '--prompt', 'a cat', '--out', f('out.png'));
    expect(none).toBeInstanceOf(MissingFileError);
    expect(none?.message).toContain(`--model ${f('nothing')}: no such folder`);
    expect(readdirSync(tmp).filter((n) => n.startsWith('out'))).toEqual([]);
  });
});

describe('sd img2img: .npy inputs that do not fit name the flag and the file', () => {
  const base = ['sd', 'img2img', '--steps', '4', '--out', f('out.png')];
  it('before the load (shapes against each other) and after it (against the model)', async () => {
    const noise = await run(...base, '--model', f('corrupt'), '--latents', f('z1.npy'), '--prompt', 'a cat', '--noise', f('noise2.npy'));
    expect(noise?.message).toBe(`--noise ${f('noise2.npy')}: has shape [2, 4, 8, 8]; expected --latents' shape [1, 4, 8, 8]`);
    const rows = await run(...base, '--model', f('corrupt'), '--latents', f('z1.npy'), '--cond', f('c3.npy'));
    expect(rows?.message).toBe(`--cond ${f('c3.npy')}: has 3 rows ([3, 77, 32]); expected 1 or one per image of --latents (1)`);
    const width = await run(...base, '--model', f('good'), '--latents', f('z1.npy'), '--cond', f('c768.npy'));
    expect(width).toBeInstanceOf(ShapeError);
    expect(width?.message).toBe(`--cond ${f('c768.npy')}: has width 768 ([1, 77, 768]); the U-Net of ${f('good')} expects encoder_hidden_states of width 32`);
    const channels = await run(...base, '--model', f('good'), '--latents', f('z3ch.npy'), '--prompt', 'a cat');
    expect(channels?.message).toBe(`--latents ${f('z3ch.npy')}: has 3 channels ([1, 3, 8, 8]); the U-Net of ${f('good')} expects 4`);
    expect(readdirSync(tmp).filter((n) => n.startsWith('out'))).toEqual([]);
  });
});

describe("sd img2img: the U-Net's declared sizes, read from its file before the model loads", () => {
  // the demo world's U-Net takes 16×16 latents only; its VAE encoder here is corrupt, so a check that waited for
  // the load (or for sampling, where the engine said "latents have shape [B,4,8,8] but … expects sample … [batch_size, 4, 16, 16]") fails otherwise
  const fixed = f('fixed16');
  beforeAll(async () => {
    await writeSdFixture(fixed);
    const path = join(fixed, 'unet', 'model.onnx');
    const m = onnx.ModelProto.decode(readFileSync(path));
    for (const io of [m.graph!.input!.find((i) => i.name === 'sample')!, m.graph!.output![0]]) {
      const dims = io.type!.tensorType!.shape!.dim!;
      dims[2] = { dimValue: 16 };
      dims[3] = { dimValue: 16 };
    }
    writeFileSync(path, onnx.ModelProto.encode(m).finish());
    cpSync(fixed, f('fixed16-corrupt'), { recursive: true });
    writeFileSync(f('fixed16-corrupt/vae_encoder/model.onnx'), 'not an ONNX file');
    await writePng(f('in128.png'), rgb(128, 128));
    await writeNpy(f('c-flat.npy'), new Float32Array(2 * 77 * 32), [2, 77 * 32]);
    await writeNpy(f('c-flat1.npy'), new Float32Array(77 * 32), [1, 77 * 32]);
    await writeNpy(f('c-wide.npy'), new Float32Array(2 * 100), [2, 100]);
  });
  const base = ['sd', 'img2img', '--steps', '4', '--out', f('fixed-out.png')];
  const unet = (dir: string) => join(dir, 'unet', 'model.onnx');

  it('an --image of another latent size than a fixed U-Net takes names --image and the image size it needs', async () => {
    const e = await run(...base, '--model', f('fixed16-corrupt'), '--image', f('in64.png'), '--prompt', 'a cat');
    expect(e).toBeInstanceOf(ShapeError);
    expect(e?.message).toBe(
      `--image ${f('in64.png')}: the image is 64×64 pixels, which gives 8×8 latents, but ${unet(f('fixed16-corrupt'))} takes sample [batch_size, 4, 16, 16]: latents of 16×16 only; expected an image of 128×128 pixels (resize it to that)`,
    );
    const z = await run(...base, '--model', f('fixed16-corrupt'), '--latents', f('z1.npy'), '--prompt', 'a cat');
    expect(z).toBeInstanceOf(ShapeError);
    expect(z?.message).toBe(
      `--latents ${f('z1.npy')}: has latents of 8×8 ([1, 4, 8, 8]), but ${unet(f('fixed16-corrupt'))} takes sample [batch_size, 4, 16, 16]: latents of 16×16 only (those of 128×128-pixel images)`,
    );
    // the size it takes passes the check (and runs, on the intact folder)
    expect((await run(...base, '--model', f('fixed16-corrupt'), '--image', f('in128.png'), '--prompt', 'a cat'))?.message).toContain(`cannot load ${f('fixed16-corrupt/vae_encoder/model.onnx')}`);
    expect(await run(...base, '--model', fixed, '--image', f('in128.png'), '--prompt', 'a cat', '--guidance', '1')).toBeUndefined();
    // a U-Net that leaves the size open takes any (the tiny fixture at 64 pixels)
    expect(await run(...base, '--model', f('good'), '--image', f('in64.png'), '--prompt', 'a cat', '--guidance', '1')).toBeUndefined();
  });

  it('a --cond that is not [B, 77, D] says so with the model\'s D, and the reshape when its rows are c flattened', async () => {
    const image = ['--model', f('fixed16-corrupt'), '--image', f('in128.png')];
    const flat = await run(...base, ...image, '--cond', f('c-flat.npy'));
    expect(flat).toBeInstanceOf(ShapeError);
    // (it said only "expected rank 3")
    expect(flat?.message).toBe(
      `--cond ${f('c-flat.npy')}: has shape [2, 2464]; expected [B, 77, 32] (B: 1 or one per image; 32: the width of encoder_hidden_states in ${unet(f('fixed16-corrupt'))}): ` +
        `each row's 2464 values are 77 × 32, c flattened per image (as reconstruct's decoded/c.npy stores it): reshape it to [2, 77, 32] (numpy: np.save(out, np.load(in).reshape(2, 77, 32)))`,
    );
    expect((await run(...base, ...image, '--cond', f('c-flat1.npy')))?.message).toContain('reshape it to [1, 77, 32]');
    expect((await run(...base, ...image, '--cond', f('c-wide.npy')))?.message).toBe(
      `--cond ${f('c-wide.npy')}: has shape [2, 100]; expected [B, 77, 32] (B: 1 or one per image; 32: the width of encoder_hidden_states in ${unet(f('fixed16-corrupt'))}); its rows of 100 values are not c flattened either (77 × 32 = 2464 values)`,
    );
    // c's width is known from the file too: refused before the load, as after it
    expect((await run(...base, ...image, '--cond', f('c768.npy')))?.message).toBe(
      `--cond ${f('c768.npy')}: has width 768 ([1, 77, 768]); the U-Net of ${f('fixed16-corrupt')} expects encoder_hidden_states of width 32`,
    );
    expect(readdirSync(tmp).filter((n) => n.startsWith('fixed-out') && n !== 'fixed-out.png')).toEqual([]);
  });
});

// review C #4: a --cond of 76 tokens passed the width check and the library then blamed the uncond it had encoded
// ("img2img: uncond has shape [1, 77, 32], expected [1 or 1, 76, 32] …"), naming neither --cond nor its file
describe("sd img2img --cond: its token count against the model's", () => {
  const base = ['sd', 'img2img', '--steps', '4', '--out', f('tokens-out.png')];
  beforeAll(async () => {
    await writeNpy(f('c76.npy'), new Float32Array(76 * 32), [1, 76, 32]);
    await writeNpy(f('c77.npy'), new Float32Array(77 * 32), [1, 77, 32]);
    // a U-Net that declares 77 tokens: refused before the load (its VAE decoder is corrupt, so a later check fails otherwise)
    await writeSdFixture(f('seq77-corrupt'));
    const path = join(f('seq77-corrupt'), 'unet', 'model.onnx');
    const m = onnx.ModelProto.decode(readFileSync(path));
    m.graph!.input!.find((i) => i.name === 'encoder_hidden_states')!.type!.tensorType!.shape!.dim![1] = { dimValue: 77 };
    writeFileSync(path, onnx.ModelProto.encode(m).finish());
    writeFileSync(f('seq77-corrupt/vae_decoder/model.onnx'), 'not an ONNX file');
    // a tokenizer of 64 tokens: the length comes from the model, not a constant 77
    cpSync(f('good'), f('tok64'), { recursive: true });
    const tc = f('tok64/tokenizer/tokenizer_config.json');
    writeFileSync(tc, JSON.stringify({ ...JSON.parse(readFileSync(tc, 'utf8')), model_max_length: 64 }));
  });

  it("is refused with guidance, naming --cond, its file and the tokenizer's length; without guidance an open U-Net takes it", async () => {
    const e = await run(...base, '--model', f('good'), '--latents', f('z1.npy'), '--cond', f('c76.npy'), '--guidance', '5');
    expect(e).toBeInstanceOf(ShapeError);
    expect(e?.message).toBe(
      `--cond ${f('c76.npy')}: has 76 tokens per row ([1, 76, 32]); expected [B, 77, 32] (B: 1 or one per image): ` +
        `the sequence length of the tokenizer of ${f('good')}, which guidance's unconditional input has (at --guidance 5; up to 1 no unconditional input is made)`,
    );
    const e64 = await run(...base, '--model', f('tok64'), '--latents', f('z1.npy'), '--cond', f('c77.npy'));
    expect(e64?.message).toBe(
      `--cond ${f('c77.npy')}: has 77 tokens per row ([1, 77, 32]); expected [B, 64, 32] (B: 1 or one per image): ` +
        `the sequence length of the tokenizer of ${f('tok64')}, which guidance's unconditional input has (at --guidance 5; up to 1 no unconditional input is made)`,
    );
    expect(readdirSync(tmp).filter((n) => n.startsWith('tokens-out'))).toEqual([]);
    // (at --guidance 1 there is no unconditional input: the fixture's U-Net, whose sequence is open, runs on 76 tokens, as the library's img2img does)
    expect(await run(...base, '--model', f('good'), '--latents', f('z1.npy'), '--cond', f('c76.npy'), '--guidance', '1')).toBeUndefined();
    expect(readdirSync(tmp).filter((n) => n.startsWith('tokens-out'))).toEqual(['tokens-out.png']);
  });

  it('is refused before the load where the U-Net declares its token count', async () => {
    const e = await run(...base, '--model', f('seq77-corrupt'), '--latents', f('z1.npy'), '--cond', f('c76.npy'));
    expect(e).toBeInstanceOf(ShapeError);
    expect(e?.message).toBe(
      `--cond ${f('c76.npy')}: has 76 tokens per row ([1, 76, 32]); expected [B, 77, 32] (B: 1 or one per image; 32: the width of encoder_hidden_states in ` +
        `${join(f('seq77-corrupt'), 'unet', 'model.onnx')}): ${join(f('seq77-corrupt'), 'unet', 'model.onnx')} takes encoder_hidden_states of 77 tokens`,
    );
    // (the right count passes the check and reaches the load, which fails on the corrupt decoder)
    expect((await run(...base, '--model', f('seq77-corrupt'), '--latents', f('z1.npy'), '--cond', f('c77.npy')))?.message).toContain('vae_decoder');
  });
});

describe('a model folder whose scheduler config names a class the engine does not know', () => {
  it('runs with --scheduler (the file\'s other keys still read) and without it names --scheduler', async () => {
    cpSync(f('good'), f('foo-class'), { recursive: true });
    const cfg = f('foo-class/scheduler/scheduler_config.json');
    writeFileSync(cfg, JSON.stringify({ ...JSON.parse(readFileSync(cfg, 'utf8')), _class_name: 'FooScheduler', beta_end: 0.02 }));
    await writeNpy(f('c1.npy'), new Float32Array(77 * 32), [1, 77, 32]);
    const args = ['sd', 'img2img', '--model', f('foo-class'), '--latents', f('z1.npy'), '--cond', f('c1.npy'), '--steps', '4', '--latents-out', f('foo.npy')];
    expect(await run(...args, '--scheduler', 'ddim')).toBeUndefined();
    expect(readdirSync(tmp)).toContain('foo.npy');
    const plan = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const program = new Command().exitOverride();
    registerSdCommand(program);
    await program.parseAsync(['node', 'brainlatent', 'sd', 'schedule', '--model', f('foo-class'), '--scheduler', 'euler', '--steps', '4']);
    const printed = JSON.parse(String(plan.mock.calls[0][0])) as { scheduler: string; schedule: { betaEnd: number } };
    plan.mockRestore();
    expect(printed.scheduler).toBe('euler');
    expect(printed.schedule.betaEnd).toBe(0.02);
    for (const e of [await run(...args), await run('sd', 'schedule', '--model', f('foo-class'))]) {
      expect(e?.message).toContain(`${cfg}: _class_name 'FooScheduler' is not a scheduler the engine knows`);
      expect(e?.message).toContain('choose one with --scheduler');
    }
    // a --scheduler that is no scheduler is the flag's error, not the file's
    expect((await run(...args, '--scheduler', 'plms'))?.message).toContain("--scheduler: unknown scheduler 'plms'");
  });
});

describe('sd img2img --out: one name rule for every image of a batch', () => {
  it('adds .png to a name without an extension, for every image, and refuses another extension before the load', async () => {
    await writeNpy(f('z3.npy'), new Float32Array(3 * 4 * 8 * 8).map((_, i) => Math.sin(i)), [3, 4, 8, 8]);
    await writeNpy(f('c1w.npy'), new Float32Array(77 * 32), [1, 77, 32]);
    mkdirSync(f('outs'));
    const args = ['sd', 'img2img', '--model', f('good'), '--latents', f('z3.npy'), '--cond', f('c1w.npy'), '--steps', '4'];
    expect(await run(...args, '--out', f('outs/result'))).toBeUndefined();
    expect(readdirSync(f('outs')).sort()).toEqual(['result-1.png', 'result-2.png', 'result.png']);
    const jpg = await run(...args.map((a) => (a === f('good') ? f('corrupt') : a)), '--out', f('outs/res.jpg'));
    expect(jpg).toBeInstanceOf(InvalidArgumentError);
    expect(jpg?.message).toBe(`--out ${f('outs/res.jpg')}: img2img writes PNG images; expected a .png name (or one without an extension: .png is added), got .jpg`);
    expect(readdirSync(f('outs')).filter((n) => n.startsWith('res.') || n.startsWith('res-'))).toEqual([]);
  });
});

describe('sd schedule', () => {
  it('shares the checks and refuses a model folder that is not there', async () => {
    expect((await run('sd', 'schedule', '--steps', '0'))?.message).toBe('--steps: expected an integer >= 1, got 0');
    const none = await run('sd', 'schedule', '--model', f('nothing'));
    expect(none).toBeInstanceOf(MissingFileError);
    expect(none?.message).toContain(`--model ${f('nothing')}: no such folder`);
    expect((await run('sd', 'schedule', '--scheduler', 'ddim', '--eta', '2'))?.message).toMatch(/^--eta 2 is too large for this schedule: .* up to eta 1\.0\d+ here \(50 steps, strength 0\.8\)/);
  });

  // (the engine's own words named neither flag: "strength 0.3 with 1 steps runs no denoising step (needs strength >=
  // 1/steps)", "steps (5000) cannot exceed num_train_timesteps (1000)")
  it('names the flags when the plan runs no step or takes more steps than the schedule has', async () => {
    expect((await run('sd', 'schedule', '--steps', '1', '--strength', '0.3'))?.message).toBe(
      '--strength 0.3 with --steps 1 runs no denoising step: img2img runs the last ⌊steps·strength⌋ of the steps, 0 here; strength·steps must be at least 1 (e.g. --strength 1 with --steps 1)',
    );
    expect((await run('sd', 'schedule', '--scheduler', 'ddim', '--steps', '3', '--strength', '0.3'))?.message).toBe(
      '--strength 0.3 with --steps 3 runs no denoising step: img2img runs the last ⌊steps·strength⌋ of the steps, 0 here; strength·steps must be at least 1 (e.g. --strength 0.333334 with --steps 3)',
    );
    // pndm (the default here) repeats a timestep: diffusers makes one call at the last, and so does the engine
    expect((await run('sd', 'schedule', '--scheduler', 'euler', '--steps', '5000'))?.message).toBe(
      "--steps 5000 is too many for this model's schedule: it has 1000 training timesteps (num_train_timesteps), and no scheduler takes more steps than that; --steps is at most 1000",
    );
  });

  const printed = async (...args: string[]) => {
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      const program = new Command().exitOverride();
      registerSdCommand(program);
      await program.parseAsync(['node', 'brainlatent', 'sd', 'schedule', ...args]);
      return JSON.parse(String(out.mock.calls[0][0])) as { maxEta: number; noiseAlphaCumprod: number; runs: { alphaCumprod: number; sigma: number }[] };
    } finally {
      out.mockRestore();
    }
  };

  it('reports one ᾱ at t = 999 under euler (that of the float32 σ it runs, for the noise and the first call alike)', async () => {
    const p = await printed('--scheduler', 'euler', '--steps', '3', '--strength', '1');
    expect(p.noiseAlphaCumprod).toBe(p.runs[0].alphaCumprod);
    expect(p.runs[0].alphaCumprod).toBe(1 / (1 + p.runs[0].sigma ** 2));
    expect(p.noiseAlphaCumprod).toBeCloseTo(0.004660098538, 12);
  });

  it("plans pndm's last timestep alone at strength·steps < 1, as diffusers' get_timesteps leaves it (it refused)", async () => {
    const p = (await printed('--steps', '2', '--strength', '0.3')) as unknown as { timesteps: number[]; runs: { timestep: number }[] };
    // SD 1.x leading, steps_offset 1: [501, 1, 1]; timesteps[2:] = [1]
    expect(p.timesteps).toEqual([501, 1, 1]);
    expect(p.runs.map((r) => r.timestep)).toEqual([1]);
  });

  it('prints the largest --eta the schedule allows', async () => {
    const p = await printed('--scheduler', 'ddim', '--steps', '50');
    expect(p.maxEta).toBeGreaterThan(1);
    expect(p.maxEta).toBeLessThan(1.1);
    expect((await printed('--scheduler', 'ddim', '--steps', '50', '--eta', String(p.maxEta))).maxEta).toBe(p.maxEta);
    expect((await printed('--scheduler', 'euler')).maxEta).toBe(0);
  });
});

describe('sd img2img: Ctrl-C', () => {
  it('cancels at the next step and writes nothing', async () => {
    const main = distModule('cli/main');
    // 16 images at 64×64 latents, 999 steps: far longer than the test waits
    await writeNpy(f('z16.npy'), new Float32Array(16 * 4 * 64 * 64).map((_, i) => Math.sin(i)), [16, 4, 64, 64]);
    const child = spawn(process.execPath, [
      main, 'sd', 'img2img', '--model', f('good'), '--latents', f('z16.npy'), '--prompt', 'a cat', '--steps', '999', '--strength', '1',
      '--scheduler', 'euler', '--threads', '1', '--out', f('sigint.png'), '--latents-out', f('sigint.npy'),
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let sent = 0;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (!sent && /step \d+\/999/.test(stderr)) {
        sent = performance.now();
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((done) => child.on('close', (c) => done(c)));
    expect(sent).toBeGreaterThan(0);
    expect(performance.now() - sent).toBeLessThan(5000);
    expect(code).toBe(1);
    expect(stderr).toMatch(/CancelledError: img2img cancelled (before|during) step \d+ of 999/);
    expect(readdirSync(tmp).filter((n) => n.startsWith('sigint'))).toEqual([]);
  }, 30_000);
});

describe('sd fixture', () => {
  it('refuses sizes and seeds that are not integers in range, naming the flag, and writes nothing', async () => {
    const cases: [string[], string][] = [
      [['--unet-channels', '-3'], '--unet-channels: expected an integer from 1 to 1024, got -3'],
      [['--unet-channels', '0'], '--unet-channels: expected an integer from 1 to 1024, got 0'],
      [['--text-dim', '1.5'], '--text-dim: expected an integer from 1 to 4096, got 1.5'],
      [['--unet-layers', '-1'], '--unet-layers: expected an integer from 0 to 64, got -1'],
      [['--seed', '-1'], '--seed: expected an integer >= 0, got -1'],
    ];
    for (const [flags, message] of cases) {
      const e = await run('sd', 'fixture', '--out', f('fixture-bad'), ...flags);
      expect(e, flags.join(' ')).toBeInstanceOf(InvalidArgumentError);
      expect(e?.message, flags.join(' ')).toBe(message);
    }
    expect(readdirSync(tmp)).not.toContain('fixture-bad');
    expect(() => resolveFixtureOptions({ unetChannels: 0 })).toThrow('writeSdFixture unetChannels: expected an integer >= 1, got 0');
    expect(resolveFixtureOptions({ unetLayers: 0 }).unetLayers).toBe(0);
  });

  it('refuses an --attention other than unfused or fused, and --attention without --arch sd1, writing nothing', async () => {
    const cases: [string[], string][] = [
      [['--arch', 'sd1', '--attention', 'flash'], "--attention must be unfused or fused, got 'flash'"],
      [['--attention', 'fused'], '--attention applies to --arch sd1'],
    ];
    for (const [flags, message] of cases) {
      const e = await run('sd', 'fixture', '--out', f('fixture-attention'), ...flags);
      expect(e, flags.join(' ')).toBeInstanceOf(InvalidArgumentError);
      expect(e?.message, flags.join(' ')).toBe(message);
    }
    expect(readdirSync(tmp)).not.toContain('fixture-attention');
  });
});
