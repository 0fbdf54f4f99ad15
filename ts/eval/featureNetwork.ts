/**
 * Any image network given as ONNX, used as a feature extractor for two-way identification and the
 * correlation distances (AlexNet layers, Inception, CLIP image encoder, EfficientNet, SwAV in the
 * published tables; user-supplied). Images are resized to `inputSize` (no crop), scaled to [0, 1],
 * normalised with mean/std per channel, fed as NCHW float32; the chosen output is flattened per image.
 */
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';

import type * as ort from 'onnxruntime-common';

import { checkCallback } from '../callbackOptions.js';
import { InvalidArgumentError, MissingFileError, ShapeError } from '../errors.js';
import { makeProcessTemp, removeDeadProcessTemps } from '../io/processTemp.js';
import { onnxruntimeNode, type OnnxRuntime } from '../native/onnxruntimeNode.js';
import { noteOrtUse } from '../native/ortUse.js';
import type { Matrix } from '../matrix.js';
import { describeNumber } from '../ridge/alphas.js';
import { checkInteger, checkOptionsObject } from '../ridge/options.js';
import { MAX_ORT_THREADS } from '../sd/optionBounds.js';
import { spinningFromEnv } from '../sd/spinningEnv.js';
import { modelPathExists, readCheckedFile, type CheckedDataFile } from '../sd/modelRoots.js';
import { loadFailure, modelSource, verifyLoaded } from '../sd/modelSource.js';
import type { RgbImages } from '../sd/tensor.js';
import { checkImages, resizeImages } from './images.js';

export interface FeatureNetworkSpec {
  /** Column name in the metrics table (e.g. 'AlexNet(2)'). */
  name: string;
  /** The .onnx file. */
  path: string;
  /** Square input side (BD: 224 for all; MindEye: AlexNet 256, Inception 342, CLIP 224, EffNet 255, SwAV 224). */
  inputSize: number;
  /** Output to read (default: the model's first output). */
  output?: string;
  /** Per-channel normalisation of [0, 1] RGB (default ImageNet's). */
  mean?: [number, number, number];
  std?: [number, number, number];
  /** 'identification' (2WI, higher is better) or 'distance' (mean correlation distance, lower is better). */
  metric: 'identification' | 'distance';
  /** Images per ONNX call (default 16): an integer in 1..MAX_FEATURE_BATCH. */
  batchSize?: number;
}

/** The largest inputSize, as the run config's evaluation.networks[].inputSize. */
export const MAX_FEATURE_INPUT_SIZE = 4096;
/** The most images per ONNX call. */
export const MAX_FEATURE_BATCH = 4096;

/**
 * The numbers of a spec, before anything is read: batchSize 0 looped forever in features(), a negative or fractional
 * one failed there as a bare RangeError or ONNX Runtime's TypeError, and a std of 0 made every input Infinity.
 */
export function checkSpecNumbers(spec: FeatureNetworkSpec, what: string): void {
  checkInteger(spec.inputSize, 'inputSize', what, 8, MAX_FEATURE_INPUT_SIZE);
  if (spec.batchSize !== undefined) checkInteger(spec.batchSize, 'batchSize', what, 1, MAX_FEATURE_BATCH);
  for (const name of ['mean', 'std'] as const) {
    const v: unknown = spec[name];
    if (v === undefined) continue;
    const expected = name === 'std' ? 'finite numbers > 0' : 'finite numbers';
    if (!Array.isArray(v) || v.length !== 3) throw new InvalidArgumentError(`${what} ${name}: expected 3 ${expected} (R, G, B), got ${describeNumber(v)}`);
    const bad = v.findIndex((x) => typeof x !== 'number' || !Number.isFinite(x) || (name === 'std' && !(x > 0)));
    if (bad >= 0) throw new InvalidArgumentError(`${what} ${name}: expected 3 ${expected} (R, G, B), got ${describeNumber(v[bad])} at position ${bad}`);
  }
}

export const IMAGENET_MEAN: [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: [number, number, number] = [0.229, 0.224, 0.225];

/** The prefix of the empty folder a checked session is given (`<os tmp>/bl-ort-no-files-<host>-<pid>-XXXXXX`). */
export const NO_FILES_PREFIX = 'bl-ort-no-files';

/**
 * Under a service's model roots: a session from the graph read from the model file checked, its external data the
 * bytes of the files checked (each read from a descriptor held to the file checked, readCheckedFile) handed to
 * ONNX Runtime as external data in memory (onnxruntime-node's externalData), and an empty folder of our own as its
 * folder for external data, so that ONNX Runtime opens no path (a subgraph's tensor, which it reads only by path,
 * then fails to load). The engine's models do the same without the copy in JavaScript (checked_file.h).
 */
/** The temp folders this process has swept of dead processes' empty folders. */
const swept = new Set<string>();

async function checkedSession(
  ort: OnnxRuntime,
  bytes: Uint8Array,
  files: readonly CheckedDataFile[],
  model: string,
  threads: ort.InferenceSession.SessionOptions,
  spinning: Record<string, unknown>,
): Promise<ort.InferenceSession> {
  const externalData = [];
  for (const f of files) externalData.push({ path: f.location, data: await readCheckedFile(f.path, f, f.what, model) });
  // named for this process: one a process killed during the create left is removed by the next process's first
  // open in that temp folder (removeDeadProcessTemps; once: it reads the whole temp folder)
  if (!swept.has(tmpdir())) {
    swept.add(tmpdir());
    await removeDeadProcessTemps(tmpdir(), NO_FILES_PREFIX);
  }
  const empty = await makeProcessTemp(tmpdir(), NO_FILES_PREFIX);
  try {
    return await ort.InferenceSession.create(bytes, { ...threads, externalData, extra: { session: { ...spinning, model_external_initializers_file_folder_path: empty } } });
  } finally {
    await rm(empty, { recursive: true, force: true });
  }
}

export class FeatureNetwork {
  private constructor(
    readonly spec: FeatureNetworkSpec,
    private readonly ort: OnnxRuntime,
    private readonly session: ort.InferenceSession,
    private readonly inputName: string,
    private readonly outputName: string,
  ) {}

  /**
   * Opens the network's session. `options.threads`: ONNX Runtime's intra-op threads, an integer from 0 to
   * MAX_ORT_THREADS; 0 (the default) is ONNX Runtime's own choice, one per physical core.
   */
  static async open(spec: FeatureNetworkSpec, options: { threads?: number } = {}): Promise<FeatureNetwork> {
    const what = `FeatureNetwork.open '${spec.name}'`;
    checkSpecNumbers(spec, what);
    checkOptionsObject(options, ['threads'], what);
    const intra = options.threads === undefined ? 0 : checkInteger(options.threads, 'threads', what, 0, MAX_ORT_THREADS);
    // (only a missing output means the first: a null one is refused as any other wrong value, as the numbers' are)
    if (spec.output !== undefined && (typeof spec.output !== 'string' || spec.output === '')) {
      throw new InvalidArgumentError(`${what} output: expected an output's name (a non-empty string), got ${describeNumber(spec.output)}`);
    }
    // (under model roots a link out of them is refused whether or not its target exists)
    if (!(await modelPathExists(spec.path, 'the model file'))) throw new MissingFileError(`feature network '${spec.name}': ${spec.path} does not exist`);
    const ort = await onnxruntimeNode(`feature network '${spec.name}'`);
    // external data behind links that leave the network's folder (a Hugging Face cache): from bytes (modelSource)
    const src = await modelSource(spec.path, `feature network '${spec.name}'`);
    // (0 is ONNX Runtime's default; it was 2, whatever the machine, until 2026-12: NSD's evaluation ran on 2 of 16 cores)
    const threads = { intraOpNumThreads: intra, interOpNumThreads: 1 };
    // (BRAINLATENT_ORT_SPINNING, as the engine's sessions: a batch pool of several job processes sets 0, each job's
    // networks using every core; unset, ONNX Runtime's default, on)
    const spin = spinningFromEnv();
    const spinning = spin === undefined ? {} : { intra_op: { allow_spinning: spin ? '1' : '0' } };
    const session = src.files
      ? await checkedSession(ort, src.bytes!, src.files, spec.path, threads, spinning)
      : src.bytes
        ? await ort.InferenceSession.create(src.bytes, { ...threads, extra: { session: { ...spinning, model_external_initializers_file_folder_path: src.externalDataFolder } } })
        : await ort.InferenceSession.create(spec.path, { ...threads, extra: { session: spinning } }).catch(async (e: unknown) => {
            throw await loadFailure([spec.path], e);
          });
    // (under model roots: the files ONNX Runtime opened by path are still those checked)
    await verifyLoaded([src], () => session.release());
    const inputName = session.inputNames[0];
    const outputName = spec.output === undefined ? session.outputNames[0] : spec.output;
    if (!session.outputNames.includes(outputName)) {
      throw new ShapeError(`feature network '${spec.name}' (${spec.path}) has no output '${outputName}'; it has ${session.outputNames.join(', ')}`);
    }
    // (for the record of what ran the stage that opened it: runVersions.ts)
    noteOrtUse({ via: 'onnxruntime-node', version: ort.env.versions.node ?? ort.env.versions.common });
    return new FeatureNetwork(spec, ort, session, inputName, outputName);
  }

  /**
   * Features of a batch: images × flattened output. Each ONNX call's images are resized as it is made, and its output
   * goes straight to its rows of the result: the images at the input size and the features are not held twice.
   * `onBatch(done, total)` is called after each call with the images done.
   */
  async features(images: RgbImages, options: { onBatch?: (done: number, total: number) => void } = {}): Promise<Matrix> {
    checkImages(images, `feature network '${this.spec.name}' input`);
    checkOptionsObject(options, ['onBatch'], `feature network '${this.spec.name}' features`);
    checkCallback(options.onBatch, `feature network '${this.spec.name}' features`, 'onBatch');
    const s = this.spec.inputSize;
    // (checked at open: a null one was refused there, as any other wrong value)
    const mean = this.spec.mean === undefined ? IMAGENET_MEAN : this.spec.mean;
    const std = this.spec.std === undefined ? IMAGENET_STD : this.spec.std;
    const bs = this.spec.batchSize === undefined ? 16 : this.spec.batchSize;
    const side = images.height * images.width * 3;
    let data = new Float32Array(0);
    let dim = -1;
    for (let b0 = 0; b0 < images.count; b0 += bs) {
      const nb = Math.min(bs, images.count - b0);
      const part = { data: images.data.subarray(b0 * side, (b0 + nb) * side), count: nb, height: images.height, width: images.width };
      const resized = resizeImages(part, s);
      const x = new Float32Array(nb * 3 * s * s);
      for (let i = 0; i < nb; i++) {
        const src = resized.data.subarray(i * s * s * 3, (i + 1) * s * s * 3);
        for (let c = 0; c < 3; c++) {
          const plane = (i * 3 + c) * s * s;
          for (let p = 0; p < s * s; p++) x[plane + p] = (src[p * 3 + c] / 255 - mean[c]) / std[c];
        }
      }
      const out = await this.session.run({ [this.inputName]: new this.ort.Tensor('float32', x, [nb, 3, s, s]) });
      const y = out[this.outputName];
      if (y.type !== 'float32') throw new ShapeError(`feature network '${this.spec.name}': output '${this.outputName}' is ${y.type}, expected float32`);
      const got = y.data as Float32Array;
      const per = got.length / nb;
      if (dim >= 0 && per !== dim) throw new ShapeError(`feature network '${this.spec.name}': output size changed between batches (${dim} vs ${per})`);
      if (dim < 0) {
        dim = per;
        data = new Float32Array(images.count * dim);
      }
      data.set(got, b0 * dim);
      options.onBatch?.(b0 + nb, images.count);
    }
    return { data, rows: images.count, cols: Math.max(dim, 0) };
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
