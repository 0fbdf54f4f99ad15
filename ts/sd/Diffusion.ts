/**
 * Stable Diffusion 1.x img2img on the native engine: `const sd = await Diffusion.load(dir)`, then
 * encodeImages / encodeText / img2img / decode. Text, images and the arrays the brain decoders
 * produce (z, c, and optionally the initial noise) are all accepted. The denoising loop runs in
 * C++ with no return to JS between steps; onStep reports progress, an AbortSignal cancels.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { checkControl } from '../callbackOptions.js';
import { CancelledError, FormatError, InvalidArgumentError, MissingFileError, ShapeError } from '../errors.js';
import { readJsonObject } from '../io/json.js';
import { describeNumber } from '../ridge/alphas.js';
import { checkInteger, checkIntegerAt, checkOptionsObject } from '../ridge/options.js';
import { abortedBeforeStart, nativeJob, nativeSync } from '../native/call.js';
import { noteEngineOrt } from '../native/ortUse.js';
import type {
  NativeStepProgress,
  Img2ImgStats,
  NativeLoadOptions,
  NativePlanOptions,
  OrtRuntimeInfo,
  SamplerPlanInfo,
  ScheduleConfig,
  SdHandle,
  SdModelSummary,
} from '../native/samplerTypes.js';
import { checkCaptions } from './captions.js';
import { ClipTokenizer } from './clipTokenizer.js';
import { checkModelFolder, SD_COMPONENTS, type SdComponent } from './modelLayout.js';
import { modelPathExists, readModelFile } from './modelRoots.js';
import { loadFailure, modelSource, verifyLoaded, type ModelSource } from './modelSource.js';
import { INT32_MAX, nativeSessionOptions, ORT_SESSION_OPTION_KEYS, type OrtSessionOptions } from './native.js';
import { GUIDANCE_EXPECTED, MAX_GUIDANCE, MAX_SEED, SEED_EXPECTED } from './optionBounds.js';
import { callLabels, checkSchedulerName, guided, planRun, resolvePlanOptions, stepNoiseProblem, type PlanOptions, type TimestepSpacing } from './samplingOptions.js';
import { checkScheduleOverrides, readSchedulerConfig, SCHEDULERS, type SchedulerConfigFile, type SchedulerName } from './schedulerConfig.js';
import { IMG2IMG_ARGUMENTS, type Img2ImgNames } from './img2imgNames.js';
import { assertRgb, assertTensor, type RgbImages, type Tensor } from './tensor.js';

export { SCHEDULERS, type SchedulerName, type PlanOptions };
export type { SdComponent } from './modelLayout.js';

export interface DiffusionLoadOptions extends OrtSessionOptions {
  /**
   * Rows of a batch per U-Net run (0: the whole batch; 'lean': 1). With guidance an image is 2 rows;
   * the activations' peak follows the rows of one run (SD 1.x's self-attention at 64×64 holds 0.5 GiB of
   * scores per row), and the result does not change.
   */
  maxRowsPerRun?: number;
  /** Load only these models (default: all four). */
  components?: SdComponent[];
  /** Latent scaling factor (default: vae_decoder/config.json's scaling_factor, else 0.18215). */
  scalingFactor?: number;
  /** Overrides of scheduler/scheduler_config.json's keys (e.g. timestepSpacing). */
  schedule?: ScheduleConfig;
  /**
   * The scheduler a run uses when it names none, instead of the one scheduler_config.json's `_class_name` names
   * (whose other keys, the betas etc., still apply): so a folder whose class the engine does not know loads.
   */
  scheduler?: SchedulerName;
}

/** Progress of one denoising step, as the engine reports it. */
export type StepProgress = NativeStepProgress;

export interface Img2ImgOptions {
  /** Scaled initial latents [B, 4, h, w] (from encodeImages or a brain decoder). */
  z: Tensor;
  /** Conditioning [B, 77, D] (from encodeText or a brain decoder). */
  c: Tensor;
  /** Unconditional embedding [1 | B, 77, D]; default: the text encoder's output for "". */
  uncond?: Tensor;
  strength?: number;
  steps?: number;
  /**
   * Classifier-free guidance scale, from 0 to 100 (MAX_GUIDANCE). Default 5 (Takagi & Nishimoto; diffusers' SD
   * default is 7.5). Guidance runs when > 1 (diffusers' rule): every value in [0, 1] runs c alone, with no
   * unconditional pass, and gives the same result. Above ~20–30 the images saturate; far above 100,
   * guidance × (cond − uncond) overflows float32.
   */
  guidance?: number;
  /** Default: Diffusion.load's `scheduler`, else the one scheduler/scheduler_config.json's _class_name names (PNDM for SD 1.x, and when it names none). */
  scheduler?: SchedulerName;
  /** Karras sigmas (diffusers' use_karras_sigmas) for euler, heun, lms, dpmpp2m, dpmpp2m-sde, unipc. Default: the config's. */
  karras?: boolean;
  /** Timestep spacing; default: the config's, else the scheduler class's own (leading or linspace). */
  timestepSpacing?: TimestepSpacing;
  /** DDIM eta (default 0). */
  eta?: number;
  /**
   * One seed for all images (noise keyed by (seed, image index)) or one per image: integers from 0 to 2⁵³ − 1
   * (9007199254740991, the largest a number holds exactly). Default 0.
   */
  seeds?: number | number[];
  /** Image index of the first image in the job (for continuing a larger job in pieces). Default 0. */
  firstImageIndex?: number;
  /**
   * One noise index per image (non-negative safe integers, e.g. NSD 73k ids) instead of firstImageIndex + position,
   * so an image's noise does not depend on which images share its job or in what order.
   */
  imageIndices?: readonly number[];
  /** Initial noise [B, 4, h, w] to use instead of the engine's Philox stream. */
  noise?: Tensor;
  /**
   * The noise each U-Net call's update consumes, [calls that run, B, 4, h, w] (a call that draws
   * none ignores its slice): with `noise`, reproduces another implementation's stochastic run exactly.
   */
  stepNoise?: Tensor;
  batchSize?: number;
  /** 'diffusers' (default) or 'compvis' (noise one DDIM step above the first step, as in CompVis' img2img). */
  img2imgRule?: 'diffusers' | 'compvis';
  onStep?: (progress: StepProgress) => void;
  /** Stops the job (CancelledError): it interrupts the U-Net call in flight; that step never completes. */
  signal?: AbortSignal;
}

export interface Img2ImgResult {
  latents: Tensor;
  /**
   * The engine's timings and counts, and `unetEvaluations`: the U-Net evaluations of one latent that ran (images ×
   * the U-Net calls the engine ran, not the steps: PNDM's warm-up, Heun's two calls a step; × 2 with guidance: its conditional and unconditional passes), whatever the batch size. One
   * `unetCalls` is a whole batch's step; this is the unit the service's steps/s metrics count.
   */
  stats: Img2ImgStats & { unetEvaluations: number };
}

/** The options each method takes (a record, so the type lists every key): any other key is refused, naming these. */
const IMG2IMG_KEYS: Record<keyof Img2ImgOptions, true> = {
  z: true, c: true, uncond: true, strength: true, steps: true, guidance: true, scheduler: true, karras: true,
  timestepSpacing: true, eta: true, seeds: true, firstImageIndex: true, imageIndices: true, noise: true,
  stepNoise: true, batchSize: true, img2imgRule: true, onStep: true, signal: true,
};
const LOAD_KEYS: Record<Exclude<keyof DiffusionLoadOptions, keyof OrtSessionOptions>, true> = {
  maxRowsPerRun: true, components: true, scalingFactor: true, schedule: true, scheduler: true,
};
const ENCODE_IMAGES_KEYS: Record<keyof EncodeImagesOptions, true> = { mode: true, seeds: true, imageIndices: true, chunk: true, signal: true };
const DECODE_KEYS: Record<keyof DecodeOptions, true> = { chunk: true, signal: true };
const ENCODE_TEXT_KEYS: Record<keyof EncodeTextOptions, true> = { signal: true };

/** `o` an options object whose every key `known` (a record of the keys) names; `what` names the call in the errors. */
function checkOptions(o: unknown, known: object, what: string): void {
  checkOptionsObject(o, Object.keys(known), what);
}

/** encodeImages' options. */
export interface EncodeImagesOptions {
  mode?: 'mean' | 'sample' | 'auto';
  seeds?: number | number[];
  /** One noise index per image (as img2img's imageIndices); default: the image's position. */
  imageIndices?: readonly number[];
  chunk?: number;
  signal?: AbortSignal;
}

/** decode's options. */
export interface DecodeOptions {
  chunk?: number;
  signal?: AbortSignal;
}

export interface EncodeTextOptions {
  signal?: AbortSignal;
}

/**
 * The folder's scheduler config. A load without the U-Net samples nothing, so its folder's class need not be one
 * the engine knows (encode's VAE and text-encoder features read such folders): its keys are still read and
 * checked, and the class's problem is kept for a later call that would need the class.
 */
/**
 * The components whose external data lies behind links that leave their folder (a Hugging Face cache snapshot,
 * a download with links to the cache), as the engine is to load them: from bytes, with the data's real folder
 * (modelSource). The others, every one of an ordinary folder, are loaded from their path.
 */
async function modelsFromMemory(dir: string, components: readonly string[]): Promise<{ fromMemory: NativeLoadOptions['fromMemory']; sources: ModelSource[] }> {
  const out: NonNullable<NativeLoadOptions['fromMemory']> = {};
  const sources: ModelSource[] = [];
  for (const c of components) {
    const src = await modelSource(join(dir, c, 'model.onnx'), c);
    sources.push(src);
    if (src.bytes) out[c] = { bytes: src.bytes, externalDataFolder: src.externalDataFolder!, ...(src.files ? { files: src.files } : {}) };
  }
  return { fromMemory: Object.keys(out).length > 0 ? out : undefined, sources };
}

async function schedulerConfigFor(dir: string, chosen: SchedulerName | undefined, unetLoaded: boolean): Promise<{ schedulerConfig: SchedulerConfigFile; classProblem?: string }> {
  try {
    return { schedulerConfig: await readSchedulerConfig(dir, { scheduler: chosen }) };
  } catch (e) {
    if (unetLoaded || chosen !== undefined || !(e instanceof FormatError)) throw e;
    // (a problem of the keys fails this read too, and is thrown as such; one of the class alone does not)
    const schedulerConfig = await readSchedulerConfig(dir, { scheduler: 'ddim' });
    return { schedulerConfig, classProblem: `${e.message} (this model was loaded without its unet)` };
  }
}

export class Diffusion {
  private handle: SdHandle | null;

  private constructor(
    handle: SdHandle,
    /** The model folder. */
    readonly dir: string,
    /** Models, signatures and the adapted variants. */
    readonly info: SdModelSummary,
    /** The ONNX Runtime in use. */
    readonly runtime: OrtRuntimeInfo,
    /** The folder's CLIP tokenizer (null when the folder has none). */
    readonly tokenizer: ClipTokenizer | null,
    /** The training schedule: the keys scheduler_config.json names, with the load options' overrides. */
    readonly schedule: ScheduleConfig,
    /**
     * The folder's scheduler config: its class and the scheduler that class picks. A load without the U-Net
     * accepts a class the engine does not know (its `scheduler` then reads 'ddim', which nothing runs; defaultScheduler() throws the class's problem).
     */
    readonly schedulerConfig: SchedulerConfigFile,
    readonly scalingFactor: number,
    /** Why the folder's class picks no scheduler, for a load without the U-Net (which samples nothing). */
    private readonly classProblem?: string,
  ) {
    this.handle = handle;
  }

  static async load(dir: string, options: DiffusionLoadOptions = {}): Promise<Diffusion> {
    if (typeof dir !== 'string' || dir.length === 0) throw new InvalidArgumentError('Diffusion.load: dir must be a folder path');
    checkOptions(options, { ...LOAD_KEYS, ...Object.fromEntries(ORT_SESSION_OPTION_KEYS.map((k) => [k, true])) }, 'Diffusion.load');
    if (options.components !== undefined && !Array.isArray(options.components)) {
      throw new InvalidArgumentError(`Diffusion.load: components must be an array of component names (e.g. ['unet']), got ${describeNumber(options.components)}`);
    }
    await checkModelFolder(dir, options.components);
    // (the latents' scale: 0, NaN or Infinity would turn every latent into 0, NaN or Infinity)
    if (options.scalingFactor !== undefined && !isPositiveFinite(options.scalingFactor)) {
      throw new InvalidArgumentError(`Diffusion.load: scalingFactor must be a finite number > 0, got ${describeNumber(options.scalingFactor)}`);
    }
    const session = nativeSessionOptions(options, 'Diffusion.load');
    const runtime = nativeSync((b) => b.ortLoad(session.ortLibrary));
    const chosen = options.scheduler === undefined ? undefined : checkSchedulerName(options.scheduler, 'Diffusion.load scheduler');
    const { schedulerConfig, classProblem } = await schedulerConfigFor(dir, chosen, !options.components || options.components.includes('unet'));
    // (the overrides' errors name the option; the merged schedule's, the file and the option)
    const schedule =
      options.schedule === undefined
        ? schedulerConfig.schedule
        : {
            ...schedulerConfig.schedule,
            ...checkScheduleOverrides(options.schedule, 'Diffusion.load schedule'),
            source: `${schedulerConfig.source} with Diffusion.load's schedule overrides`,
          };
    let scalingFactor = options.scalingFactor ?? 0.18215;
    if (options.scalingFactor === undefined) {
      for (const cfg of ['vae_decoder/config.json', 'vae/config.json']) {
        // absent: SD 1.x's 0.18215; present, it must parse (a typed error naming file:line:column)
        // (under model roots: checked whether or not it exists, and read from the very file checked)
        if (!(await modelPathExists(join(dir, cfg), 'the file'))) continue;
        const json = await readJsonObject(join(dir, cfg), 'a VAE config object', (p) => readModelFile(p, 'the file'));
        if (json.scaling_factor !== undefined) {
          if (!isPositiveFinite(json.scaling_factor)) {
            throw new FormatError(`${join(dir, cfg)}: scaling_factor must be a finite number > 0, got ${JSON.stringify(json.scaling_factor)}`);
          }
          scalingFactor = json.scaling_factor;
        }
        break;
      }
    }
    const components = options.components;
    const wantsText = !components || components.includes('text_encoder');
    const tokenizer = wantsText ? await ClipTokenizer.fromFolder(dir) : null;
    const maxRowsPerRun = options.maxRowsPerRun === undefined ? undefined : checkInteger(options.maxRowsPerRun, 'maxRowsPerRun', 'Diffusion.load', 0, INT32_MAX);
    const { fromMemory, sources } = await modelsFromMemory(dir, components ?? SD_COMPONENTS);
    const { handle, summary } = await nativeJob('Diffusion.load', (b) => b.sdLoad({ dir, ...session, maxRowsPerRun, components, fromMemory })).catch(
      async (e: unknown) => {
        // (those from bytes had their locations checked as they were read)
        const byPath = (components ?? SD_COMPONENTS).filter((c) => !fromMemory?.[c]).map((c) => join(dir, c, 'model.onnx'));
        throw await loadFailure(byPath.filter((p) => existsSync(p)), e);
      },
    );
    const sd = new Diffusion(handle, dir, summary, runtime, tokenizer, schedule, schedulerConfig, scalingFactor, classProblem);
    // (under model roots: the files ONNX Runtime opened by path are still those checked)
    await verifyLoaded(sources, () => sd.dispose());
    // (for the record of what ran the stage that loaded it: runVersions.ts)
    noteEngineOrt(runtime);
    return sd;
  }

  /** Token ids [captions.length, 77] (int32). Captions that are not an array of strings are refused, naming the index. */
  tokenize(captions: string[]): Int32Array {
    return this.tokenizeChecked(captions, 'tokenize');
  }

  private tokenizeChecked(captions: unknown, what: string, expected?: string): Int32Array {
    const texts = checkCaptions(captions, what, expected);
    if (!this.tokenizer) throw new InvalidArgumentError(`${this.dir}: loaded without a tokenizer/text_encoder`);
    return this.tokenizer.encodeBatch(texts);
  }

  /**
   * Text conditioning c [B, 77, D] from captions, or from token ids [B·77] given directly. `signal` stops the job
   * (CancelledError): it interrupts the text encoder's run in flight (ONNX Runtime's terminate flag).
   */
  async encodeText(captions: string[] | Int32Array, options: EncodeTextOptions = {}): Promise<Tensor> {
    checkOptions(options, ENCODE_TEXT_KEYS, 'encodeText');
    const seq = this.tokenizer?.maxLength ?? 77;
    const ids = captions instanceof Int32Array ? captions : this.tokenizeChecked(captions, 'encodeText', 'an array of captions (string[]) or token ids (Int32Array)');
    if (ids.length === 0 || ids.length % seq !== 0) {
      throw new ShapeError(`encodeText: expected captions or token ids of length B·${seq}, got ${ids.length} ids`);
    }
    const batch = ids.length / seq;
    const handle = this.live();
    const { data, dim } = await nativeJob('encodeText', (b, token) => b.sdEncodeText(handle, ids, batch, seq, token), options.signal);
    return { data, shape: [batch, seq, dim] };
  }

  /**
   * Scaled latents z [B, 4, H/8, W/8] of RGB images: the posterior mean (default) or a sample keyed by (seed, image index).
   * `signal` stops the job (CancelledError): it interrupts the chunk of `chunk` images in flight (ONNX Runtime's
   * terminate flag) and runs no further chunk. `images.data` is read in place while the job runs (each chunk converted
   * to the VAE's float input on the engine's thread, not the whole batch on the JS thread first): leave it unchanged
   * until the promise settles.
   */
  async encodeImages(images: RgbImages, options: EncodeImagesOptions = {}): Promise<Tensor> {
    assertRgb(images, 'encodeImages images');
    // (an option put among the images, `encodeImages({data, …, signal})`, was dropped without a word: aborting did nothing)
    const misplaced = Object.keys(images).filter((k) => Object.hasOwn(ENCODE_IMAGES_KEYS, k));
    if (misplaced.length) {
      throw new InvalidArgumentError(
        `encodeImages images: ${misplaced.map((k) => `'${k}'`).join(', ')} ${misplaced.length > 1 ? 'are options' : 'is an option'}: pass ${misplaced.length > 1 ? 'them' : 'it'} in the second argument, encodeImages(images, { ${misplaced.join(', ')} })`,
      );
    }
    checkOptions(options, ENCODE_IMAGES_KEYS, 'encodeImages');
    if (images.height % 8 !== 0 || images.width % 8 !== 0) {
      throw new ShapeError(`encodeImages: image size ${images.width}×${images.height} is not a multiple of 8`);
    }
    // a VAE encoder exported at one image size takes that size only: named here, not by the engine's buffer
    const enc = this.declaredMismatch('vae_encoder', [images.count, 3, images.height, images.width], 'sample');
    if (enc) {
      throw new ShapeError(
        `encodeImages: images are ${images.width}×${images.height} pixels ([${images.count}, ${images.height}, ${images.width}, 3]) but the VAE encoder (${enc.path}) takes ${enc.input}: expected ${enc.expected[3]}×${enc.expected[2]}-pixel images`,
      );
    }
    const { seeds, indices } = noiseKeys(options.seeds, images.count, 0, 'encodeImages');
    if (options.imageIndices !== undefined) indices.set(givenImageIndices(options.imageIndices, images.count, 'encodeImages'));
    const chunk = chunkOption(options.chunk, 'encodeImages');
    const handle = this.live();
    const r = await nativeJob(
      'encodeImages',
      (b, token) =>
      b.sdEncodeImages(
        handle,
        images.data,
        images.count,
        images.height,
        images.width,
        options.mode ?? 'auto',
        seeds,
        indices,
        this.scalingFactor,
        chunk,
        token,
      ),
      options.signal,
    );
    return { data: r.data, shape: [images.count, r.channels, r.height, r.width] };
  }

  /**
   * RGB images of scaled latents z [B, 4, h, w]. `signal` stops the job (CancelledError): it interrupts the chunk of
   * `chunk` latents in flight (ONNX Runtime's terminate flag) and runs no further chunk.
   */
  async decode(z: Tensor, options: DecodeOptions = {}): Promise<RgbImages> {
    assertTensor(z, 'decode z', 4);
    checkOptions(options, DECODE_KEYS, 'decode');
    const [b, c, h, w] = z.shape;
    // a VAE decoder exported at one latent size (or its channels) takes that shape only: named here, not by the engine's buffer
    const dec = this.declaredMismatch('vae_decoder', z.shape, 'latent_sample');
    if (dec) {
      throw new ShapeError(
        `decode: z has shape [${z.shape.join(', ')}] but the VAE decoder (${dec.path}) takes ${dec.input}: expected [${dec.expected.join(', ')}] (the latents of ${8 * dec.expected[3]}×${8 * dec.expected[2]}-pixel images)`,
      );
    }
    const handle = this.live();
    const chunk = chunkOption(options.chunk, 'decode');
    const r = await nativeJob('decode', (n, token) => n.sdDecode(handle, z.data, b, c, h, w, this.scalingFactor, chunk, token), options.signal);
    return { data: r.rgb, count: b, height: r.height, width: r.width };
  }

  /**
   * The steps a run would take (timesteps, ᾱ, σ), without running anything. It takes img2img's options too (so the
   * same object can be planned, then run: those that do not shape the plan, z, c, guidance…, are not read); any
   * other key is refused.
   */
  plan(options: PlanOptions | Img2ImgOptions = {}): SamplerPlanInfo {
    checkOptions(options, IMG2IMG_KEYS, 'Diffusion.plan');
    const planOptions = this.planOptions(options, 'Diffusion.plan');
    return planRun(planOptions);
  }

  /**
   * z, c and uncond checked against each other and the loaded U-Net as img2img checks them, without running
   * anything: a service checks a request's arrays so before queueing it, its problems naming the request's fields
   * (`names`: img2imgFields('body.')). Without uncond (and guidance > 1) the text encoder's embedding of "" is the
   * unconditional input: c is checked against its sequence length (the tokenizer's), and its width once encoded.
   */
  checkImg2ImgShapes(o: Pick<Img2ImgOptions, 'z' | 'c' | 'uncond' | 'guidance'>, names: Img2ImgNames = IMG2IMG_ARGUMENTS): void {
    assertTensor(o.z, names.label('z'), 4);
    assertTensor(o.c, names.label('c'), 3);
    const [count, channels] = o.z.shape;
    const [rows, seq, dim] = o.c.shape;
    const shape = (t: Tensor) => `[${t.shape.join(', ')}]`;
    if (rows !== count) {
      throw new ShapeError(names.problem('c', `has ${rows} rows (${shape(o.c)}) but ${names.cite('z')} has ${count} images (${shape(o.z)}); expected one row of c per image`));
    }
    if (count < 1) throw new ShapeError(names.problem('z', 'has no images'));
    if (this.info.condDim > 0 && dim !== this.info.condDim) {
      throw new ShapeError(names.problem('c', `has width ${dim} (${shape(o.c)}) but the U-Net expects encoder_hidden_states of width ${this.info.condDim}`));
    }
    if (channels !== this.info.latentChannels) {
      throw new ShapeError(names.problem('z', `has shape ${shape(o.z)} but the U-Net expects ${this.info.latentChannels} latent channels`));
    }
    // a U-Net exported at one latent size or sequence length (the demo world's) runs at that size only
    this.checkUnetInput('z', o.z.shape, 'sample', names);
    this.checkUnetInput('c', o.c.shape, 'encoder_hidden_states', names);
    const guidance = o.guidance === undefined ? 5 : o.guidance;
    // (no uncond pass at guidance 1 or below; a guidance that is not a number is img2img's to refuse)
    if (!(typeof guidance === 'number' && guided(guidance))) return;
    if (o.uncond) {
      const u = o.uncond;
      assertTensor(u, names.label('uncond'), 3);
      const [ub, useq, udim] = u.shape;
      // The two are compared with each other; where the tokenizer's length (encodeText's) tells which of the two
      // has it, the other is the one named: an uncond of encodeText beside a c of 76 tokens is c's problem.
      const tokens = this.tokenizer?.maxLength;
      if (tokens !== undefined && udim === dim && (ub === 1 || ub === count) && useq === tokens && seq !== tokens) {
        throw new ShapeError(
          names.problem('c', `has shape ${shape(o.c)}, expected [${count}, ${tokens}, ${dim}]: ${tokens} tokens, the tokenizer's sequence length, which ${names.cite('uncond')} ${shape(u)} has (encodeText's)`),
        );
      }
      if ((ub !== 1 && ub !== count) || useq !== seq || udim !== dim) {
        const rows = count === 1 ? '1' : `1 or ${count}`;
        throw new ShapeError(
          names.problem('uncond', `has shape ${shape(u)}, expected [${rows}, ${seq}, ${dim}]: the sequence length and width of ${names.cite('c')} ${shape(o.c)}, its pair in classifier-free guidance`),
        );
      }
    } else if (this.emptyEmbedding) {
      checkCondAgainstEmpty(o.c, count, this.emptyEmbedding.shape[1], this.emptyEmbedding.shape[2], names);
    } else if (this.tokenizer) {
      // (encodeText pads every caption to the tokenizer's length; the width is the encoder's, known once it runs)
      checkCondAgainstEmpty(o.c, count, this.tokenizer.maxLength, this.info.condDim > 0 ? this.info.condDim : dim, names);
    }
  }

  /** Adds noise to z up to `strength` and denoises it conditioned on c; returns the final latents. */
  async img2img(options: Img2ImgOptions): Promise<Img2ImgResult> {
    const o = options;
    checkOptions(o, IMG2IMG_KEYS, 'img2img');
    // (the engine calls onStep from its loop: a bad one would be its TypeError, after the text encoder's run)
    checkControl(o, 'img2img', ['onStep']);
    this.live();
    this.checkImg2ImgShapes(o);
    const [count, channels, height, width] = o.z.shape;
    const [, seq, dim] = o.c.shape;
    // (only a missing option takes its default: an explicit null is refused like any other wrong value, as the types say)
    const guidance = o.guidance === undefined ? 5 : o.guidance;
    // (a negative one would run as 1 in silence; a huge one overflows at the run's end: see Img2ImgOptions.guidance)
    if (typeof guidance !== 'number' || !(guidance >= 0 && guidance <= MAX_GUIDANCE)) {
      throw new InvalidArgumentError(`img2img guidance: expected ${GUIDANCE_EXPECTED}, got ${describeNumber(guidance)}`);
    }
    const batchSize = checkInteger(o.batchSize === undefined ? 1 : o.batchSize, 'batchSize', 'img2img', 1, INT32_MAX);
    const plan = this.planOptions(o, 'img2img');
    let uncond: Tensor | undefined;
    if (guided(guidance)) {
      // (the cached embedding of "" is taken without an await, so that the call enters the engine's queue when it is
      // made, in call order: awaiting it even when cached let calls made later queue ahead, reviewer s24-R5. Only a
      // Diffusion's first guided run without uncond encodes "" first, and queues once that is done.)
      uncond = o.uncond ?? this.emptyEmbedding ?? (await this.emptyPromptFor(o.signal));
      // (checked before the run as far as it was known: the "" embedding's width is known once it is encoded)
      if (!o.uncond) checkCondAgainstEmpty(o.c, count, uncond.shape[1], uncond.shape[2], IMG2IMG_ARGUMENTS);
    }
    if (o.noise) {
      assertTensor(o.noise, 'img2img noise', 4);
      if (o.noise.shape.join() !== o.z.shape.join()) {
        throw new ShapeError(`img2img: noise has shape [${o.noise.shape.join(', ')}], expected z's [${o.z.shape.join(', ')}]`);
      }
    }
    if (o.stepNoise) {
      assertTensor(o.stepNoise, 'img2img stepNoise', 5);
      const info = planRun(plan);
      // (a deterministic run ignores it: the same latents as without it, which would pass for a reproduction)
      const ignored = stepNoiseProblem(info, 'img2img stepNoise');
      if (ignored) throw new InvalidArgumentError(ignored);
      const calls = info.runs.length;
      const want = [calls, ...o.z.shape];
      if (o.stepNoise.shape.join() !== want.join()) {
        throw new ShapeError(
          `img2img: stepNoise has shape [${o.stepNoise.shape.join(', ')}], expected [${want.join(', ')}] (the ${calls} U-Net calls that run, then z's shape)`,
        );
      }
    }
    if (o.imageIndices !== undefined && o.firstImageIndex !== undefined) {
      throw new InvalidArgumentError('img2img: give imageIndices or firstImageIndex, not both');
    }
    const { seeds, indices } = noiseKeys(o.seeds, count, o.firstImageIndex === undefined ? 0 : o.firstImageIndex, 'img2img');
    if (o.imageIndices !== undefined) indices.set(givenImageIndices(o.imageIndices, count, 'img2img'));
    const handle = this.live();
    const r = await nativeJob(
      'img2img',
      (b, token) =>
        b.sdImg2Img(
          handle,
        {
          plan,
          guidance,
          count,
          channels,
          height,
          width,
          seq,
          dim,
          z: o.z.data,
          cond: o.c.data,
          uncond: uncond?.data,
          uncondRows: uncond?.shape[0],
          noise: o.noise?.data,
          stepNoise: o.stepNoise?.data,
          seeds,
          imageIndices: indices,
          batchSize,
        },
          o.onStep,
          token,
        ),
      o.signal,
    );
    // every batch runs the same steps: unetCalls / batches of them, each over its images (× 2 with guidance)
    const steps = r.stats.batches > 0 ? r.stats.unetCalls / r.stats.batches : 0;
    const unetEvaluations = count * steps * (guided(guidance) ? 2 : 1);
    return { latents: { data: r.latents, shape: [count, channels, height, width] }, stats: { ...r.stats, unetEvaluations } };
  }

  dispose(): void {
    const handle = this.handle;
    if (handle) nativeSync((b) => b.sdDispose(handle));
    this.handle = null;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
  }

  private emptyCache: Promise<Tensor> | null = null;
  /** The text encoder's embedding of "", once emptyPrompt has it. */
  private emptyEmbedding: Tensor | undefined;
  private emptyPrompt(): Promise<Tensor> {
    if (!this.emptyCache) {
      const encoding = this.encodeText(['']).then((t) => (this.emptyEmbedding = t));
      // (a failed encode is not kept, the next guided run tries again; nor is it an unhandled rejection when the run
      // that started it was aborted and left it)
      encoding.catch(() => {
        if (this.emptyCache === encoding) this.emptyCache = null;
      });
      this.emptyCache = encoding;
    }
    return this.emptyCache;
  }

  /**
   * emptyPrompt for one img2img run: its abort rejects the run at once, before or during the encode of "" (which
   * goes on without it, shared by the runs that wait for it, and kept for the next). The encode took no signal: a
   * run aborted before it started waited for the whole encode (1–1.5 s on a slow encoder), reviewer s39.
   */
  private async emptyPromptFor(signal: AbortSignal | undefined): Promise<Tensor> {
    if (signal?.aborted) throw abortedBeforeStart('img2img', signal);
    if (!signal) return this.emptyPrompt();
    let onAbort = (): void => {};
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(new CancelledError('img2img: cancelled while the empty prompt was encoded', { cause: signal.reason }));
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([this.emptyPrompt(), aborted]);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** The scheduler a run uses when it names none: Diffusion.load's `scheduler`, else the one the folder's config names. */
  defaultScheduler(): SchedulerName {
    if (this.classProblem !== undefined) throw new FormatError(this.classProblem);
    return this.schedulerConfig.scheduler;
  }

  /** `what` names the call in the errors ('img2img steps: expected …'). */
  private planOptions(o: PlanOptions, what: 'img2img' | 'Diffusion.plan'): NativePlanOptions {
    if (o.scheduler === undefined && this.classProblem !== undefined) throw new FormatError(this.classProblem);
    return resolvePlanOptions({ schedule: this.schedule, scheduler: this.schedulerConfig.scheduler }, o, callLabels(what));
  }

  /**
   * `shape` (the option `option`: z or c) against the sizes the loaded U-Net's input `input` fixes (numbers in its
   * signature; the batch is the engine's to split), so a mismatch names the option here, not an engine buffer.
   */
  private checkUnetInput(option: 'z' | 'c', shape: number[], input: 'sample' | 'encoder_hidden_states', names: Img2ImgNames): void {
    const m = this.declaredMismatch('unet', shape, input);
    if (!m) return;
    const pixels = option === 'z' ? ` (the latents of ${8 * m.expected[3]}×${8 * m.expected[2]}-pixel images)` : '';
    throw new ShapeError(names.problem(option, `has shape [${shape.join(', ')}] but the U-Net (${m.path}) takes ${m.input}: expected [${m.expected.join(', ')}]${pixels}`));
  }

  /**
   * The shape the loaded `component`'s input `input` (else its one input of that rank) takes for `shape`: the sizes
   * its signature fixes (numbers; the batch, dimension 0, is the engine's to split) in place of `shape`'s, with the
   * file and the declared input for the message; null when `shape` fits (or nothing is declared to compare with).
   */
  private declaredMismatch(component: string, shape: readonly number[], input: string): { expected: number[]; path: string; input: string } | null {
    const model = this.info.models.find((m) => m.component === component);
    const rank = shape.length;
    const decl = model?.inputs.find((i) => i.name === input) ?? model?.inputs.find((i) => i.shape.length === rank);
    if (!model || !decl || decl.shape.length !== rank) return null;
    const expected = shape.map((n, k) => (k > 0 && typeof decl.shape[k] === 'number' ? (decl.shape[k] as number) : n));
    if (expected.every((n, k) => n === shape[k])) return null;
    return { expected, path: model.path, input: `${decl.name} [${decl.shape.join(', ')}]` };
  }

  private live(): SdHandle {
    if (!this.handle) throw new InvalidArgumentError(`Diffusion(${this.dir}) was disposed`);
    return this.handle;
  }
}

/** Per-image (seed, image index) pairs of a job. */
/** A chunk option (images or latents per VAE call; default 1), checked here: the engine's words named its own entry point. */
function chunkOption(chunk: unknown, what: string): number {
  return chunk === undefined ? 1 : checkInteger(chunk, 'chunk', what, 1, INT32_MAX);
}

function isPositiveFinite(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0;
}

/**
 * `what`, when given, names the call in the errors ('referenceImg2Img seeds: …'). Only an undefined seedOption means
 * the default (0): a null one is refused like any other wrong seed.
 */
export function noiseKeys(seedOption: number | number[] | undefined, count: number, first: number, what?: string): { seeds: Float64Array; indices: Float64Array } {
  const seeds = new Float64Array(count);
  const indices = new Float64Array(count);
  const at = what === undefined ? '' : `${what} `;
  const check = (s: number, i: number): number => {
    if (!Number.isSafeInteger(s) || s < 0 || s > MAX_SEED) {
      throw new InvalidArgumentError(`${at}seeds${Array.isArray(seedOption) ? `[${i}]` : ''}: expected ${SEED_EXPECTED}, got ${describeNumber(s)}`);
    }
    return s;
  };
  // (an image's noise is keyed by its index: a fractional or negative one would reuse or alias another image's;
  // the last image's index must be a safe integer too)
  checkIntegerAt(first, `${at}firstImageIndex`, 0, Number.MAX_SAFE_INTEGER - count);
  if (Array.isArray(seedOption) && seedOption.length !== count) {
    throw new InvalidArgumentError(`${at}seeds: expected one seed per image (${count}), got an array of ${seedOption.length}`);
  }
  for (let i = 0; i < count; i++) {
    seeds[i] = check(Array.isArray(seedOption) ? seedOption[i] : seedOption === undefined ? 0 : seedOption, i);
    indices[i] = first + i;
  }
  return { seeds, indices };
}


/** The noise indices given per image (imageIndices), checked: one non-negative safe integer per image. */
function givenImageIndices(given: readonly number[], count: number, what: string): Float64Array {
  if (!Array.isArray(given) || given.length !== count) {
    throw new InvalidArgumentError(`${what} imageIndices: expected one entry per image (${count}), got ${describeNumber(given)}`);
  }
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) out[i] = checkIntegerAt(given[i], `${what} imageIndices[${i}]`, 0, Number.MAX_SAFE_INTEGER);
  return out;
}

/**
 * c against the text encoder's embedding of "" (sequence length `seq`, width `dim`), the unconditional input when
 * no uncond is given: it fixes both, so a c that differs is c's fault (not that of an uncond the caller never sent).
 */
function checkCondAgainstEmpty(c: Tensor, count: number, seq: number, dim: number, names: Img2ImgNames): void {
  if (c.shape[1] === seq && c.shape[2] === dim) return;
  throw new ShapeError(
    names.problem(
      'c',
      `has shape [${c.shape.join(', ')}], expected [${count}, ${seq}, ${dim}]: the text encoder's sequence length is ${seq} (its embedding of "" is the unconditional input when guidance > 1)`,
    ),
  );
}
