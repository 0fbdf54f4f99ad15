/** Typings of the sampler part of the native addon (native/addon/addon_sampler.cpp, addon_onnx_model.cpp). */
import type { CancelToken } from './engineTypes.js';

export interface OrtRuntimeInfo {
  libraryPath: string;
  version: string;
  apiVersion: number;
  /** The execution providers a session can ask for (GetAvailableProviders() less providersWithoutLibrary). */
  providers: string[];
  /**
   * Providers compiled into this ONNX Runtime whose shared library, loaded from the core's folder, is not there, with
   * the file expected: onnxruntime-node's core and the copy shipped with the prebuilt engine list CUDA and TensorRT
   * but come without their libraries (a CUDA build of ONNX Runtime, BRAINLATENT_ORT_LIB, has them: docs/cuda.md).
   */
  providersWithoutLibrary: { provider: string; missing: string }[];
}

/** An input or output of an ONNX model: name, element type, shape. */
export interface SdTensorInfo {
  name: string;
  dtype: string;
  /** Fixed sizes as numbers, symbolic dimensions by name. */
  shape: (number | string)[];
}

export interface SdModelSummary {
  models: { component: string; path: string; inputs: SdTensorInfo[]; outputs: SdTensorInfo[] }[];
  /** How the models run: 'cpu', 'cuda (built-in)', 'cuda (plugin: <library>)', or the provider's name. */
  provider: string;
  inputIdsDtype: string;
  textSequence: number;
  timestepDtype: string;
  timestepRank: number;
  vaeEncoderOutput: string;
  condDim: number;
  latentChannels: number;
}

/** scheduler/scheduler_config.json, camelCased: the keys a file names (absent ones take the class's defaults). */
export interface ScheduleConfig {
  numTrainTimesteps?: number;
  betaStart?: number;
  betaEnd?: number;
  betaSchedule?: string;
  setAlphaToOne?: boolean;
  stepsOffset?: number;
  timestepSpacing?: 'leading' | 'trailing' | 'linspace';
  predictionType?: string;
  clipSample?: boolean;
  clipSampleRange?: number;
  useKarrasSigmas?: boolean;
  sigmaMin?: number;
  sigmaMax?: number;
  varianceType?: string;
  /** PNDM: the engine runs skip_prk_steps only (SD 1.x's setting). */
  skipPrkSteps?: boolean;
  /** Named in errors: the file it came from. */
  source?: string;
}

export interface NativePlanOptions {
  schedule: ScheduleConfig;
  scheduler: string;
  steps: number;
  strength: number;
  eta: number;
  img2imgRule: string;
}

/** One U-Net call of a sampling plan. */
export interface PlannedStepInfo {
  /** diffusers' step_index: the position in the full timestep list. */
  index: number;
  /** What the U-Net receives (an int64 U-Net gets it truncated). */
  timestep: number;
  /**
   * ᾱ of this call: for ddim, pndm and ddpm the training table's at its timestep; for the σ-based schedulers
   * 1/(1 + σ²) of its σ, which is float32 as diffusers keeps it (so at t = 999 it differs from the table's
   * float64 ᾱ in the 9th digit), the same value as the plan's noiseAlphaCumprod for the first call under the diffusers img2img rule.
   */
  alphaCumprod: number;
  /** The scheduler's σ for this call (√((1 − ᾱ)/ᾱ) for the ᾱ-indexed ones; float32, as diffusers', for the others). */
  sigma: number;
  modelInputScale: number;
  /** Whether this call's update draws noise. */
  drawsNoise: boolean;
}

export interface SamplerPlanInfo {
  scheduler: string;
  steps: number;
  strength: number;
  eta: number;
  /**
   * The largest eta these steps allow: for ddim, the smallest over the steps that run of
   * √((1 − ᾱ_t)·ᾱ_prev / (ᾱ_prev − ᾱ_t)) (DDIM's noise must stay within 1 − ᾱ_prev; > 1, exactly 1 when the last
   * step ends at ᾱ = 1; Infinity when no step bounds it, null in JSON); 0 for the other schedulers.
   */
  maxEta: number;
  tStart: number;
  noiseTimestep: number;
  /** ᾱ of the noise the input latent gets (at noiseTimestep), computed as the runs' alphaCumprod is. */
  noiseAlphaCumprod: number;
  initLatentScale: number;
  initNoiseScale: number;
  /** t_start · order: the first step_index that runs (diffusers' set_begin_index). */
  beginIndex: number;
  karras: boolean;
  timestepSpacing: string;
  /** The diffusers class this scheduler is. */
  className: string;
  /** Per-image state buffers the fused step keeps (multistep history, saved samples). */
  historyBuffers: number;
  stochastic: boolean;
  /** The scheduler's full timestep list for these steps (before strength). */
  timesteps: number[];
  /** The U-Net calls that run. */
  runs: PlannedStepInfo[];
}

/** Progress of the sampler after each U-Net step. */
export interface NativeStepProgress {
  /** 1-based step among those that run, within the current batch. */
  step: number;
  total: number;
  /** First image of the batch and its size. */
  batchFirst: number;
  batchImages: number;
  timestep: number;
  unetSeconds: number;
}

export interface Img2ImgStats {
  loopSeconds: number;
  unetSeconds: number;
  updateSeconds: number;
  unetCalls: number;
  batches: number;
}

export interface NativeImg2ImgJob {
  plan: NativePlanOptions;
  guidance: number;
  count: number;
  channels: number;
  height: number;
  width: number;
  seq: number;
  dim: number;
  z: Float32Array;
  cond: Float32Array;
  uncond?: Float32Array;
  uncondRows?: number;
  noise?: Float32Array;
  stepNoise?: Float32Array;
  seeds: Float64Array;
  imageIndices: Float64Array;
  batchSize: number;
}

/** How the addon makes an ONNX Runtime session: the library and the session's settings (native/addon/ort_options.h), from ts/sd/native.ts nativeSessionOptions. */
export interface NativeOrtSessionOptions {
  ortLibrary: string;
  intraOpThreads?: number;
  interOpThreads?: number;
  provider?: string;
  deviceId?: number;
  providerLibrary?: string;
  providerOptions?: Record<string, string>;
  spinning?: boolean;
  optimization?: string;
  memory?: string;
  memoryArena?: boolean;
  memoryPattern?: boolean;
  prepacking?: boolean;
  initializersMalloc?: boolean;
}

export interface NativeLoadOptions extends NativeOrtSessionOptions {
  dir: string;
  maxRowsPerRun?: number;
  components?: string[];
  /**
   * Components loaded from these bytes (read during the load only) instead of <dir>/<component>/model.onnx, their
   * external data from externalDataFolder (ts/sd/modelSource.ts: external data behind links that leave the folder),
   * or, with `files` (under a service's model roots), from those files as checked, opened by the engine itself.
   */
  fromMemory?: Record<string, { bytes: Uint8Array; externalDataFolder: string; files?: NativeCheckedFile[] }>;
}

/** An opaque native pipeline handle. */
export type SdHandle = { readonly __sdHandle: unique symbol };

export interface SamplerBinding {
  ortLoad(path: string): OrtRuntimeInfo;
  sdLoad(options: NativeLoadOptions): Promise<{ handle: SdHandle; summary: SdModelSummary }>;
  sdDispose(handle: SdHandle): void;
  sdEncodeText(
    handle: SdHandle,
    ids: Int32Array,
    batch: number,
    seq: number,
    /** Interrupts the text encoder's run in flight. */
    cancelToken?: CancelToken,
  ): Promise<{ data: Float32Array; dim: number }>;
  sdEncodeImages(
    handle: SdHandle,
    rgb: Uint8Array,
    batch: number,
    height: number,
    width: number,
    mode: string,
    seeds: Float64Array,
    imageIndices: Float64Array,
    scaling: number,
    chunk: number,
    /** Stops the job before its next chunk of images. */
    cancelToken?: CancelToken,
  ): Promise<{ data: Float32Array; channels: number; height: number; width: number }>;
  sdDecode(
    handle: SdHandle,
    latents: Float32Array,
    batch: number,
    channels: number,
    h: number,
    w: number,
    scaling: number,
    chunk: number,
    /** Stops the job before its next chunk of latents. */
    cancelToken?: CancelToken,
  ): Promise<{ rgb: Uint8Array; height: number; width: number }>;
  /** onStep events all arrive before the promise settles; cancelling the token stops the loop before its next step. */
  sdImg2Img(
    handle: SdHandle,
    job: NativeImg2ImgJob,
    onStep?: (p: NativeStepProgress) => void,
    cancel?: CancelToken,
  ): Promise<{ latents: Float32Array; stats: Img2ImgStats }>;
  sdPlan(options: NativePlanOptions): SamplerPlanInfo;
  sdAlphasCumprod(schedule: ScheduleConfig, scheduler?: string): Float64Array;
  philoxNormal(seed: number, imageIndex: number, stream: number, first: number, count: number): Float32Array;
}

/** An opaque native ONNX model handle (OnnxModel). */
export type OnnxHandle = { readonly __onnxHandle: unique symbol };

/**
 * A model's external data file as a service's model roots checked it (ts/sd/modelRoots.ts CheckedDataFile): the
 * engine opens `path`, refuses it unless it is still the file of device `dev` and inode `ino`, and hands its bytes to
 * ONNX Runtime under `location`.
 */
export interface NativeCheckedFile {
  location: string;
  path: string;
  dev: bigint;
  ino: bigint;
  what: string;
  /** The tensor that needs the file's furthest bytes: a file shorter is refused naming both (an InvalidModel). */
  furthest?: { tensor: string; where?: string; offset: number; length: number };
}

/**
 * A model file (`path`), or a model's serialized bytes whose external weights are in `externalDataFolder`, or (with
 * `files`) come from the files checked.
 */
export type NativeOnnxLoadOptions = NativeOrtSessionOptions &
  ({ path: string } | { bytes: Uint8Array; name: string; externalDataFolder: string; files?: NativeCheckedFile[] });

export interface NativeOnnxInput {
  name: string;
  data: Float32Array | Float64Array | Int32Array | BigInt64Array;
  shape: number[];
}

export interface OnnxModelBinding {
  onnxLoad(
    options: NativeOnnxLoadOptions,
  ): Promise<{ handle: OnnxHandle; inputs: SdTensorInfo[]; outputs: SdTensorInfo[]; provider: string }>;
  onnxDispose(handle: OnnxHandle): void;
  /** Cancelling the token stops a run in flight (ONNX Runtime's terminate flag). */
  onnxRun(
    handle: OnnxHandle,
    inputs: NativeOnnxInput[],
    outputNames: string[],
    cancel?: CancelToken,
  ): Promise<{ name: string; data: Float32Array; shape: number[] }[]>;
}
