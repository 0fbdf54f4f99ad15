/**
 * Any ONNX model on the engine's ONNX Runtime — the same runtime and session code as the SD
 * pipeline, so no second runtime (onnxruntime-node) is needed in the process.
 *
 * ```ts
 * const model = await OnnxModel.load('unet-with-layers/model.onnx', { intraOpThreads: 2 });
 * model.inputs;   // [{name: 'sample', dtype: 'float32', shape: ['batch', 4, 'h', 'w']}, …]
 * const out = await model.run(
 *   { sample: { data: x, shape: [B, 4, h, w] }, timestep: { data: Float32Array.of(981), shape: [] },
 *     encoder_hidden_states: { data: c, shape: [B, 77, 768] } },
 *   ['/down_blocks.1/Add_output_0', 'out_sample'],
 *   { signal },
 * );
 * out['out_sample'];  // {data: Float32Array, shape: number[]}
 * model.dispose();
 * ```
 *
 * - `OnnxModel.fromBytes(bytes, {name, externalDataFolder})` loads a model made in memory (a U-Net with
 *   layers exposed) whose external weights stay in the original model's folder.
 * - `run` takes every declared input by name and returns the requested outputs (graph outputs, e.g.
 *   U-Net layers exposed by `exposeUnetLayers`) as float32 `{data, shape}`; the arrays are ONNX
 *   Runtime's own buffers, handed over without a copy, except a float16 output's (a float16 export's
 *   layers), converted to float32 in the engine (exactly). It runs off the main thread and returns a
 *   Promise; an AbortSignal stops it (the engine sets ONNX Runtime's terminate flag, so even a long
 *   call stops promptly) with a `CancelledError`.
 * - Input arrays are read in place when their type is the declared one (Float32Array for float32,
 *   BigInt64Array for int64, …); otherwise they are converted once — to an integer input by
 *   truncation toward zero, as diffusers' `np.array([t], dtype=int64)` does with a float timestep,
 *   and to a float16 input (a float16 export's) by rounding to nearest even.
 *   Input arrays must not be modified until the Promise settles.
 * - Errors name the model file and the input or output: an unknown or missing name (listing the
 *   model's own), a shape that disagrees with the declaration (`ShapeError`), an output that is not
 *   float32 or float16.
 * - `unetFeatures(model, {sample, timestep, cond}, layers)` builds the U-Net's three inputs for the
 *   model's declared timestep type and rank (float32 or int64, rank 0 or [B]) and runs it.
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';

import { InvalidArgumentError, MissingFileError } from '../errors.js';
import { nativeJob, nativeSync } from '../native/call.js';
import { noteEngineOrt } from '../native/ortUse.js';
import type { NativeOnnxInput, OnnxHandle, SdTensorInfo } from '../native/samplerTypes.js';
import { checkOptionsObject } from '../ridge/options.js';
import { modelPathExists, type CheckedDataFile } from './modelRoots.js';
import { loadFailure, modelSource, verifyLoaded } from './modelSource.js';
import { nativeSessionOptions, ORT_SESSION_OPTION_KEYS, type OrtSessionOptions } from './native.js';
import { assertTensor, type Tensor } from './tensor.js';

/** How the model's ONNX Runtime session is made (the same options as Diffusion.load's). */
export type OnnxModelLoadOptions = OrtSessionOptions;

/** One input: values and shape. Float32Array, Float64Array, Int32Array or BigInt64Array. */
export interface OnnxInputTensor {
  data: Float32Array | Float64Array | Int32Array | BigInt64Array;
  shape: number[];
}

/**
 * Records the engine's ONNX Runtime as what ran a model just loaded (ts/native/ortUse.ts). The load has loaded that
 * library (`ortLibrary`, resolved): asked again with its path, the engine answers what it loaded and loads nothing.
 */
function noteLoadedOrt(ortLibrary: string): void {
  noteEngineOrt(nativeSync((b) => b.ortLoad(ortLibrary)));
}

export class OnnxModel {
  private handle: OnnxHandle | null;

  private constructor(
    handle: OnnxHandle,
    /** The model file (fromBytes: the name given). */
    readonly path: string,
    /** Declared inputs (symbolic dimensions by name). */
    readonly inputs: SdTensorInfo[],
    /** Declared outputs. */
    readonly outputs: SdTensorInfo[],
    /** How it runs: 'cpu', 'cuda (built-in)', 'cuda (plugin: <library>)', or the provider's name. */
    readonly provider: string,
  ) {
    this.handle = handle;
  }

  static async load(path: string, options: OnnxModelLoadOptions = {}): Promise<OnnxModel> {
    if (typeof path !== 'string' || path.length === 0) throw new InvalidArgumentError('OnnxModel.load: path must be a file path');
    // (under model roots a link out of them is refused whether or not its target exists)
    if (!(await modelPathExists(path, 'the model file'))) throw new MissingFileError(`OnnxModel.load: ${path} does not exist; expected an ONNX model file`);
    checkOptionsObject(options, ORT_SESSION_OPTION_KEYS, 'OnnxModel.load');
    const session = nativeSessionOptions(options, 'OnnxModel.load');
    // external data behind links that leave the model's folder (a Hugging Face cache): from bytes (modelSource)
    const src = await modelSource(path, 'OnnxModel.load');
    const r = await nativeJob('OnnxModel.load', (b) =>
      b.onnxLoad(
        src.bytes ? { ...session, bytes: src.bytes, name: path, externalDataFolder: src.externalDataFolder!, ...(src.files ? { files: src.files } : {}) } : { ...session, path },
      ),
    ).catch(async (e: unknown) => {
      // (from bytes, its locations were checked as they were read)
      throw src.bytes ? e : await loadFailure([path], e);
    });
    const model = new OnnxModel(r.handle, path, r.inputs, r.outputs, r.provider);
    // (under model roots: the files ONNX Runtime opened by path are still those checked)
    await verifyLoaded([src], () => model.dispose());
    noteLoadedOrt(session.ortLibrary);
    return model;
  }

  /**
   * A model from its serialized bytes (an ONNX ModelProto made or edited in memory: a U-Net with inner layers as
   * graph outputs, unetLayers.ts), never written to disk. Its external weights (an initializer's external_data
   * location, relative) are read from `externalDataFolder`, the folder of the model it was made from, where they
   * are: nothing is copied or linked. `name` stands for it in `path` and in messages. The bytes are read during
   * the load only (ONNX Runtime parses them into its own copy) and must not change until it settles; for a model
   * with external weights they are the graph alone.
   */
  static async fromBytes(
    bytes: Uint8Array,
    o: OnnxModelLoadOptions & { name: string; externalDataFolder: string },
  ): Promise<OnnxModel> {
    const where = `OnnxModel.fromBytes(${o?.name})`;
    if (!(bytes instanceof Uint8Array) || bytes.length === 0) throw new InvalidArgumentError(`${where}: bytes must be a non-empty Uint8Array`);
    if (typeof o?.name !== 'string' || o.name.length === 0) throw new InvalidArgumentError('OnnxModel.fromBytes: name must be a non-empty string');
    checkOptionsObject(o, [...ORT_SESSION_OPTION_KEYS, 'name', 'externalDataFolder'], where);
    const folder = o.externalDataFolder;
    if (typeof folder !== 'string' || folder.length === 0 || !existsSync(folder) || !statSync(folder).isDirectory()) {
      throw new InvalidArgumentError(`${where}: externalDataFolder must be the folder of the model's external weights, got ${String(folder)}`);
    }
    const session = nativeSessionOptions(o, 'OnnxModel.fromBytes');
    const r = await nativeJob(where, (b) => b.onnxLoad({ ...session, bytes, name: o.name, externalDataFolder: resolve(folder) }));
    noteLoadedOrt(session.ortLibrary);
    return new OnnxModel(r.handle, o.name, r.inputs, r.outputs, r.provider);
  }

  /**
   * @internal A model from its graph's bytes, read from the model file a service's model roots checked, whose
   * external data comes from `files` as they were checked (readModelWithWeightRefs' `files`): the engine opens each,
   * holds it to the device and inode checked and hands its bytes to ONNX Runtime, which opens no path.
   */
  static async fromCheckedBytes(bytes: Uint8Array, o: OnnxModelLoadOptions & { name: string; files: CheckedDataFile[] }): Promise<OnnxModel> {
    const { name, files, ...options } = o;
    const where = `OnnxModel.fromBytes(${name})`;
    const session = nativeSessionOptions(options, 'OnnxModel.fromBytes');
    const r = await nativeJob(where, (b) => b.onnxLoad({ ...session, bytes, name, externalDataFolder: '', files }));
    noteLoadedOrt(session.ortLibrary);
    return new OnnxModel(r.handle, name, r.inputs, r.outputs, r.provider);
  }

  /** Runs the model on `inputs` (every declared input, by name) and returns the named outputs. */
  async run(
    inputs: Record<string, OnnxInputTensor>,
    outputNames: string[],
    options: { signal?: AbortSignal } = {},
  ): Promise<Record<string, Tensor>> {
    const handle = this.live();
    if (!Array.isArray(outputNames) || outputNames.some((n) => typeof n !== 'string')) {
      throw new InvalidArgumentError(`OnnxModel.run(${this.path}): outputNames must be an array of strings`);
    }
    const list: NativeOnnxInput[] = Object.entries(inputs).map(([name, t]) => {
      if (!t || !ArrayBuffer.isView(t.data) || !Array.isArray(t.shape)) {
        throw new InvalidArgumentError(`OnnxModel.run(${this.path}): input '${name}' must be {data: typed array, shape: number[]}`);
      }
      if (!t.shape.every((d) => Number.isInteger(d) && d >= 0)) {
        throw new InvalidArgumentError(`OnnxModel.run(${this.path}): input '${name}' has shape [${t.shape.join(', ')}]`);
      }
      return { name, data: t.data, shape: t.shape };
    });
    const outs = await nativeJob(`OnnxModel.run(${this.path})`, (b, token) => b.onnxRun(handle, list, outputNames, token), options.signal);
    const result: Record<string, Tensor> = {};
    for (const o of outs) result[o.name] = { data: o.data, shape: o.shape };
    return result;
  }

  dispose(): void {
    const handle = this.handle;
    if (handle) nativeSync((b) => b.onnxDispose(handle));
    this.handle = null;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
  }

  private live(): OnnxHandle {
    if (!this.handle) throw new InvalidArgumentError(`OnnxModel(${this.path}) was disposed`);
    return this.handle;
  }
}

/**
 * Runs a U-Net (an SD 1.x export, possibly with extra graph outputs) at one timestep for a batch and
 * returns the requested outputs. `sample` is [B, 4, h, w], `cond` [B, 77, D]; the timestep is given
 * as the declared type and rank need it (a scalar, or one value per row).
 */
export async function unetFeatures(
  model: OnnxModel,
  inputs: { sample: Tensor; timestep: number; cond: Tensor },
  outputNames: string[],
  options: { signal?: AbortSignal } = {},
): Promise<Record<string, Tensor>> {
  assertTensor(inputs.sample, 'unetFeatures sample', 4);
  assertTensor(inputs.cond, 'unetFeatures cond', 3);
  const ts = model.inputs.find((i) => i.name === 'timestep');
  if (!ts) throw new InvalidArgumentError(`${model.path}: the model has no 'timestep' input (not an SD U-Net)`);
  if (!Number.isFinite(inputs.timestep)) throw new InvalidArgumentError(`unetFeatures: timestep must be finite, got ${inputs.timestep}`);
  const b = inputs.sample.shape[0];
  const shape = ts.shape.length === 0 ? [] : [b];
  const n = ts.shape.length === 0 ? 1 : b;
  const data = ts.dtype === 'int64' ? new BigInt64Array(n).fill(BigInt(Math.trunc(inputs.timestep))) : new Float32Array(n).fill(inputs.timestep);
  return model.run(
    { sample: inputs.sample, timestep: { data, shape }, encoder_hidden_states: inputs.cond },
    outputNames,
    options,
  );
}

