/** `brainlatent sd img2img|info|schedule|fixture|layers`: each parses flags, calls the Diffusion API, formats output. */
import { statSync } from 'node:fs';
import { basename, extname, join, dirname } from 'node:path';

import type { Command } from 'commander';

import { BrainlatentError, CancelledError, InvalidArgumentError, MissingFileError, NonFiniteError, ShapeError } from '../../errors.js';
import { readNpy, writeNpy } from '../../io/npy.js';
import { Diffusion, SCHEDULERS, type SchedulerName } from '../../sd/Diffusion.js';
import { SD_FIXTURE_VARIANTS, writeSdFixture } from '../../sd/fixture.js';
import { writeSd1Fixture } from '../../sd/sd1Fixture.js';
import { checkFixtureFolder } from '../../sd/fixtureFolder.js';
import { readPng, writePng } from '../../sd/png.js';
import { KARRAS_SCHEDULERS, readSchedulerConfig, SD1_SCHEDULE } from '../../sd/schedulerConfig.js';
import { checkSchedulerName, guided, PLAN_FLAGS, planRun, resolvePlanOptions, stepNoiseProblem, type PlanOptions, type TimestepSpacing } from '../../sd/samplingOptions.js';
import { latentSizeMismatch, unetDeclaredSizes, type UnetDeclaredSizes } from '../../sd/onnxSignature.js';
import { firstNonFinite, type RgbImages, type Tensor } from '../../sd/tensor.js';
import { FlagProblems } from '../problems.js';
import { progressBar } from '../progress.js';
import { checkUnetLayers, listUnetLayers } from '../../encoding/unetLayers.js';
import { checkNotAnInput, checkOutputFile, checkOutputPath } from '../outputPath.js';
import { decimalFlag, integerFlag, numberFlag } from '../flagValue.js';
import { GUIDANCE_RANGE, MAX_GUIDANCE, MAX_ORT_THREADS, SEED_RANGE } from '../../sd/optionBounds.js';
import { stopOnSignals } from '../stopSignals.js';

interface LoadFlags {
  model: string;
  ortLib?: string;
  provider?: string;
  providerLib?: string;
  providerOption?: string[];
  threads?: string;
  memory?: string;
}

/** --provider-option key=value, repeatable, into providerOptions (checked by Diffusion.load). */
function providerOptions(pairs: string[] | undefined): Record<string, string> | undefined {
  if (!pairs || pairs.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new InvalidArgumentError(`--provider-option must be key=value (e.g. use_tf32=0), got '${p}'`);
    out[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return out;
}

const collect = (v: string, all: string[] = []) => [...all, v];
const PROVIDER_LIB_HELP =
  "with --provider cuda: a plugin execution-provider library (libonnxruntime_providers_cuda.so) for a core without the built-in CUDA provider (default BRAINLATENT_ORT_PROVIDER_LIB)";
const PROVIDER_OPTION_HELP = 'provider option key=value passed to the execution provider, repeatable (e.g. use_tf32=0 for fp32 parity)';

function num(v: string | undefined, name: string, fallback: number): number {
  return v === undefined ? fallback : decimalFlag(v, `--${name}`);
}

/** A float .npy of `rank` dimensions (any rank when null: the caller checks the shape), every value finite. */
async function readFloatNpy(path: string, what: string, rank: number | null): Promise<Tensor> {
  const a = await readNpy(path);
  if (rank !== null && a.shape.length !== rank) throw new ShapeError(`${what} ${path}: expected rank ${rank}, got shape [${a.shape.join(', ')}]`);
  const data = a.data instanceof Float32Array ? a.data : Float32Array.from(a.data as ArrayLike<number>);
  const bad = firstNonFinite(data);
  if (bad >= 0) throw new NonFiniteError(`${what} ${path}: value ${data[bad]} at index ${bad} (shape [${a.shape.join(', ')}]) is not finite`);
  return { data, shape: a.shape };
}

/** The plan flags as the sampling options (checked by resolvePlanOptions, which names the flags). */
function planFlags(f: Record<string, string | undefined> & { karras?: boolean }): PlanOptions {
  return {
    scheduler: f.scheduler as SchedulerName | undefined,
    karras: f.karras ? true : undefined,
    timestepSpacing: f.spacing as TimestepSpacing | undefined,
    steps: num(f.steps, 'steps', 50),
    strength: num(f.strength, 'strength', 0.8),
    eta: num(f.eta, 'eta', 0),
    img2imgRule: f.rule as 'diffusers' | 'compvis' | undefined,
  };
}

/** --scheduler, checked before the model's config is read: a choice runs instead of the config's class (which may be one the engine does not know). */
function chosenScheduler(v: string | undefined): SchedulerName | undefined {
  return v === undefined ? undefined : checkSchedulerName(v, '--scheduler');
}

/** z's shape before the model loads (channels 0 when only the model can tell), where it comes from and its flag. */
interface LatentsShape {
  shape: number[];
  flag: string;
  /** "expected …" of a noise file, given the shape it should have. */
  expected: (want: string) => string;
}

/** An --image's latents: one image, 1/8 of its size (the VAE's downsampling), the model's channels. */
function latentsOfImage(path: string, rgb: RgbImages): LatentsShape {
  return {
    shape: [rgb.count, 0, rgb.height / 8, rgb.width / 8],
    flag: '--image',
    expected: (want) => `[${want}]: the latents of --image ${path} (${rgb.width}×${rgb.height} pixels; C the model's latent channels, 4 for SD 1.x)`,
  };
}

/** A noise file's [images, channels, h, w] against z's, before the model loads; `calls` prefixes --step-noise's slices. */
function checkNoiseShape(named: string, shape: number[], z: LatentsShape, calls = ''): void {
  if (shape.every((n, i) => z.shape[i] === 0 || n === z.shape[i])) return;
  const want = z.shape.map((n) => (n === 0 ? 'C' : String(n))).join(', ');
  throw new ShapeError(`${named}: has shape [${calls}${shape.join(', ')}]; expected ${z.expected(calls + want)}`);
}

/**
 * The U-Net's declared sizes (latents, c's width), read from the signatures of its ONNX files without loading the
 * model: null when they cannot be read (a missing or broken file, which Diffusion.load then reports in full).
 */
async function declaredSizes(model: string): Promise<UnetDeclaredSizes | null> {
  try {
    return await unetDeclaredSizes(model);
  } catch {
    return null;
  }
}

const dimsText = (dims: readonly (number | string | null)[]) => `[${dims.map((d) => d ?? '?').join(', ')}]`;

/**
 * --image's latents (1/8 of its sides) against a U-Net exported at one latent size (the demo world's), as
 * reconstruct's preflight checks img2img.size: the image size it needs, named with the flag.
 */
function checkImageLatentSize(path: string, rgb: RgbImages, u: UnetDeclaredSizes): void {
  const want = latentSizeMismatch(u, rgb.height / 8, rgb.width / 8);
  if (!want) return;
  throw new ShapeError(
    `--image ${path}: the image is ${rgb.width}×${rgb.height} pixels, which gives ${rgb.width / 8}×${rgb.height / 8} latents, but ${u.path} takes ` +
      `${u.sampleName} ${dimsText(u.sampleDims)}: latents of ${want.width}×${want.height} only; expected an image of ${8 * want.width}×${8 * want.height} pixels (resize it to that)`,
  );
}

/** --latents' height and width against a U-Net exported at one latent size. */
function checkLatentsSize(path: string, shape: number[], u: UnetDeclaredSizes): void {
  const want = latentSizeMismatch(u, shape[2], shape[3]);
  if (!want) return;
  throw new ShapeError(
    `--latents ${path}: has latents of ${shape[3]}×${shape[2]} ([${shape.join(', ')}]), but ${u.path} takes ${u.sampleName} ${dimsText(u.sampleDims)}: ` +
      `latents of ${want.width}×${want.height} only (those of ${8 * want.width}×${8 * want.height}-pixel images)`,
  );
}

/**
 * --cond's shape, [B, 77, D], against the model's D where its files declare it (U-Net, else text encoder). A 2-D
 * array whose rows hold 77 × D values is c flattened per image (as reconstruct stores decoded/c.npy): the error
 * says which reshape gives the shape expected.
 */
function checkCondShape(path: string, shape: number[], u: UnetDeclaredSizes | null, model: string): void {
  const seq = u?.sequence ?? 77;
  const d = u?.condDim ?? null;
  const expected =
    d === null
      ? `[B, ${seq}, D] (B: 1 or one per image; D: the width of the U-Net's encoder_hidden_states)`
      : `[B, ${seq}, ${d}] (B: 1 or one per image; ${d}: the width of encoder_hidden_states in ${u?.path ?? model})`;
  const got = `has shape [${shape.join(', ')}]`;
  if (shape.length === 3) {
    if (d !== null && shape[2] !== d) throw new ShapeError(`--cond ${path}: has width ${shape[2]} ([${shape.join(', ')}]); the U-Net of ${model} expects encoder_hidden_states of width ${d}`);
    // (a U-Net that leaves the sequence open: the tokenizer's length, checked once the model has loaded)
    if (u?.sequence != null && shape[1] !== u.sequence) {
      throw new ShapeError(`--cond ${path}: has ${shape[1]} tokens per row ([${shape.join(', ')}]); expected ${expected}: ${u.path} takes encoder_hidden_states of ${u.sequence} tokens`);
    }
    return;
  }
  if ((shape.length === 2 || shape.length === 1) && d !== null) {
    const [rows, per] = shape.length === 2 ? shape : [1, shape[0]];
    if (per === seq * d) {
      throw new ShapeError(
        `--cond ${path}: ${got}; expected ${expected}: each row's ${per} values are ${seq} × ${d}, c flattened per image (as reconstruct's decoded/c.npy stores it): reshape it to [${rows}, ${seq}, ${d}] (numpy: np.save(out, np.load(in).reshape(${rows}, ${seq}, ${d})))`,
      );
    }
    throw new ShapeError(`--cond ${path}: ${got}; expected ${expected}; its rows of ${per} values are not c flattened either (${seq} × ${d} = ${seq * d} values)`);
  }
  throw new ShapeError(`--cond ${path}: ${got}; expected ${expected}`);
}

/** Image i's file: image 0 at --out, image i > 0 beside it as <name>-<i>.png (one extension rule for every image). */
function imageOutPath(out: string, i: number): string {
  const ext = extname(out);
  return i === 0 ? out : join(dirname(out), `${basename(out, ext)}-${i}${ext}`);
}

/** --model: an existing folder (a file, or nothing there, is refused naming the flag). */
function checkModelFolder(dir: string): string {
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new MissingFileError(`--model ${dir}: no such folder; expected an SD 1.x ONNX model folder (see \`brainlatent sd fixture\` for a test one)`);
  }
  if (!st.isDirectory()) throw new InvalidArgumentError(`--model ${dir}: is a file; expected an SD 1.x ONNX model folder`);
  return dir;
}

/** An integer flag >= min, named in the error. */
function intFlag(v: string | undefined, name: string, fallback: number, min: number, max?: number): number {
  return v === undefined ? fallback : integerFlag(v, `--${name}`, min, max);
}

/** --image read and checked (a PNG whose sides are multiples of 8) before the model loads. */
/**
 * A reader's refusal of the file `flag` names, naming the flag: "nope.npy: file not found" said nothing of which of
 * --latents, --cond, --noise and --step-noise it was (review s45).
 */
async function fromFlag<T>(flag: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (e) {
    if (e instanceof BrainlatentError && !e.message.startsWith(flag)) e.message = `${flag}: ${e.message}`;
    throw e;
  }
}

async function readImageFlag(path: string) {
  const rgb = await readPng(path);
  if (rgb.width % 8 !== 0 || rgb.height % 8 !== 0) {
    throw new ShapeError(`--image ${path}: the image is ${rgb.width}×${rgb.height}; expected both sides to be multiples of 8 (the VAE's downsampling)`);
  }
  return rgb;
}

/** The session flags, checked before anything is read: a provider's settings with the CPU provider would be dropped. */
function loadOptions(f: LoadFlags) {
  if ((f.provider ?? 'cpu') === 'cpu') {
    const given = [f.providerLib !== undefined && '--provider-lib', f.providerOption?.length && '--provider-option'].filter(Boolean);
    if (given.length) throw new InvalidArgumentError(`${given.join(' and ')}: for an execution provider such as --provider cuda; --provider cpu takes none`);
  }
  return {
    ortLibrary: f.ortLib,
    provider: f.provider,
    providerLibrary: f.providerLib,
    providerOptions: providerOptions(f.providerOption),
    intraOpThreads: f.threads !== undefined ? intFlag(f.threads, 'threads', 0, 0, MAX_ORT_THREADS) : undefined,
    memory: memoryOption(f.memory),
  };
}

function memoryOption(v: string | undefined): 'default' | 'lean' | undefined {
  if (v === undefined) return undefined;
  if (v !== 'default' && v !== 'lean') throw new InvalidArgumentError(`--memory must be default or lean, got '${v}'`);
  return v;
}

export function registerSdCommand(program: Command): void {
  const sd = program.command('sd').description('Stable Diffusion 1.x img2img on ONNX Runtime (fused native sampler)');

  sd.command('img2img')
    .description('noise an image or latents up to --strength and denoise them conditioned on a prompt or c')
    .requiredOption('--model <dir>', 'SD 1.x ONNX model folder (diffusers/optimum export)')
    .option('--image <png>', "input image (sides multiples of 8; a U-Net exported at a fixed latent size takes images of 8× that size only)")
    .option('--latents <npy>', 'initial scaled latents z [B,4,h,w] float32')
    .option('--prompt <text>', 'text prompt')
    .option('--cond <npy>', "conditioning c [B,77,D] float32 (a flattened [B,77·D], as reconstruct's decoded/c.npy, must be reshaped first)")
    .option('--negative-prompt <text>', 'the unconditional prompt of classifier-free guidance (needs --guidance above 1)', '')
    .option('--noise <npy>', 'initial noise [B,4,h,w] float32 (default: Philox keyed by seed and image index)')
    .option('--step-noise <npy>', 'noise of each U-Net call that runs, [calls,B,4,h,w] float32, consumed in order by the stochastic schedulers (ddim eta > 0, ddpm, euler-ancestral, dpmpp2m-sde): reproduces another implementation\'s run exactly')
    .option('--strength <s>', 'img2img strength in (0, 1]', '0.8')
    .option('--steps <n>', 'inference steps', '50')
    .option(
      '--guidance <g>',
      `classifier-free guidance scale, 0 to ${MAX_GUIDANCE} (SD 1.x: 5–7.5). Guidance runs when > 1, as in diffusers: every value from 0 to 1 runs the prompt alone and gives the same image`,
      '5',
    )
    .option('--scheduler <name>', `one of ${SCHEDULERS.join(', ')} (default: the one scheduler/scheduler_config.json's _class_name names, as in diffusers; PNDM for SD 1.x and when it names none). A choice runs instead of the file's class, which may then be one the engine does not know`)
    .option('--karras', `Karras sigmas (use_karras_sigmas) for ${KARRAS_SCHEDULERS.join(', ')}`)
    .option('--spacing <s>', "timestep spacing leading|trailing|linspace (default: the config's, else the scheduler class's own)")
    .option('--eta <eta>', "DDIM eta, >= 0: 0 deterministic, 1 as DDPM; at most the schedule's maxEta (`sd schedule --scheduler ddim` prints it; just above 1 for SD's)", '0')
    .option(
      '--rule <rule>',
      "img2img noise rule: 'diffusers' (noise at the first step that runs) or 'compvis' (one DDIM step above it, as CompVis and TN: that step is 1000/steps timesteps, so with fewer than about 8 steps the images keep noise and come out poor; use 'diffusers' for few steps)",
      'diffusers',
    )
    .option('--seed <n>', 'noise seed, an integer from 0 to 2^53 − 1 (9007199254740991)', '0')
    .option('--batch-size <n>', 'images per U-Net batch', '1')
    .option('--out <png>', 'output image, a .png name (.png is added to a name without an extension) in an existing folder, none of the inputs; image i > 0 of a batch goes beside it to <name>-<i>.png')
    .option('--latents-out <npy>', 'write the final latents [B,4,h,w] float32 to this .npy (.npy added to a name without an extension; its folder must exist)')
    .option('--ort-lib <path>', 'libonnxruntime to load (default BRAINLATENT_ORT_LIB or onnxruntime-node)')
    .option('--provider <name>', 'execution provider: cpu, cuda, ...', 'cpu')
    .option('--provider-lib <path>', PROVIDER_LIB_HELP)
    .option('--provider-option <key=value>', PROVIDER_OPTION_HELP, collect)
    .option('--threads <n>', 'ONNX Runtime intra-op threads (default: all cores)')
    .option(
      '--memory <mode>',
      "ONNX Runtime's memory: 'default' (the default: its arena, memory patterns, pre-packed weights: fastest) or 'lean' (all off, weights left memory-mapped, one U-Net row per run: SD 1.x at 64×64 peaked at 1.46× its weights)",
    )
    .addHelpText(
      'after',
      `
Examples:
  brainlatent sd img2img --model models/sd-v1-4-onnx --image in.png --prompt "a cat on a sofa" --out out.png
  brainlatent sd img2img --model models/sd-v1-4-onnx --latents z.npy --cond c.npy --scheduler ddim --rule compvis \\
      --seed 42 --batch-size 4 --out img.png --latents-out final.npy     # img.png, img-1.png, … one per row of z
  brainlatent sd img2img --model models/sd-v1-4-onnx --image in.png --prompt "a cat" --out out.png \\
      --provider cuda --provider-option use_tf32=0                      # on the GPU, MatMul/Conv in full fp32

Every flag and input file is checked before the model loads. See docs/sampler.md (schedulers, the noise
rules, reproducing another implementation's run, ONNX Runtime and CUDA).`,
    )
    .action(async (f: LoadFlags & Record<string, string | undefined> & { karras?: boolean; providerOption?: string[] }) => {
      // the inputs and outputs it needs, all named at once (one at a time took three runs to learn)
      const needs = new FlagProblems();
      if (!f.image === !f.latents) needs.add(new InvalidArgumentError('give exactly one of --image or --latents'));
      if (!f.prompt === !f.cond) needs.add(new InvalidArgumentError('give exactly one of --prompt or --cond'));
      if (!f.out && !f.latentsOut) needs.add(new InvalidArgumentError('give --out and/or --latents-out'));
      needs.throwIfAny('sd img2img');
      const load = loadOptions(f);
      // an output is never one of the inputs: `--image a.png --out a.png` would replace the image it starts from
      const inputs = [['--image', f.image], ['--latents', f.latents], ['--cond', f.cond], ['--noise', f.noise], ['--step-noise', f.stepNoise]] as const;
      const out = f.out === undefined ? undefined : await checkOutputFile('--out', f.out, { ext: '.png', what: 'the image (PNG)', writes: 'img2img writes PNG images', inputs });
      const latentsOut =
        f.latentsOut === undefined
          ? undefined
          : await checkOutputFile('--latents-out', f.latentsOut, { ext: '.npy', what: 'the latents (.npy)', writes: 'img2img writes the latents as .npy', inputs });
      // Everything the flags and input files can tell is checked before the model loads (SD 1.x: seconds to a minute).
      const chosen = chosenScheduler(f.scheduler);
      const config = await readSchedulerConfig(checkModelFolder(f.model), { scheduler: chosen });
      const planOptions = planFlags(f);
      const plan = resolvePlanOptions({ schedule: config.schedule, scheduler: config.scheduler }, planOptions, PLAN_FLAGS);
      const planInfo = planRun(plan);
      const calls = planInfo.runs.length;
      // (a deterministic run ignores --step-noise: the same image as without it, as --negative-prompt at --guidance 1)
      const ignoredNoise = f.stepNoise === undefined ? null : stepNoiseProblem(planInfo, `--step-noise ${f.stepNoise}`);
      if (ignoredNoise) throw new InvalidArgumentError(ignoredNoise);
      // (the API's bounds, in the API's words: "--guidance: expected a number from 0 to 100")
      const guidance = f.guidance === undefined ? 5 : numberFlag(f.guidance, '--guidance', GUIDANCE_RANGE);
      // (the negative prompt is the unconditional side of classifier-free guidance, which runs only above 1)
      if (f.negativePrompt && !guided(guidance)) {
        throw new InvalidArgumentError(`--negative-prompt has no effect with --guidance ${f.guidance}: classifier-free guidance, whose unconditional side it is, runs only when guidance > 1`);
      }
      const seed = f.seed === undefined ? 0 : numberFlag(f.seed, '--seed', SEED_RANGE);
      const batchSize = intFlag(f.batchSize, 'batch-size', 1, 1);
      const image = f.image ? await fromFlag('--image', () => readImageFlag(f.image!)) : undefined;
      const zFile = f.latents ? await fromFlag('--latents', () => readFloatNpy(f.latents!, '--latents', 4)) : undefined;
      const cFile = f.cond ? await fromFlag('--cond', () => readFloatNpy(f.cond!, '--cond', null)) : undefined;
      const noise = f.noise ? await fromFlag('--noise', () => readFloatNpy(f.noise!, '--noise', 4)) : undefined;
      const stepNoise = f.stepNoise ? await fromFlag('--step-noise', () => readFloatNpy(f.stepNoise!, '--step-noise', 5)) : undefined;
      if (stepNoise && stepNoise.shape[0] !== calls) {
        throw new ShapeError(
          `--step-noise ${f.stepNoise}: has ${stepNoise.shape[0]} slices ([${stepNoise.shape.join(', ')}]); expected one per U-Net call that runs: ${calls} (${plan.scheduler}, ${plan.steps} steps, strength ${plan.strength})`,
        );
      }
      // z's shape as the inputs tell it: --latents', or that of --image's latents (their channels are the model's)
      const zIn: LatentsShape = zFile
        ? { shape: zFile.shape, flag: '--latents', expected: (want) => `--latents' shape [${want}]` }
        : latentsOfImage(f.image as string, image as RgbImages);
      if (noise) checkNoiseShape(`--noise ${f.noise}`, noise.shape, zIn);
      if (stepNoise) checkNoiseShape(`--step-noise ${f.stepNoise}`, stepNoise.shape.slice(1), zIn, `${calls}, `);
      // the sizes the U-Net's file declares (its signature, not its weights): an --image or --latents of another
      // latent size than a fixed export takes, or a --cond of the wrong shape, is refused before the model loads
      const declared = await declaredSizes(f.model);
      if (declared && image) checkImageLatentSize(f.image as string, image, declared);
      if (declared && zFile) checkLatentsSize(f.latents as string, zFile.shape, declared);
      if (cFile) checkCondShape(f.cond as string, cFile.shape, declared, f.model);
      const images = zIn.shape[0];
      // (image i > 0 of a batch goes beside --out: none of those may be an input either)
      for (let i = 1; out && i < images; i++) await checkNotAnInput('--out', imageOutPath(out, i), inputs, `image ${i} (PNG)`);
      if (cFile && cFile.shape[0] !== 1 && cFile.shape[0] !== images) {
        throw new ShapeError(`--cond ${f.cond}: has ${cFile.shape[0]} rows ([${cFile.shape.join(', ')}]); expected 1 or one per image of ${zIn.flag} (${images})`);
      }
      // (a signal during the load, which takes none and writes nothing, ends the process at once, as Node's default)
      const model = await Diffusion.load(f.model, { ...load, scheduler: chosen });
      // Ctrl-C or SIGTERM cancels the run at its next step (the VAE at its next image); nothing is written after it.
      const ac = stopOnSignals();
      try {
        // the model's sizes, named by the file that does not fit
        if (cFile && model.info.condDim > 0 && cFile.shape[2] !== model.info.condDim) {
          throw new ShapeError(`--cond ${f.cond}: has width ${cFile.shape[2]} ([${cFile.shape.join(', ')}]); the U-Net of ${f.model} expects encoder_hidden_states of width ${model.info.condDim}`);
        }
        // (with guidance, c's rows must match the unconditional input encoded here, one per token of the tokenizer's
        // length; without it a U-Net that leaves the sequence open takes any length, e.g. a long prompt's chunks, as
        // the library does)
        const tokens = model.tokenizer?.maxLength;
        if (cFile && guided(guidance) && tokens !== undefined && cFile.shape[1] !== tokens) {
          const width = model.info.condDim > 0 ? model.info.condDim : cFile.shape[2];
          throw new ShapeError(
            `--cond ${f.cond}: has ${cFile.shape[1]} tokens per row ([${cFile.shape.join(', ')}]); expected [B, ${tokens}, ${width}] (B: 1 or one per image): ` +
              `the sequence length of the tokenizer of ${f.model}, which guidance's unconditional input has (at --guidance ${guidance}; up to 1 no unconditional input is made)`,
          );
        }
        if (zFile && zFile.shape[1] !== model.info.latentChannels) {
          throw new ShapeError(`--latents ${f.latents}: has ${zFile.shape[1]} channels ([${zFile.shape.join(', ')}]); the U-Net of ${f.model} expects ${model.info.latentChannels}`);
        }
        // (an --image's latents have the model's channels: the noise's, checked only now)
        if (noise && noise.shape[1] !== model.info.latentChannels) {
          throw new ShapeError(`--noise ${f.noise}: has ${noise.shape[1]} channels ([${noise.shape.join(', ')}]); the U-Net of ${f.model} expects ${model.info.latentChannels}`);
        }
        if (stepNoise && stepNoise.shape[2] !== model.info.latentChannels) {
          throw new ShapeError(`--step-noise ${f.stepNoise}: has ${stepNoise.shape[2]} channels ([${stepNoise.shape.join(', ')}]); the U-Net of ${f.model} expects ${model.info.latentChannels}`);
        }
        const z = image ? await model.encodeImages(image, { signal: ac.signal }) : (zFile as Tensor);
        let c = cFile ?? (await model.encodeText([f.prompt as string], { signal: ac.signal }));
        if (c.shape[0] === 1 && z.shape[0] > 1) {
          const rows = new Float32Array(z.shape[0] * c.data.length);
          for (let i = 0; i < z.shape[0]; i++) rows.set(c.data, i * c.data.length);
          c = { data: rows, shape: [z.shape[0], c.shape[1], c.shape[2]] };
        }
        const uncond = guided(guidance) && model.tokenizer ? await model.encodeText([f.negativePrompt ?? ''], { signal: ac.signal }) : undefined;
        const scheduler = plan.scheduler as SchedulerName;
        const bar = progressBar('img2img');
        const r = await model.img2img({
          z,
          c,
          uncond,
          noise,
          ...planOptions,
          scheduler,
          stepNoise,
          guidance,
          seeds: seed,
          batchSize,
          signal: ac.signal,
          onStep: (p) => {
            const at = p.batchFirst + (p.step / p.total) * p.batchImages;
            bar.update(at / z.shape[0], `step ${p.step}/${p.total}`, { done: Math.floor(at), total: z.shape[0], unit: 'images' });
          },
        });
        const s = r.stats;
        bar.done(
          `img2img (${scheduler}${f.karras ? ', Karras' : ''}, ${model.info.provider}): ${s.unetCalls} U-Net calls in ${s.loopSeconds.toFixed(2)}s (U-Net ${s.unetSeconds.toFixed(2)}s, overhead ×${(s.loopSeconds / s.unetSeconds).toFixed(3)})`,
        );
        const img = out ? await model.decode(r.latents, { signal: ac.signal }) : undefined;
        if (ac.signal.aborted) throw new CancelledError(`img2img: interrupted (${ac.name()}); no output written`);
        if (latentsOut) await writeNpy(latentsOut, r.latents.data, r.latents.shape);
        if (out && img) {
          for (let i = 0; i < img.count; i++) await writePng(imageOutPath(out, i), img, i);
        }
      } finally {
        ac.dispose();
        model.dispose();
      }
    });

  sd.command('info')
    .description('the models, their signatures, the adapted variant, and the ONNX Runtime with its providers')
    .requiredOption('--model <dir>', 'SD 1.x ONNX model folder')
    .option('--ort-lib <path>', 'libonnxruntime to load')
    .option('--provider <name>', 'execution provider', 'cpu')
    .option('--provider-lib <path>', PROVIDER_LIB_HELP)
    .option('--provider-option <key=value>', PROVIDER_OPTION_HELP, collect)
    .action(async (f: LoadFlags) => {
      const model = await Diffusion.load(f.model, loadOptions(f));
      try {
        const out = {
          model: f.model,
          runtime: model.runtime,
          provider: model.info.provider,
          variant: {
            inputIds: model.info.inputIdsDtype,
            timestep: `${model.info.timestepDtype} rank ${model.info.timestepRank}`,
            vaeEncoderOutput: model.info.vaeEncoderOutput,
            condDim: model.info.condDim,
          },
          scalingFactor: model.scalingFactor,
          schedule: model.schedule,
          models: model.info.models,
        };
        process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
      } finally {
        model.dispose();
      }
    });

  sd.command('schedule')
    .description(
      "print as JSON the timesteps that will run, with their ᾱ (alphaCumprod: the table's for ddim, pndm and ddpm; 1/(1+σ²) of the float32 σ each call runs for the σ-based schedulers, as noiseAlphaCumprod) and maxEta, the largest --eta the schedule allows (ddim; 0 for the others)",
    )
    .option('--model <dir>', "read the model's scheduler/scheduler_config.json (default: SD 1.x's)")
    .option('--scheduler <name>', `one of ${SCHEDULERS.join(', ')} (default: the model's config's class, else pndm; a choice runs instead of a class the engine does not know)`)
    .option('--karras', `Karras sigmas for ${KARRAS_SCHEDULERS.join(', ')}`)
    .option('--steps <n>', 'inference steps', '50')
    .option('--strength <s>', 'img2img strength', '0.8')
    .option('--eta <eta>', 'DDIM eta', '0')
    .option('--spacing <s>', "leading, trailing or linspace (default: the config's, else the scheduler class's own)")
    .option('--rule <rule>', 'diffusers or compvis', 'diffusers')
    .action(async (f: Record<string, string | undefined> & { karras?: boolean }) => {
      const chosen = chosenScheduler(f.scheduler);
      const config = f.model ? await readSchedulerConfig(checkModelFolder(f.model), { scheduler: chosen }) : undefined;
      const plan = resolvePlanOptions({ schedule: config?.schedule ?? SD1_SCHEDULE, scheduler: config?.scheduler ?? 'pndm' }, planFlags(f), PLAN_FLAGS);
      process.stdout.write(`${JSON.stringify({ schedule: plan.schedule, ...planRun(plan) }, null, 2)}\n`);
    });

  sd.command('fixture')
    .description('write a tiny random-weight SD 1.x ONNX model folder (for smoke tests and benchmarks)')
    .requiredOption('--out <dir>', 'output folder')
    .option('--arch <arch>', "'tiny' (a few-KB U-Net for tests) or 'sd1' (SD 1.x's U-Net layers, 859.5M random parameters, 3.4 GB of external weights)", 'tiny')
    .option('--variant <name>', `${Object.keys(SD_FIXTURE_VARIANTS).join(', ')}, or 'all' (one subfolder each)`, 'optimum-1.24')
    .option('--text-dim <n>', 'text embedding width D', '32')
    .option('--unet-channels <n>', 'U-Net hidden channels', '8')
    .option('--unet-layers <n>', 'U-Net hidden 3×3 conv layers', '1')
    .option('--seed <n>', 'weight seed', '1')
    .option(
      '--dtype <type>',
      "with --arch sd1: 'float32' (default) or 'float16', the usual GPU export: the U-Net's weights (1.7 GB), constants, inputs and output in half precision, and float16 at the text encoder's and VAE's boundaries. The tiny fixture's float16 form is --variant optimum-fp16-io",
    )
    .option(
      '--attention <form>',
      "with --arch sd1: 'unfused' (default; MatMul, Softmax, MatMul) or 'fused': each attention block's core as one com.microsoft MultiHeadAttention node, as in GPU exports made for ONNX Runtime (its CUDA provider runs it as flash or memory-efficient attention); the same weights",
    )
    .action(async (f: Record<string, string>) => {
      if (f.arch !== 'tiny' && f.arch !== 'sd1') throw new InvalidArgumentError(`--arch must be tiny or sd1, got '${f.arch}'`);
      await checkOutputPath('--out', f.out, 'folder', 'the fixture model');
      await checkFixtureFolder('--out', f.out, f.arch === 'tiny' && f.variant === 'all' ? Object.keys(SD_FIXTURE_VARIANTS) : undefined);
      if (f.dtype !== undefined && f.dtype !== 'float32' && f.dtype !== 'float16') throw new InvalidArgumentError(`--dtype must be float32 or float16, got '${f.dtype}'`);
      if (f.attention !== undefined && f.attention !== 'unfused' && f.attention !== 'fused') throw new InvalidArgumentError(`--attention must be unfused or fused, got '${f.attention}'`);
      if (f.arch === 'sd1') {
        const t0 = performance.now();
        const dtype = (f.dtype ?? 'float32') as 'float32' | 'float16';
        const attention = (f.attention ?? 'unfused') as 'unfused' | 'fused';
        const r = await writeSd1Fixture(f.out, { seed: intFlag(f.seed, 'seed', 1, 0), dtype, attention });
        process.stdout.write(
          `wrote ${f.out}: SD 1.x U-Net layers in ${dtype}${attention === 'fused' ? ' with fused attention (com.microsoft MultiHeadAttention)' : ''}, ${r.parameters.toLocaleString('en')} parameters, ${(r.weightBytes / 1e9).toFixed(2)} GB of random weights in unet/weights.pb (${((performance.now() - t0) / 1000).toFixed(0)} s)\n`,
        );
        return;
      }
      if (f.dtype !== undefined) throw new InvalidArgumentError("--dtype applies to --arch sd1; the tiny fixture's float16 form is --variant optimum-fp16-io");
      if (f.attention !== undefined) throw new InvalidArgumentError('--attention applies to --arch sd1');
      const shared = {
        // (a tiny model's sizes: SD's own are 768 wide and 320 channels; past these bounds a typed array or V8's
        // heap gave out, as a raw error or a crash)
        textDim: intFlag(f.textDim, 'text-dim', 32, 1, 4096),
        unetChannels: intFlag(f.unetChannels, 'unet-channels', 8, 1, 1024),
        unetLayers: intFlag(f.unetLayers, 'unet-layers', 1, 0, 64),
        seed: intFlag(f.seed, 'seed', 1, 0),
      };
      const names = f.variant === 'all' ? Object.keys(SD_FIXTURE_VARIANTS) : [f.variant];
      for (const name of names) {
        const v = SD_FIXTURE_VARIANTS[name];
        if (!v) throw new InvalidArgumentError(`unknown --variant '${name}': expected ${Object.keys(SD_FIXTURE_VARIANTS).join(', ')} or all`);
        const dir = names.length > 1 ? join(f.out, name) : f.out;
        await writeSdFixture(dir, { ...v, ...shared });
        process.stdout.write(`wrote ${dir} (${name}, random weights)\n`);
      }
    });

  sd.command('layers')
    .description('list the U-Net tensors that encoding feature sets can read (block outputs; --all for every node output, marking those that cannot be)')
    .requiredOption('--model <dir>', 'SD 1.x ONNX model folder')
    .option('--all', 'every node output, not only the last of each block; one that cannot be a feature is marked "unusable: why"')
    .option('--json', "print JSON (with each tensor's dtype, shape and whether it is usable)")
    .action(async (f: { model: string; all?: boolean; json?: boolean }) => {
      const listed = (await listUnetLayers(f.model)).filter((l) => f.all || l.blockOutput);
      // a tensor that is not float32/float16, or has no row per image, is no candidate: the U-Net is run once to tell
      // (at the size it declares, else on 64-pixel images: every layer's first dimension is the batch or not at any size)
      const check = await checkUnetLayers(f.model, listed.map((l) => l.name), { imageSize: 64, timestep: 500 });
      if (check.problem) process.stderr.write(`warning: only the types were checked: ${check.problem}\n`);
      const layers = listed.map((l, k) => {
        const t = check.layers[k];
        return { ...l, dtype: t.dtype, shape: t.shape, usable: t.problem === null, ...(t.problem ? { problem: t.problem } : {}) };
      });
      const shown = layers.filter((l) => f.all || l.usable);
      if (f.json) process.stdout.write(`${JSON.stringify(shown, null, 2)}\n`);
      else for (const l of shown) process.stdout.write(`${l.name}\t${l.opType}\t${l.block || '-'}${l.usable ? '' : `\tunusable: ${l.problem}`}\n`);
      const left = layers.length - shown.length;
      if (left) process.stderr.write(`${left} block output(s) left out: not float32 or float16, or no row per image (--all lists and marks them)\n`);
    });
}
