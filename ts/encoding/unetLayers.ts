import { join } from 'node:path';
import { CancelledError, FormatError, InvalidArgumentError } from '../errors.js';
import { onnxProto } from '../lazyPackages.js';
import { OnnxModel, unetFeatures, type OnnxModelLoadOptions } from '../sd/OnnxModel.js';
import { latentSizeMismatch, unetDeclaredSizes } from '../sd/onnxSignature.js';
import type { CheckedDataFile } from '../sd/modelRoots.js';
import { readModelWithWeightRefs } from '../sd/onnxWeightRefs.js';
import type { Tensor } from '../sd/tensor.js';
import { removeLeftUnetCopies } from './unetCopies.js';

type IModel = import('onnx-proto').onnx.IModelProto;
type INode = import('onnx-proto').onnx.INodeProto;

/** A tensor produced inside the U-Net that can be exposed as a graph output. */
export interface UnetLayer {
  /** The tensor's name in the graph (what `layers` in a feature set refers to). */
  name: string;
  /** Type of the node that produces it. */
  opType: string;
  /** U-Net block it belongs to (down_blocks.N, mid_block, up_blocks.N, conv_in, …) or '' when the export has no block names. */
  block: string;
  /** Position of the producing node in the graph. */
  index: number;
  /** True for the last tensor of its block: the block's output, the natural candidate. */
  blockOutput: boolean;
}

export function unetModelPath(modelDir: string): string {
  return join(modelDir, 'unet', 'model.onnx');
}

/**
 * The model without its weights: large inline initializers come back as references into the file
 * (readModelWithWeightRefs), so a U-Net whose weights are inside model.onnx is read in a few MB, not whole.
 */
async function readModel(path: string, what = 'U-Net'): Promise<IModel> {
  return (await readModelWithWeightRefs(path, { what })).model;
}

/** The block of a node from a diffusers/optimum export name such as "/down_blocks.1/resnets.0/Add". */
function blockOf(node: INode): string {
  const m = /^\/?((?:down_blocks|up_blocks)\.\d+|mid_block|conv_in|conv_out|time_embedding|conv_norm_out)\b/.exec(node.name ?? '');
  return m ? m[1] : '';
}

/** Candidate layer outputs of a U-Net: every node output, with its block and whether it ends the block. */
export async function listUnetLayers(modelDir: string): Promise<UnetLayer[]> {
  return layersOf(await readModel(unetModelPath(modelDir)));
}

function layersOf(model: IModel): UnetLayer[] {
  const nodes = model.graph?.node ?? [];
  const out: UnetLayer[] = [];
  nodes.forEach((node, index) => {
    for (const name of node.output ?? []) if (name) out.push({ name, opType: node.opType ?? '', block: blockOf(node), index, blockOutput: false });
  });
  const lastOf = new Map<string, number>();
  out.forEach((l, k) => lastOf.set(l.block || `#${l.name}`, k));
  for (const k of lastOf.values()) out[k].blockOutput = true;
  return out;
}

function missingLayersMessage(modelDir: string, src: string, model: IModel, layers: string[]): string | null {
  const nodes = model.graph?.node ?? [];
  const produced = new Set(nodes.flatMap((n) => n.output ?? []));
  const missing = layers.filter((l) => !produced.has(l));
  if (missing.length === 0) return null;
  const hint = layersOf(model)
    .filter((l) => l.blockOutput)
    .slice(0, 12)
    .map((l) => l.name);
  return (
    `layer ${missing.map((m) => `'${m}'`).join(', ')} is not in ${src} (${produced.size} node outputs); ` +
    `candidates include ${hint.join(', ')}. List them all with: brainlatent sd layers --model ${modelDir}`
  );
}

/** What is wrong with `layers` as tensor names of the folder's U-Net (null when every one exists). */
export async function missingUnetLayers(modelDir: string, layers: string[]): Promise<string | null> {
  const src = unetModelPath(modelDir);
  return missingLayersMessage(modelDir, src, await readModel(src), layers);
}

/**
 * A U-Net that declares a fixed latent size (its `sample` input [batch, C, h, w] with numbers for h and w,
 * as the demo world's exact denoiser does) runs only at that size: the problem when `imageSize` gives
 * another latent size, else null. `field` names the setting in the message (encode's `imageSize`,
 * reconstruct's `img2img.size`); `setTo` says how to set it to the size that fits, in the caller's words (default
 * "set <field> to N"; the CLI's flags-only form has no config to set a field in).
 */
export async function unetSizeMismatch(
  modelDir: string,
  imageSize: number,
  field = 'imageSize',
  setTo: (size: number) => string = (size) => `set ${field} to ${size}`,
): Promise<string | null> {
  // (the declared inputs only: the weights are not read)
  const s = await unetDeclaredSizes(modelDir, { textEncoder: false });
  const side = imageSize / 8;
  if (!latentSizeMismatch(s, side, side)) return null;
  return `${field} ${imageSize} gives ${side}×${side} latents, but ${s.path} takes ${s.sampleName} of ${s.height ?? '?'}×${s.width ?? '?'} only: ${setTo(8 * (s.height ?? s.width ?? side))}`;
}

/** The prefix of the temp folders earlier builds wrote U-Net copies to (ts/encoding/unetCopies.ts). */
export { UNET_COPY_PREFIX } from './unetCopies.js';

/**
 * The U-Net with `layers` added as graph outputs (after the original outputs), made in memory and loaded from there
 * (`loadExposedUnet`): nothing is written to disk. Its weights are read by ONNX Runtime from the U-Net's own folder,
 * where they are: external weights (weights.pb of every float32 SD 1.x export, which is over 2 GB) from their file,
 * and weights inside model.onnx (a float16 export's 1.7 GB) from model.onnx itself, each initializer of the edited
 * model pointing at its bytes there (readModelWithWeightRefs).
 *
 * (It used to be a copy of model.onnx in a temp folder with weights.pb symlinked beside it; ONNX Runtime 1.30
 * refuses external data that resolves outside the model's folder — "External data path escapes model directory" —
 * so no float32 export could give U-Net features.)
 */
export interface ExposedUnet {
  /** The U-Net's model.onnx, which messages name. */
  source: string;
  /**
   * The folder ONNX Runtime reads the weights from: the U-Net's own, or, where links lead elsewhere (a Hugging Face
   * cache snapshot), the folder of the files they lead to: weights.pb's (the references name its blob there), or,
   * for a model.onnx with its weights inside, the linked file's (readModelWithWeightRefs).
   */
  weightsFolder: string;
  /**
   * The modified model, serialized: its graph alone (SD 1.x: a few MB), whether the weights are in weights.pb or
   * inside model.onnx (then every initializer of 4 KiB or more refers to its bytes in model.onnx; smaller ones,
   * biases, stay in). The weights stay in their file, and ONNX Runtime memory-maps them on the CPU, so they are
   * in memory once, as ONNX Runtime's. (An inline-weights U-Net used to be read whole, its weights serialized
   * into these bytes again, and parsed by ONNX Runtime into a third copy.)
   */
  bytes: Uint8Array;
  /** The timestep input as the export declares it (float32 rank 0, int64 [B], …). */
  timestep: { dtype: 'float32' | 'float16' | 'int64' | 'int32'; rank: number };
  /** Type of the node that produces each exposed layer (for messages). */
  ops: Map<string, string>;
  /** Under a service's model roots, the weights' files as checked (readModelWithWeightRefs), else null. */
  files: CheckedDataFile[] | null;
}

type IValueInfo = import('onnx-proto').onnx.IValueInfoProto;

/**
 * How an inner tensor is declared as a graph output: its value_info when the export has one (with its own
 * element type, float16 in a float16 export), else its name alone, which ONNX Runtime types and shapes from
 * the graph as it does every inner tensor. (Declaring float32 made any Cast, Shape or float16 tensor fail to load.)
 */
function outputDeclaration(name: string, info: Map<string | null | undefined, IValueInfo>): IValueInfo {
  return info.get(name) ?? { name };
}

/** A name that is not a tensor of the graph is an error listing what is available. */
export async function exposeUnetLayers(modelDir: string, layers: string[]): Promise<ExposedUnet> {
  const src = unetModelPath(modelDir);
  const { model, dataFolder, unloadable, files } = await readModelWithWeightRefs(src, { what: 'U-Net' });
  if (unloadable) throw new InvalidArgumentError(unloadable);
  const graph = model.graph;
  if (!graph) throw new FormatError(`${src}: the model has no graph`);
  if (layers.length === 0) throw new InvalidArgumentError(`exposeUnetLayers: no layer names given for ${src}`);
  const missing = missingLayersMessage(modelDir, src, model, layers);
  if (missing) throw new InvalidArgumentError(missing);
  const existing = new Set((graph.output ?? []).map((o) => o.name));
  const info = new Map((graph.valueInfo ?? []).map((v) => [v.name, v]));
  for (const l of layers) if (!existing.has(l)) graph.output = [...(graph.output ?? []), outputDeclaration(l, info)];
  const ops = new Map(layersOf(model).filter((l) => layers.includes(l.name)).map((l) => [l.name, l.opType]));
  // copies earlier builds left in the OS temp folder that no process can be using (a copy of an inline-weights U-Net is GBs)
  await removeLeftUnetCopies();
  const bytes = onnxProto().ModelProto.encode(model).finish();
  return { source: src, weightsFolder: dataFolder, bytes, timestep: timestepOf(graph), ops, files };
}

/** Loads an exposed U-Net on the engine's ONNX Runtime, from its bytes, with the weights read from where they are. */
export function loadExposedUnet(u: ExposedUnet, options: OnnxModelLoadOptions = {}): Promise<OnnxModel> {
  // (under a service's model roots: the weights from the files checked, opened by the engine, no path for ONNX Runtime)
  if (u.files) return OnnxModel.fromCheckedBytes(u.bytes, { ...options, name: `${u.source} (with layers exposed)`, files: u.files });
  return OnnxModel.fromBytes(u.bytes, { ...options, name: `${u.source} (with layers exposed)`, externalDataFolder: u.weightsFolder });
}

function timestepOf(graph: import('onnx-proto').onnx.IGraphProto): ExposedUnet['timestep'] {
  const ts = (graph.input ?? []).find((i) => i.name === 'timestep');
  const T = onnxProto().TensorProto.DataType;
  const et = ts?.type?.tensorType?.elemType;
  const dtype = et === T.INT64 ? 'int64' : et === T.INT32 ? 'int32' : et === T.FLOAT16 ? 'float16' : 'float32';
  return { dtype, rank: ts?.type?.tensorType?.shape?.dim?.length ?? 1 };
}

/** An exposed U-Net once loaded: what `withExposedUnet` hands over (the bytes are not kept). */
export type LoadedUnet = Omit<ExposedUnet, 'bytes'>;

/**
 * Exposes `layers` and loads the result; a load that fails comes back as `error`. The bytes go with this call's
 * frame once the model is loaded (a caller that kept them in a local would hold them for its whole run).
 */
async function exposeAndLoad(
  modelDir: string,
  layers: string[],
  options: OnnxModelLoadOptions,
): Promise<{ u: LoadedUnet; model: OnnxModel; error?: undefined } | { u: LoadedUnet; model?: undefined; error: Error }> {
  const { bytes, ...u } = await exposeUnetLayers(modelDir, layers);
  try {
    return { u, model: await loadExposedUnet({ ...u, bytes }, options) };
  } catch (e) {
    return { u, error: e as Error };
  }
}

/**
 * Runs `use` on the U-Net with `layers` exposed, loaded (`loadExposedUnet`); the model is disposed when `use`
 * settles, on error and abort too. The serialized bytes (the graph; the weights are read from their files) are
 * dropped once loaded.
 */
export async function withExposedUnet<T>(
  modelDir: string,
  layers: string[],
  use: (model: OnnxModel, u: LoadedUnet) => Promise<T>,
  options: OnnxModelLoadOptions = {},
): Promise<T> {
  const { u, model, error } = await exposeAndLoad(modelDir, layers, options);
  if (error) throw error;
  try {
    return await use(model, u);
  } finally {
    model.dispose();
  }
}

/** A layer as ONNX Runtime types it once exposed, and what in that rules it out as a feature (null: nothing). */
export interface UnetLayerType {
  name: string;
  opType: string;
  /** Element type ('float32', 'int64', 'float16', …; 'other' where ONNX Runtime gives none). */
  dtype: string;
  /** Fixed sizes as numbers, symbolic ones by name ('?' where unknown). */
  shape: (number | string)[];
  problem: string | null;
  /** Its shape on checkUnetLayers' probe batch, at the run's latent size (absent where it did not run). */
  probeShape?: number[];
}

const shapeText = (shape: readonly (number | string)[]) => `[${shape.join(', ')}]`;

/** Element types a layer may have to be a feature ('other': untyped until run; the engine refuses any but these two then). */
const FEATURE_DTYPES = new Set(['float32', 'float16', 'other']);

/**
 * The types of the exposed layers of a loaded copy. Only float tensors are read: float32, and float16 (a float16
 * export's inner tensors), which the engine hands over converted to float32 (exactly); a first dimension of fixed
 * size other than the sample's batch dimension means the tensor has no row per image. A shape ONNX Runtime cannot
 * tell (a scalar and an unknown shape look alike) is left to a run (`checkUnetLayers`).
 */
export function exposedLayerTypes(model: OnnxModel, u: Pick<ExposedUnet, 'ops'>, layers: string[]): UnetLayerType[] {
  const batch = model.inputs.find((i) => i.name === 'sample')?.shape[0];
  return layers.map((name) => {
    const o = model.outputs.find((x) => x.name === name);
    const t = { name, opType: u.ops.get(name) ?? '', dtype: o?.dtype ?? 'other', shape: o?.shape ?? [] };
    const what = `layer '${name}'${t.opType ? ` (${t.opType})` : ''}`;
    let problem: string | null = null;
    if (!FEATURE_DTYPES.has(t.dtype)) {
      problem = `${what} is ${t.dtype}: features are read from float32 and float16 tensors only`;
    } else if (typeof t.shape[0] === 'number' && t.shape[0] !== batch) {
      problem = `${what} has shape ${shapeText(t.shape)} whatever the batch (the sample input's is ${batch ?? '?'}): its first dimension is not the batch, so it holds no row per image`;
    }
    return { ...t, problem };
  });
}

/** The problem with a layer's output on a batch of `batch` images: its first dimension must be the batch. */
export function layerBatchProblem(name: string, opType: string, shape: readonly number[], batch: number): string | null {
  if (shape.length > 0 && shape[0] === batch) return null;
  return `layer '${name}'${opType ? ` (${opType})` : ''} has shape ${shapeText(shape)} on a batch of ${batch} images: its first dimension is not the batch, so it holds no row per image`;
}

/** Images in the batch that `checkUnetLayers` runs: two, so that a tensor of one row cannot pass for one per image. */
export const PROBE_BATCH = 2;

export interface UnetLayerCheck {
  /** One per layer asked about, in order; `problem` says what rules it out as a feature. */
  layers: UnetLayerType[];
  /** A problem of the model itself: it does not load, or does not run, with the layers exposed (null: none). */
  problem: string | null;
}

/**
 * What rules each of `layers` out as a feature, before any long work: its type as ONNX Runtime gives it (see
 * exposedLayerTypes) and, for the layers that pass, one run of the U-Net on a batch of PROBE_BATCH made-up
 * inputs at the latent size of `imageSize` (or the size the U-Net declares), where every layer's first
 * dimension must be the batch. The U-Net is loaded from memory (exposeUnetLayers: nothing is written, the
 * weights are read where they are) and disposed after.
 */
export async function checkUnetLayers(modelDir: string, layers: string[], o: { imageSize: number; timestep: number; signal?: AbortSignal }): Promise<UnetLayerCheck> {
  const src = unetModelPath(modelDir);
  const list = (names: string[]) => names.map((l) => `'${l}'`).join(', ');
  const { u, model, error } = await exposeAndLoad(modelDir, layers, {});
  if (error) {
    const unknown = layers.map((name) => ({ name, opType: u.ops.get(name) ?? '', dtype: 'other', shape: [], problem: null }));
    return { layers: unknown, problem: `${src} with ${list(layers)} exposed as outputs does not load: ${error.message}` };
  }
  try {
    const types = exposedLayerTypes(model, u, layers);
    const run = types.filter((t) => !t.problem);
    if (run.length === 0) return { layers: types, problem: null };
    let outs: Record<string, Tensor>;
    try {
      outs = await unetFeatures(model, await probeInputs(modelDir, model, o), run.map((t) => t.name), { signal: o.signal });
    } catch (e) {
      if (e instanceof CancelledError) throw e;
      return { layers: types, problem: `${src} did not run on a probe batch of ${PROBE_BATCH} with ${list(run.map((t) => t.name))} exposed: ${(e as Error).message}` };
    }
    for (const t of run) {
      t.problem = layerBatchProblem(t.name, t.opType, outs[t.name].shape, PROBE_BATCH);
      t.probeShape = [...outs[t.name].shape];
    }
    return { layers: types, problem: null };
  } finally {
    model.dispose();
  }
}

/** Made-up U-Net inputs of PROBE_BATCH rows: sample [B, C, h, w] at the run's latent size, cond [B, S, D] as declared. */
async function probeInputs(modelDir: string, model: OnnxModel, o: { imageSize: number; timestep: number }): Promise<{ sample: Tensor; timestep: number; cond: Tensor }> {
  const input = (name: string) => model.inputs.find((i) => i.name === name);
  const fixed = (shape: readonly (number | string)[] | undefined, k: number): number | null => (typeof shape?.[k] === 'number' ? (shape[k] as number) : null);
  const sample = input('sample')?.shape;
  const cond = input('encoder_hidden_states')?.shape;
  const side = Math.max(1, Math.round(o.imageSize / 8));
  const sampleShape = [PROBE_BATCH, fixed(sample, 1) ?? 4, fixed(sample, 2) ?? side, fixed(sample, 3) ?? side];
  const condShape = [PROBE_BATCH, fixed(cond, 1) ?? 77, fixed(cond, 2) ?? (await textWidth(modelDir))];
  return { sample: probeTensor(sampleShape, 1), timestep: o.timestep, cond: probeTensor(condShape, 2) };
}

/** Deterministic values in (-1, 1), with no two neighbours alike. */
function probeTensor(shape: number[], seed: number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return { data: Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 12.9898 + i * 78.233) * 0.9), shape };
}

/** The text encoder's hidden size (its first output's last dimension), for a U-Net that does not declare its cond width. */
async function textWidth(modelDir: string): Promise<number> {
  const path = join(modelDir, 'text_encoder', 'model.onnx');
  const dims = (await readModel(path, 'text encoder')).graph?.output?.[0]?.type?.tensorType?.shape?.dim ?? [];
  const v = Number(dims[2]?.dimValue ?? 0);
  if (v > 0) return v;
  throw new FormatError(`${path}: its first output declares no fixed width (dimension 2), and the U-Net's encoder_hidden_states none either: cannot make a probe input`);
}
