/**
 * `sd fixture --arch sd1`: an SD 1.x ONNX folder whose U-Net has Stable Diffusion 1.x's published layer
 * configuration (diffusers' UNet2DConditionModel of runwayml/stable-diffusion-v1-5: block_out_channels
 * 320/640/1280/1280, two ResNet blocks per level, one cross-attention transformer per block of the first
 * three levels and the middle, 8 heads, cross_attention_dim 768, GEGLU feed-forward, GroupNorm 32; 859.5M
 * parameters) with seeded random weights, stored as external data (unet/weights.pb, each tensor aligned to
 * 64 KiB so ONNX Runtime can memory-map it). The text encoder, VAE and tokenizer are the tiny fixture's at
 * SD 1.x's interface sizes (77 × 768 conditioning, 8× VAE): the sampler's speed and memory are the U-Net's.
 * Weights are streamed to disk tensor by tensor, so writing it needs little memory.
 *
 * Next to them, unet/weights.recipe.json says how every byte of weights.pb was made (seed, dtype, file size,
 * and per tensor: file offset, element count, scale, offset value, PRNG counter at its start), so that a
 * machine without Node can regenerate the 3.4 GB file bit for bit from the small files
 * (native/core/bench/sd1_weights.cpp) instead of receiving it.
 *
 * `dtype: 'float16'` writes the layout of the usual GPU export: the U-Net's weights, constants, inputs and
 * output are float16 (each weight is the float32 value of the float32 fixture rounded to half, ts/sd/half.ts;
 * 1.7 GB), and the text encoder and VAE take and return float16 around their float32 graphs (Cast nodes at
 * the boundaries, ts/sd/fixture.ts `io: 'float16'`). Resize's scales stay float32 (the ONNX spec's type).
 * The graph passes onnx.checker and strict type inference; ONNX Runtime's CPU provider runs it too (through
 * float32 where it has no half kernel), for tests at narrow width.
 *
 * `attention: 'fused'` writes each attention block as GPU exports made for ONNX Runtime have it (Optimum, or
 * onnxruntime.transformers' optimizer for the unet): the q/k/v projections feed one com.microsoft
 * MultiHeadAttention node (num_heads; query [B,S,C], key and value [B,L,C]; output [B,S,C]; its default scale
 * 1/√head_size), which ORT's CUDA provider runs as flash or memory-efficient attention, then the output
 * projection. The graph is the unfused one with each attention's head split, scores, softmax and head merge
 * replaced by that node, so every weight keeps its name, order and bytes: weights.pb and weights.recipe.json
 * are the unfused fixture's, byte for byte. ONNX Runtime's CPU provider runs it (its MultiHeadAttention kernel is
 * float32 only: between Casts in a float16 U-Net); onnx.checker has no com.microsoft schemas to check the node by.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { withAtomicDir } from '../io/atomicWrite.js';
import { mulberry32 } from '../synth/rng.js';
import { writeSdFixture } from './fixture.js';
import { floatToHalfBits } from './half.js';
import { onnxProto } from '../lazyPackages.js';

type INode = import('onnx-proto').onnx.INodeProto;
type ITensor = import('onnx-proto').onnx.ITensorProto;
type IAttribute = import('onnx-proto').onnx.IAttributeProto;

// (functions, not constants: onnx-proto loads when a model is built, not when the package is imported)
const T = () => onnxProto().TensorProto.DataType;
const A = () => onnxProto().AttributeProto.AttributeType;
const ALIGN = 65536;
/** Element type of the sd1 fixture's U-Net (weights, constants, inputs, output). */
export type Sd1Dtype = 'float32' | 'float16';
/** How the sd1 fixture's attention blocks are written: MatMul → Softmax → MatMul, or one com.microsoft MultiHeadAttention. */
export type Sd1Attention = 'unfused' | 'fused';
/** The domain and version of ONNX Runtime's contrib operators (MultiHeadAttention). */
const MS_DOMAIN = 'com.microsoft';
const MS_OPSET = 1;

/** The recipe's format tag; bump it when the generator's arithmetic changes. */
export const SD1_WEIGHTS_RECIPE_FORMAT = 'brainlatent-sd1-weights/1';

/**
 * unet/weights.recipe.json: weights.pb as a pure function of these numbers. The PRNG is counter-based: value k
 * of the stream (k = 0, 1, …) hashes state = seed + (k + 1)·0x6d2b79f5 (mod 2^32) with the mulberry32 finaliser
 * into u (uint32), r = u / 2^32 · 2 − 1 (float64); a tensor whose stream starts at `counter` holds element i =
 * float32(add + scale · r(counter + i)) (float64 arithmetic, no fused multiply-add), little-endian at `offset`;
 * with dtype float16 it holds the half bits of that float32 value (round to nearest even, ts/sd/half.ts), 2 bytes
 * each. The bytes between tensors (64 KiB alignment) are zero.
 */
export interface Sd1WeightsRecipe {
  format: typeof SD1_WEIGHTS_RECIPE_FORMAT;
  seed: number;
  /** Element type of every tensor (absent in older recipes: float32). */
  dtype: Sd1Dtype;
  /** weights.pb's size in bytes (the last tensor's end; no trailing padding). */
  size: number;
  alignment: number;
  columns: ['name', 'offset', 'count', 'scale', 'add', 'counter'];
  /** One row per external tensor, in file order. */
  tensors: [string, number, number, number, number, number][];
}

/** SD 1.x's UNet2DConditionModel configuration. */
export const SD1_UNET = {
  blockOut: [320, 640, 1280, 1280],
  layersPerBlock: 2,
  crossAttn: [true, true, true, false],
  heads: 8,
  crossDim: 768,
  groups: 32,
  timeDim: 1280,
} as const;

export interface Sd1UnetConfig {
  blockOut: readonly number[];
  layersPerBlock: number;
  crossAttn: readonly boolean[];
  heads: number;
  crossDim: number;
  groups: number;
  timeDim: number;
}

/** Writes initializers into one external-data file as they are made (aligned offsets). */
class ExternalGraph {
  readonly nodes: INode[] = [];
  readonly inits: ITensor[] = [];
  private n = 0;
  private offset = 0;
  parameters = 0;
  private readonly uniform: () => number;
  /** Values drawn so far (the counter of the next one). */
  private drawn = 0;
  readonly recipe: Sd1WeightsRecipe;
  /** The ONNX element type of weights, float constants, inputs and output. */
  readonly float: number;
  private readonly bytes: number;
  constructor(
    private readonly fd: number,
    private readonly location: string,
    seed: number,
    readonly dtype: Sd1Dtype,
  ) {
    this.uniform = mulberry32(seed);
    this.float = dtype === 'float16' ? T().FLOAT16 : T().FLOAT;
    this.bytes = dtype === 'float16' ? 2 : 4;
    this.recipe = { format: SD1_WEIGHTS_RECIPE_FORMAT, seed: seed >>> 0, dtype, size: 0, alignment: ALIGN, columns: ['name', 'offset', 'count', 'scale', 'add', 'counter'], tensors: [] };
  }
  private rand(): number {
    return this.uniform() * 2 - 1;
  }
  /** A weight of uniform(−scale, scale) + offset values, written to the data file. */
  weight(dims: number[], scale: number, offset = 0): string {
    const name = `w${this.n++}`;
    const size = dims.reduce((a, b) => a * b, 1);
    const pad = (ALIGN - (this.offset % ALIGN)) % ALIGN;
    if (pad) {
      writeSync(this.fd, Buffer.alloc(pad));
      this.offset += pad;
    }
    const start = this.offset;
    this.recipe.tensors.push([name, start, size, scale, offset, this.drawn]);
    this.drawn += size;
    const n = Math.min(size, 1 << 20);
    const chunk = this.dtype === 'float16' ? new Uint16Array(n) : new Float32Array(n);
    for (let done = 0; done < size; done += chunk.length) {
      const m = Math.min(chunk.length, size - done);
      if (this.dtype === 'float16') for (let i = 0; i < m; i++) chunk[i] = floatToHalfBits(offset + scale * this.rand());
      else for (let i = 0; i < m; i++) chunk[i] = offset + scale * this.rand();
      writeSync(this.fd, new Uint8Array(chunk.buffer, 0, m * this.bytes));
    }
    this.offset += size * this.bytes;
    this.recipe.size = this.offset;
    this.parameters += size;
    this.inits.push({
      name,
      dims,
      dataType: this.float,
      dataLocation: onnxProto().TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: this.location },
        { key: 'offset', value: String(start) },
        { key: 'length', value: String(size * this.bytes) },
      ],
    });
    return name;
  }
  /** A small constant kept inside the model file: 'float' is the model's dtype, 'float32' stays float32 (Resize scales). */
  consts(values: number[], dims = [values.length], type: 'float' | 'float32' | 'int64' = 'float'): string {
    const name = `c${this.n++}`;
    if (type === 'int64') {
      this.inits.push({ name, dims, dataType: T().INT64, rawData: new Uint8Array(new BigInt64Array(values.map(BigInt)).buffer) });
    } else if (type === 'float' && this.dtype === 'float16') {
      const halves = Uint16Array.from(values, (v) => floatToHalfBits(v));
      this.inits.push({ name, dims, dataType: T().FLOAT16, rawData: new Uint8Array(halves.buffer) });
    } else {
      this.inits.push({ name, dims, dataType: T().FLOAT, rawData: new Uint8Array(new Float32Array(values).buffer) });
    }
    return name;
  }
  op(opType: string, input: string[], attribute: IAttribute[] = [], output?: string): string {
    const out = output ?? `t${this.n++}`;
    this.nodes.push({ opType, input, output: [out], attribute, name: `${opType}_${this.n++}` });
    return out;
  }
  /** Where the graph stands now, for replaceSince. */
  mark(): { nodes: number; inits: number } {
    return { nodes: this.nodes.length, inits: this.inits.length };
  }
  /**
   * Replaces the nodes made since `at` (but those whose output is in `keep`) with `node`, and drops the constants
   * made since then; weights stay, and no name is drawn, so every later name is the unreplaced graph's.
   */
  replaceSince(at: { nodes: number; inits: number }, keep: string[], node: INode): void {
    const kept = this.nodes.splice(at.nodes).filter((nd) => keep.includes(nd.output?.[0] ?? ''));
    this.nodes.push(...kept, node);
    const weights = this.inits.splice(at.inits).filter((t) => t.dataLocation === onnxProto().TensorProto.DataLocation.EXTERNAL);
    this.inits.push(...weights);
  }
}

const ints = (name: string, v: number[]): IAttribute => ({ name, type: A().INTS, ints: v });
const int = (name: string, v: number): IAttribute => ({ name, type: A().INT, i: v });
const flt = (name: string, v: number): IAttribute => ({ name, type: A().FLOAT, f: v });

function unetGraph(g: ExternalGraph, cfg: Sd1UnetConfig, fused: boolean): void {
  const conv = (x: string, cin: number, cout: number, k: number, stride = 1): string =>
    g.op(
      'Conv',
      [x, g.weight([cout, cin, k, k], 1 / Math.sqrt(cin * k * k)), g.weight([cout], 0.02)],
      [ints('kernel_shape', [k, k]), ints('pads', Array(4).fill((k - 1) / 2)), ints('strides', [stride, stride])],
    );
  const linear = (x: string, cin: number, cout: number, bias = true): string => {
    const y = g.op('MatMul', [x, g.weight([cin, cout], 1 / Math.sqrt(cin))]);
    return bias ? g.op('Add', [y, g.weight([cout], 0.02)]) : y;
  };
  const silu = (x: string): string => g.op('Mul', [x, g.op('Sigmoid', [x])]);
  const groupNorm = (x: string, c: number, eps: number): string => {
    const shape = g.op('Shape', [x]);
    const grouped = g.op('Reshape', [x, g.consts([0, cfg.groups, -1], [3], 'int64')]);
    const normed = g.op('InstanceNormalization', [grouped, g.consts(Array(cfg.groups).fill(1)), g.consts(Array(cfg.groups).fill(0))], [flt('epsilon', eps)]);
    const back = g.op('Reshape', [normed, shape]);
    return g.op('Add', [g.op('Mul', [back, g.weight([c, 1, 1], 0.1, 1)]), g.weight([c, 1, 1], 0.02)]);
  };
  const layerNorm = (x: string, c: number): string =>
    g.op('LayerNormalization', [x, g.weight([c], 0.1, 1), g.weight([c], 0.02)], [int('axis', -1), flt('epsilon', 1e-5)]);

  // time embedding: sinusoidal (flip_sin_to_cos, shift 0) → Linear → SiLU → Linear
  const half = cfg.blockOut[0] / 2;
  const freqs = Array.from({ length: half }, (_, i) => Math.exp((-Math.log(10000) * i) / half));
  const tf = g.op('Reshape', [g.op('Cast', ['timestep'], [int('to', g.float)]), g.consts([-1, 1], [2], 'int64')]);
  const arg = g.op('Mul', [tf, g.consts(freqs, [1, half])]);
  const tproj = g.op('Concat', [g.op('Cos', [arg]), g.op('Sin', [arg])], [int('axis', 1)]);
  let temb = linear(silu(linear(tproj, cfg.blockOut[0], cfg.timeDim)), cfg.timeDim, cfg.timeDim);
  temb = silu(temb); // every ResNet block's time_emb_proj reads SiLU(temb)

  const resnet = (x: string, cin: number, cout: number): string => {
    let h = conv(silu(groupNorm(x, cin, 1e-5)), cin, cout, 3);
    const t = g.op('Unsqueeze', [linear(temb, cfg.timeDim, cout), g.consts([2, 3], [2], 'int64')]);
    h = g.op('Add', [h, t]);
    h = conv(silu(groupNorm(h, cout, 1e-5)), cout, cout, 3);
    const skip = cin === cout ? x : conv(x, cin, cout, 1);
    return g.op('Add', [skip, h]);
  };
  const attention = (x: string, ctx: string, c: number, ctxDim: number): string => {
    const heads = cfg.heads;
    const dh = c / heads;
    const split = (y: string): string => g.op('Transpose', [g.op('Reshape', [y, g.consts([0, -1, heads, dh], [4], 'int64')])], [ints('perm', [0, 2, 1, 3])]);
    const start = g.mark();
    const qp = linear(x, c, c, false);
    const q = split(qp);
    const kp = linear(ctx, ctxDim, c, false);
    const k = split(kp);
    const vp = linear(ctx, ctxDim, c, false);
    const v = split(vp);
    const scores = g.op('Mul', [g.op('MatMul', [q, g.op('Transpose', [k], [ints('perm', [0, 1, 3, 2])])]), g.consts([1 / Math.sqrt(dh)])]);
    const o = g.op('MatMul', [g.op('Softmax', [scores], [int('axis', -1)]), v]);
    const merged = g.op('Reshape', [g.op('Transpose', [o], [ints('perm', [0, 2, 1, 3])]), g.consts([0, -1, c], [3], 'int64')]);
    if (fused) {
      // built unfused, then fused, so that the names drawn (and so every weight's) are the unfused graph's
      const mha: INode = { opType: 'MultiHeadAttention', domain: MS_DOMAIN, input: [qp, kp, vp], output: [merged], attribute: [int('num_heads', heads)], name: `MultiHeadAttention_${merged}` };
      g.replaceSince(start, [qp, kp, vp], mha);
    }
    return linear(merged, c, c);
  };
  const transformer = (x: string, c: number): string => {
    const shape = g.op('Shape', [x]);
    let h = conv(groupNorm(x, c, 1e-6), c, c, 1);
    // [B, C, H, W] → [B, HW, C]
    h = g.op('Transpose', [g.op('Reshape', [h, g.consts([0, c, -1], [3], 'int64')])], [ints('perm', [0, 2, 1])]);
    const n1 = layerNorm(h, c);
    h = g.op('Add', [h, attention(n1, n1, c, c)]);
    h = g.op('Add', [h, attention(layerNorm(h, c), 'encoder_hidden_states', c, cfg.crossDim)]);
    // GEGLU feed-forward
    const proj = linear(layerNorm(h, c), c, 8 * c);
    const a = g.op('Slice', [proj, g.consts([0], [1], 'int64'), g.consts([4 * c], [1], 'int64'), g.consts([-1], [1], 'int64')]);
    const gate = g.op('Slice', [proj, g.consts([4 * c], [1], 'int64'), g.consts([8 * c], [1], 'int64'), g.consts([-1], [1], 'int64')]);
    const gelu = g.op('Mul', [g.op('Mul', [gate, g.consts([0.5])]), g.op('Add', [g.op('Erf', [g.op('Mul', [gate, g.consts([Math.SQRT1_2])])]), g.consts([1])])]);
    h = g.op('Add', [h, linear(g.op('Mul', [a, gelu]), 4 * c, c)]);
    h = g.op('Reshape', [g.op('Transpose', [h], [ints('perm', [0, 2, 1])]), shape]);
    return g.op('Add', [x, conv(h, c, c, 1)]);
  };

  let h = conv('sample', 4, cfg.blockOut[0], 3);
  const skips: { name: string; c: number }[] = [{ name: h, c: cfg.blockOut[0] }];
  let c: number = cfg.blockOut[0];
  cfg.blockOut.forEach((cout, level) => {
    for (let j = 0; j < cfg.layersPerBlock; j++) {
      h = resnet(h, c, cout);
      c = cout;
      if (cfg.crossAttn[level]) h = transformer(h, c);
      skips.push({ name: h, c });
    }
    if (level < cfg.blockOut.length - 1) {
      h = conv(h, c, c, 3, 2);
      skips.push({ name: h, c });
    }
  });
  h = resnet(h, c, c);
  h = transformer(h, c);
  h = resnet(h, c, c);
  const rev = [...cfg.blockOut].reverse();
  const revAttn = [...cfg.crossAttn].reverse();
  rev.forEach((cout, level) => {
    for (let j = 0; j < cfg.layersPerBlock + 1; j++) {
      const skip = skips.pop() as { name: string; c: number };
      h = resnet(g.op('Concat', [h, skip.name], [int('axis', 1)]), c + skip.c, cout);
      c = cout;
      if (revAttn[level]) h = transformer(h, c);
    }
    if (level < rev.length - 1) {
      const up = g.op('Resize', [h, '', g.consts([1, 1, 2, 2], [4], 'float32')], [{ name: 'mode', type: A().STRING, s: new TextEncoder().encode('nearest') }]);
      h = conv(up, c, c, 3);
    }
  });
  h = conv(silu(groupNorm(h, c, 1e-5)), c, 4, 3);
  g.op('Identity', [h], [], 'out_sample');
}

/** Writes an SD 1.x folder whose U-Net has SD 1.x's layers (random weights) to `dir`. Returns the parameter count. */
export async function writeSd1Fixture(
  dir: string,
  options: {
    seed?: number;
    /** A narrower U-Net of the same layout (tests); default SD 1.x's. */
    config?: Partial<Sd1UnetConfig>;
    /** float16: the U-Net in half precision and float16 at every component's boundary (see the file's head). */
    dtype?: Sd1Dtype;
    /** fused: each attention block's core as one com.microsoft MultiHeadAttention node (see the file's head). */
    attention?: Sd1Attention;
  } = {},
): Promise<{ parameters: number; weightBytes: number }> {
  const cfg: Sd1UnetConfig = { ...SD1_UNET, ...(options.config ?? {}) };
  // Built under a temporary name and swapped in whole (ts/io/atomicWrite).
  return withAtomicDir(dir, (tmp) => buildSd1Fixture(tmp, cfg, options));
}

async function buildSd1Fixture(
  tmp: string,
  cfg: Sd1UnetConfig,
  options: { seed?: number; dtype?: Sd1Dtype; attention?: Sd1Attention },
): Promise<{ parameters: number; weightBytes: number }> {
  const dtype = options.dtype ?? 'float32';
  if (dtype !== 'float32' && dtype !== 'float16') throw new Error(`sd1 fixture dtype: expected float32 or float16, got '${String(dtype)}'`);
  const attention = options.attention ?? 'unfused';
  if (attention !== 'unfused' && attention !== 'fused') throw new Error(`sd1 fixture attention: expected unfused or fused, got '${String(attention)}'`);
  const fused = attention === 'fused';
  // the small models at SD 1.x's interface sizes (text width 768), then the real U-Net over them
  await writeSdFixture(tmp, { textDim: cfg.crossDim, seed: options.seed ?? 1, io: dtype });
  const unetDir = join(tmp, 'unet');
  await mkdir(unetDir, { recursive: true });
  const fd = openSync(join(unetDir, 'weights.pb'), 'w');
  let g: ExternalGraph;
  try {
    g = new ExternalGraph(fd, 'weights.pb', options.seed ?? 1, dtype);
    unetGraph(g, cfg, fused);
  } finally {
    closeSync(fd);
  }
  const vi = (name: string, elem: number, dims: (number | string)[]) => ({
    name,
    type: { tensorType: { elemType: elem, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  });
  const m = onnxProto().ModelProto.create({
    irVersion: 8,
    producerName: 'brainlatent-sd1-fixture',
    opsetImport: [{ domain: '', version: 17 }, ...(fused ? [{ domain: MS_DOMAIN, version: MS_OPSET }] : [])],
    graph: {
      name: 'unet',
      node: g.nodes,
      initializer: g.inits,
      input: [vi('sample', g.float, ['batch', 4, 'height', 'width']), vi('timestep', g.float, []), vi('encoder_hidden_states', g.float, ['batch', 'sequence', cfg.crossDim])],
      output: [vi('out_sample', g.float, ['batch', 4, 'height', 'width'])],
    },
  });
  await writeFile(join(unetDir, 'model.onnx'), onnxProto().ModelProto.encode(m).finish());
  // one row per line: small, readable, and parsed by sd1_weights.cpp without a JSON library
  const { tensors, ...head } = g.recipe;
  const rows = tensors.map((t) => JSON.stringify(t)).join(',\n');
  await writeFile(join(unetDir, 'weights.recipe.json'), `${JSON.stringify(head).slice(0, -1)},"tensors":[\n${rows}\n]}\n`);
  await writeFile(join(tmp, 'sd1_fixture.json'), JSON.stringify({ parameters: g.parameters, dtype, ...(fused ? { attention } : {}), note: "SD 1.x's U-Net layers, random weights" }, null, 2));
  return { parameters: g.parameters, weightBytes: g.parameters * (dtype === 'float16' ? 2 : 4) };
}
