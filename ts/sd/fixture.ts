/**
 * Tiny random-weight Stable Diffusion 1.x model folders with the exact ONNX signatures of the
 * diffusers/optimum exports (and their variants), written with onnx-proto. The whole pipeline
 * runs on them: smoke tests, the reference-loop test and the benchmarks. No weights are real.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

import { onnxProto } from '../lazyPackages.js';
import { wordVocabulary } from './clipTokenizer.js';
import { writeFileAtomic } from '../io/atomicWrite.js';
import { checkInteger } from '../ridge/options.js';
import { mulberry32 } from '../synth/rng.js';

type IValueInfo = import('onnx-proto').onnx.IValueInfoProto;
type INode = import('onnx-proto').onnx.INodeProto;
type ITensor = import('onnx-proto').onnx.ITensorProto;
type IAttribute = import('onnx-proto').onnx.IAttributeProto;

export interface SdFixtureOptions {
  /** input_ids element type: int64 (optimum >= 1.24), int32 (older exports). */
  inputIds?: 'int32' | 'int64';
  /** U-Net timestep: float32 rank 0 (optimum >= 1.24), int64 [B] (optimum <= 1.23), float32 [B]. */
  timestep?: { dtype: 'float32' | 'int64' | 'int32'; rank: 0 | 1 };
  /** vae_encoder output: latent_parameters (mean ‖ logvar) or latent_sample (already sampled). */
  vaeEncoderOutput?: 'latent_parameters' | 'latent_sample';
  /** Text embedding width D (768 in SD 1.x). */
  textDim?: number;
  /** U-Net hidden channels and number of hidden 3×3 conv layers (sets the cost per call). */
  unetChannels?: number;
  unetLayers?: number;
  /** Seed of the random weights. */
  seed?: number;
  /**
   * Element type at every float input and output: float32, or float16 around the same float32 graphs (Cast
   * nodes at the boundaries, as an fp16 export's interface looks to the caller). Integer inputs stay integer.
   */
  io?: 'float32' | 'float16';
}

/** The named variants of sd-onnx.md §5. */
export const SD_FIXTURE_VARIANTS: Record<string, SdFixtureOptions> = {
  'optimum-1.24': { inputIds: 'int64', timestep: { dtype: 'float32', rank: 0 }, vaeEncoderOutput: 'latent_parameters' },
  'optimum-1.23': { inputIds: 'int32', timestep: { dtype: 'int64', rank: 1 }, vaeEncoderOutput: 'latent_parameters' },
  'diffusers-script': { inputIds: 'int32', timestep: { dtype: 'float32', rank: 1 }, vaeEncoderOutput: 'latent_sample' },
  'diffusers-int64': { inputIds: 'int32', timestep: { dtype: 'int64', rank: 1 }, vaeEncoderOutput: 'latent_sample' },
  // optimum-1.24 with float16 at every float input/output (sample, timestep, encoder_hidden_states, latents,
  // images, embeddings), computing in float32 inside: the boundary conversions of fp16 folders, on the CPU.
  'optimum-fp16-io': { inputIds: 'int64', timestep: { dtype: 'float32', rank: 0 }, vaeEncoderOutput: 'latent_parameters', io: 'float16' },
};

// (functions, not constants: onnx-proto loads when a model is built, not when the package is imported)
const T = () => onnxProto().TensorProto.DataType;
const A = () => onnxProto().AttributeProto.AttributeType;
const SEQ = 77;

/** Deterministic uniform(-1, 1) weights (mulberry32, synth/rng.ts). */
export function rng(seed: number): () => number {
  const uniform = mulberry32(seed);
  return () => uniform() * 2 - 1;
}

/** @internal onnx-proto types stay out of the public typings (tsconfig.build.json: stripInternal). */
export class GraphBuilder {
  readonly nodes: INode[] = [];
  readonly inits: ITensor[] = [];
  private n = 0;
  constructor(private readonly rand: () => number) {}

  weight(dims: number[], scale: number, offset = 0): string {
    const name = `w${this.n++}`;
    const size = dims.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    for (let i = 0; i < size; i++) data[i] = offset + scale * this.rand();
    this.inits.push({ name, dims, dataType: T().FLOAT, rawData: new Uint8Array(data.buffer) });
    return name;
  }
  ints(values: number[]): string {
    const name = `i${this.n++}`;
    const data = new BigInt64Array(values.map((v) => BigInt(v)));
    this.inits.push({ name, dims: [values.length], dataType: T().INT64, rawData: new Uint8Array(data.buffer) });
    return name;
  }
  floats(values: number[], dims = [values.length]): string {
    const name = `f${this.n++}`;
    this.inits.push({ name, dims, dataType: T().FLOAT, rawData: new Uint8Array(new Float32Array(values).buffer) });
    return name;
  }
  op(opType: string, input: string[], attribute: IAttribute[] = [], output?: string): string {
    const out = output ?? `t${this.n++}`;
    this.nodes.push({ opType, input, output: [out], attribute, name: `${opType}_${this.n++}` });
    return out;
  }
}

/** @internal onnx-proto types stay out of the public typings (tsconfig.build.json: stripInternal). */
export const intsAttr = (name: string, ints: number[]): IAttribute => ({ name, type: A().INTS, ints });
/** @internal onnx-proto types stay out of the public typings (tsconfig.build.json: stripInternal). */
export const intAttr = (name: string, i: number): IAttribute => ({ name, type: A().INT, i });
/** @internal onnx-proto types stay out of the public typings (tsconfig.build.json: stripInternal). */
export const strAttr = (name: string, s: string): IAttribute => ({ name, type: A().STRING, s: new TextEncoder().encode(s) });

/** @internal onnx-proto types stay out of the public typings (tsconfig.build.json: stripInternal). */
export function valueInfo(name: string, elemType: number, dims: (number | string)[]): IValueInfo {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

/** @internal onnx-proto types stay out of the public typings (tsconfig.build.json: stripInternal). */
export function model(g: GraphBuilder, name: string, input: IValueInfo[], output: IValueInfo[]): Uint8Array {
  const m = onnxProto().ModelProto.create({
    irVersion: 8,
    producerName: 'brainlatent-fixture',
    opsetImport: [{ domain: '', version: 14 }],
    graph: { name, node: g.nodes, initializer: g.inits, input, output },
  });
  return onnxProto().ModelProto.encode(m).finish();
}

const elem = (t: 'int32' | 'int64' | 'float32'): number => (t === 'int32' ? T().INT32 : t === 'int64' ? T().INT64 : T().FLOAT);

/**
 * @internal The model with float16 at its float32 inputs and outputs: input x (now float16) → Cast → x_f32,
 * which the graph reads instead of x; the graph's output y is renamed y_f32 → Cast → y (float16).
 */
export function withFloat16Io(bytes: Uint8Array): Uint8Array {
  const m = onnxProto().ModelProto.decode(bytes);
  const g = m.graph as import('onnx-proto').onnx.GraphProto;
  const rename = new Map<string, string>();
  const before: INode[] = [];
  const after: INode[] = [];
  const cast = (from: string, to: string, type: number): INode => ({ opType: 'Cast', input: [from], output: [to], attribute: [intAttr('to', type)], name: `Cast_${to}` });
  const retype = (v: IValueInfo): boolean => {
    const t = v.type?.tensorType;
    if (!t || t.elemType !== T().FLOAT) return false;
    t.elemType = T().FLOAT16;
    rename.set(v.name as string, `${v.name}_f32`);
    return true;
  };
  for (const v of g.input) if (retype(v)) before.push(cast(String(v.name), `${v.name}_f32`, T().FLOAT));
  for (const v of g.output) if (retype(v)) after.push(cast(`${v.name}_f32`, String(v.name), T().FLOAT16));
  for (const n of g.node) {
    n.input = (n.input ?? []).map((x) => rename.get(x) ?? x);
    n.output = (n.output ?? []).map((x) => rename.get(x) ?? x);
  }
  g.node = [...before, ...g.node, ...after] as typeof g.node;
  return onnxProto().ModelProto.encode(m).finish();
}

export function textEncoderModel(o: Required<SdFixtureOptions>): Uint8Array {
  const D = o.textDim;
  const g = new GraphBuilder(rng(o.seed * 7 + 1));
  const ids = g.op('Cast', ['input_ids'], [intAttr('to', T().FLOAT)]);
  const scaled = g.op('Mul', [ids, g.floats([1 / 49408])]);
  const col = g.op('Unsqueeze', [scaled, g.ints([2])]);
  const emb = g.op('MatMul', [col, g.weight([1, D], 3)]);
  const pos = g.op('Add', [emb, g.weight([SEQ, D], 0.5)]);
  const h = g.op('Tanh', [g.op('MatMul', [g.op('Tanh', [pos]), g.weight([D, D], 1 / Math.sqrt(D))])]);
  g.op('Mul', [h, g.floats([1])], [], 'last_hidden_state');
  g.op('ReduceMean', ['last_hidden_state'], [intsAttr('axes', [1]), intAttr('keepdims', 0)], 'pooler_output');
  return model(
    g,
    'text_encoder',
    [valueInfo('input_ids', elem(o.inputIds), ['batch_size', 'sequence_length'])],
    [
      valueInfo('last_hidden_state', T().FLOAT, ['batch_size', 'sequence_length', D]),
      valueInfo('pooler_output', T().FLOAT, ['batch_size', D]),
    ],
  );
}

export function unetModel(o: Required<SdFixtureOptions>): Uint8Array {
  const D = o.textDim;
  const C = o.unetChannels;
  const g = new GraphBuilder(rng(o.seed * 7 + 2));
  const conv = (x: string, cin: number, cout: number, k: number, scale = 1): string =>
    g.op(
      'Conv',
      [x, g.weight([cout, cin, k, k], scale / Math.sqrt(cin * k * k)), g.weight([cout], 0.1)],
      [intsAttr('pads', [(k - 1) / 2, (k - 1) / 2, (k - 1) / 2, (k - 1) / 2]), intsAttr('kernel_shape', [k, k])],
    );
  // timestep embedding: t/1000 · w_t, broadcast over [B|1, C, 1, 1]
  const tf = g.op('Cast', ['timestep'], [intAttr('to', T().FLOAT)]);
  let tcol = g.op('Mul', [tf, g.floats([1 / 1000])]);
  if (o.timestep.rank === 1) tcol = g.op('Unsqueeze', [tcol, g.ints([1, 2, 3])]);
  const temb = g.op('Mul', [tcol, g.weight([1, C, 1, 1], 1)]);
  // text conditioning: mean over the sequence, projected to C channels
  const cm = g.op('ReduceMean', ['encoder_hidden_states'], [intsAttr('axes', [1]), intAttr('keepdims', 0)]);
  const cemb = g.op('Unsqueeze', [g.op('MatMul', [cm, g.weight([D, C], 2 / Math.sqrt(D))]), g.ints([2, 3])]);
  let h = g.op('Tanh', [g.op('Add', [g.op('Add', [conv('sample', 4, C, 3), temb]), cemb])]);
  for (let l = 0; l < o.unetLayers; l++) h = g.op('Tanh', [g.op('Add', [h, conv(h, C, C, 3)])]);
  const out = conv(h, C, 4, 3, 2);
  // a skip from the input keeps the prediction input-dependent, as a real U-Net's is
  g.op('Add', [out, g.op('Mul', [g.op('Tanh', ['sample']), g.floats([0.3])])], [], 'out_sample');
  const tdims: (number | string)[] = o.timestep.rank === 1 ? ['steps'] : [];
  return model(
    g,
    'unet',
    [
      valueInfo('sample', T().FLOAT, ['batch_size', 4, 'height', 'width']),
      valueInfo('timestep', elem(o.timestep.dtype), tdims),
      valueInfo('encoder_hidden_states', T().FLOAT, ['batch_size', 'sequence_length', D]),
    ],
    [valueInfo('out_sample', T().FLOAT, ['batch_size', 4, 'height', 'width'])],
  );
}

export function vaeEncoderModel(o: Required<SdFixtureOptions>): Uint8Array {
  const g = new GraphBuilder(rng(o.seed * 7 + 3));
  const pooled = g.op('AveragePool', ['sample'], [intsAttr('kernel_shape', [8, 8]), intsAttr('strides', [8, 8])]);
  const params = o.vaeEncoderOutput === 'latent_parameters';
  const cout = params ? 8 : 4;
  const bias = params ? [0.1, -0.2, 0.05, 0.3, -3, -2.5, -3.5, -2] : [0.1, -0.2, 0.05, 0.3];
  const y = g.op('Conv', [pooled, g.weight([cout, 3, 1, 1], 1.5), g.floats(bias)], [intsAttr('kernel_shape', [1, 1])]);
  g.op('Mul', [y, g.floats([1 / 0.18215])], [], o.vaeEncoderOutput);
  return model(
    g,
    'vae_encoder',
    [valueInfo('sample', T().FLOAT, ['batch_size', 3, 'height', 'width'])],
    [valueInfo(o.vaeEncoderOutput, T().FLOAT, ['batch_size', cout, 'height_latent', 'width_latent'])],
  );
}

export function vaeDecoderModel(o: Required<SdFixtureOptions>): Uint8Array {
  const g = new GraphBuilder(rng(o.seed * 7 + 4));
  const y = g.op(
    'Conv',
    ['latent_sample', g.weight([3, 4, 3, 3], 0.15), g.weight([3], 0.1)],
    [intsAttr('pads', [1, 1, 1, 1]), intsAttr('kernel_shape', [3, 3])],
  );
  const up = g.op('Resize', [y, '', g.floats([1, 1, 8, 8])], [strAttr('mode', 'nearest')]);
  g.op('Mul', [g.op('Tanh', [up]), g.floats([1.2])], [], 'sample');
  return model(
    g,
    'vae_decoder',
    [valueInfo('latent_sample', T().FLOAT, ['batch_size', 4, 'latent_height', 'latent_width'])],
    [valueInfo('sample', T().FLOAT, ['batch_size', 3, 'height', 'width'])],
  );
}

/** Words of the fixture tokenizer's vocabulary (each becomes one token). */
export const FIXTURE_WORDS = ['hello', 'cat', 'photo', 'of', 'the', 'dog', 'brain', 'an', 'image'];

/** CLIP-style vocab.json / merges.txt: 256 byte symbols, the same with </w>, word merges, specials. */
export function fixtureTokenizer(): { vocab: Record<string, number>; merges: string[] } {
  const { vocab, merges } = wordVocabulary(FIXTURE_WORDS);
  return { vocab, merges };
}

/** SD 1.5's scheduler_config.json. */
export const SD15_SCHEDULER_CONFIG = {
  _class_name: 'PNDMScheduler',
  _diffusers_version: '0.6.0',
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  beta_start: 0.00085,
  num_train_timesteps: 1000,
  set_alpha_to_one: false,
  skip_prk_steps: true,
  steps_offset: 1,
  trained_betas: null,
  clip_sample: false,
};

export function resolveFixtureOptions(o: SdFixtureOptions = {}): Required<SdFixtureOptions> {
  return {
    inputIds: o.inputIds ?? 'int64',
    timestep: o.timestep ?? { dtype: 'float32', rank: 0 },
    vaeEncoderOutput: o.vaeEncoderOutput ?? 'latent_parameters',
    textDim: checkInteger(o.textDim ?? 32, 'textDim', 'writeSdFixture'),
    unetChannels: checkInteger(o.unetChannels ?? 8, 'unetChannels', 'writeSdFixture'),
    unetLayers: checkInteger(o.unetLayers ?? 1, 'unetLayers', 'writeSdFixture', 0),
    seed: checkInteger(o.seed ?? 1, 'seed', 'writeSdFixture', 0),
    io: o.io ?? 'float32',
  };
}

/**
 * The files of an SD 1.x ONNX folder beside its models, as a diffusers/optimum export has them: the CLIP
 * tokenizer's (`tok` as clipTokenizer.ts reads it) and SD 1.5's scheduler config; paths relative to the folder.
 * The fixture's and the demo world's.
 */
export function sdFolderFiles(tok: { vocab: Record<string, number>; merges: string[] }): [string, string][] {
  return [
    ['tokenizer/vocab.json', JSON.stringify(tok.vocab)],
    ['tokenizer/merges.txt', `#version: 0.2\n${tok.merges.join('\n')}\n`],
    ['tokenizer/tokenizer_config.json', JSON.stringify({ model_max_length: SEQ, pad_token: '<|endoftext|>', bos_token: '<|startoftext|>', eos_token: '<|endoftext|>' })],
    ['scheduler/scheduler_config.json', JSON.stringify(SD15_SCHEDULER_CONFIG, null, 2)],
  ];
}

/** The folder's model_index.json: an ONNX SD pipeline of the four models and those files; `about` says what made it. */
export function sdModelIndex(about: Record<string, unknown>): string {
  return JSON.stringify(
    {
      _class_name: 'OnnxStableDiffusionPipeline',
      ...about,
      text_encoder: ['diffusers', 'OnnxRuntimeModel'],
      unet: ['diffusers', 'OnnxRuntimeModel'],
      vae_encoder: ['diffusers', 'OnnxRuntimeModel'],
      vae_decoder: ['diffusers', 'OnnxRuntimeModel'],
      tokenizer: ['transformers', 'CLIPTokenizer'],
      scheduler: ['diffusers', 'PNDMScheduler'],
    },
    null,
    2,
  );
}

/** Writes each [path relative to `dir`, data] in order, making its folder. */
export async function writeFolderFiles(dir: string, files: [string, Uint8Array | string][]): Promise<void> {
  for (const [p, data] of files) {
    await mkdir(join(dir, p, '..'), { recursive: true });
    await writeFileAtomic(join(dir, p), data);
  }
}

/** Writes a complete SD 1.x ONNX model folder with random weights to `dir`. */
export async function writeSdFixture(dir: string, options: SdFixtureOptions = {}): Promise<void> {
  const o = resolveFixtureOptions(options);
  const models: [string, Uint8Array][] = [
    ['text_encoder', textEncoderModel(o)],
    ['unet', unetModel(o)],
    ['vae_encoder', vaeEncoderModel(o)],
    ['vae_decoder', vaeDecoderModel(o)],
  ];
  // (model_index.json, which marks the folder a fixture's, first: a write cut short leaves a folder sd fixture may write again)
  await writeFolderFiles(dir, [
    ['model_index.json', sdModelIndex({ _brainlatent_fixture: { ...o, note: 'random weights, for tests and benchmarks only' } })],
    ...models.map(([name, bytes]): [string, Uint8Array] => [`${name}/model.onnx`, o.io === 'float16' ? withFloat16Io(bytes) : bytes]),
    ...sdFolderFiles(fixtureTokenizer()),
  ]);
}
