import { existsSync } from 'node:fs';
import { mkdir, readFile, symlink } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { FormatError, InvalidArgumentError, MissingFileError } from '../errors.js';
import { onnx } from '../sd/onnxProto.js';
import { writeFileAtomic } from '../io/atomicWrite.js';

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

async function readModel(path: string): Promise<IModel> {
  if (!existsSync(path)) throw new MissingFileError(`${path}: no U-Net model (expected an SD 1.x ONNX folder with unet/model.onnx)`);
  try {
    return onnx.ModelProto.decode(await readFile(path));
  } catch (e) {
    throw new FormatError(`${path}: not a readable ONNX model (${(e as Error).message})`);
  }
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
 * reconstruct's `img2img.size`).
 */
export async function unetSizeMismatch(modelDir: string, imageSize: number, field = 'imageSize'): Promise<string | null> {
  const src = unetModelPath(modelDir);
  const graph = (await readModel(src)).graph;
  const sample = graph?.input?.find((i) => i.name === 'sample') ?? graph?.input?.[0];
  const dims = sample?.type?.tensorType?.shape?.dim ?? [];
  const fixed = (k: number): number | null => {
    const v = dims[k]?.dimValue;
    return v === undefined || v === null || Number(v) <= 0 ? null : Number(v);
  };
  const [h, w] = [fixed(2), fixed(3)];
  const side = imageSize / 8;
  if ((h === null || h === side) && (w === null || w === side)) return null;
  return `${field} ${imageSize} gives ${side}×${side} latents, but ${src} takes ${sample?.name ?? 'its sample'} of ${h ?? '?'}×${w ?? '?'} only: set ${field} to ${8 * (h ?? w ?? side)}`;
}

/**
 * Writes a copy of the U-Net with `layers` added as graph outputs (after the original outputs) and returns
 * its path. External weight files are linked beside the copy, so a real (> 2 GB) U-Net works unchanged.
 * A name that is not a tensor of the graph is an error listing what is available.
 */
export interface ExposedUnet {
  path: string;
  /** The timestep input as the export declares it (float32 rank 0, int64 [B], …). */
  timestep: { dtype: 'float32' | 'float16' | 'int64' | 'int32'; rank: number };
}

export async function exposeUnetLayers(modelDir: string, layers: string[], cacheDir = join(tmpdir(), 'brainlatent-unet-layers')): Promise<ExposedUnet> {
  const src = unetModelPath(modelDir);
  const model = await readModel(src);
  const graph = model.graph;
  if (!graph) throw new FormatError(`${src}: the model has no graph`);
  if (layers.length === 0) throw new InvalidArgumentError(`exposeUnetLayers: no layer names given for ${src}`);
  const missing = missingLayersMessage(modelDir, src, model, layers);
  if (missing) throw new InvalidArgumentError(missing);
  const existing = new Set((graph.output ?? []).map((o) => o.name));
  const info = new Map((graph.valueInfo ?? []).map((v) => [v.name, v]));
  for (const l of layers) {
    if (existing.has(l)) continue;
    graph.output = [...(graph.output ?? []), info.get(l) ?? { name: l, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT } } }];
  }
  const key = createHash('sha256').update(resolve(src)).update(JSON.stringify(layers)).digest('hex').slice(0, 16);
  const dir = join(cacheDir, key);
  await mkdir(dir, { recursive: true });
  // Weights stored outside the protobuf are found relative to the model file: link them.
  const locations = new Set<string>();
  for (const t of graph.initializer ?? []) {
    for (const e of t.externalData ?? []) if (e.key === 'location' && e.value) locations.add(e.value);
  }
  for (const loc of locations) {
    if (isAbsolute(loc)) continue;
    const target = join(dir, loc);
    if (existsSync(target)) continue;
    await mkdir(dirname(target), { recursive: true });
    await symlink(resolve(dirname(src), loc), target);
  }
  const path = join(dir, 'model.onnx');
  await writeFileAtomic(path, onnx.ModelProto.encode(model).finish());
  const ts = (graph.input ?? []).find((i) => i.name === 'timestep');
  const T = onnx.TensorProto.DataType;
  const et = ts?.type?.tensorType?.elemType;
  const dtype = et === T.INT64 ? 'int64' : et === T.INT32 ? 'int32' : et === T.FLOAT16 ? 'float16' : 'float32';
  return { path, timestep: { dtype, rank: ts?.type?.tensorType?.shape?.dim?.length ?? 1 } };
}
