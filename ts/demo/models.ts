/**
 * The demo world's ONNX models, authored with onnx-proto in SD 1.x's layouts so that the real sampler
 * runs them (optimum ≥ 1.24 signatures):
 * - vae_encoder: [B,3,H,W] in [-1,1] → latent_parameters [B,8,H/8,W/8] (mean ‖ logvar, unscaled). The mean
 *   is a fixed colour transform of the 8×8 area average (3 channels) and the local luminance contrast (4th).
 * - vae_decoder: [B,4,h,w] → [B,3,8h,8w]: the inverse colour transform, upsampled bilinearly.
 * - text_encoder: input_ids [B,77] int64 → last_hidden_state [B,77,D] (a fixed word embedding per token).
 * - unet: the exact ε-prediction of a Gaussian mixture on known latents μ_k (variance s² each), with
 *   mixture weights set by the text conditioning: π_k(c) ∝ exp(β · cos(Σ_tokens c, b_k)); the
 *   posterior mean E[x0 | x_t, c] is closed form, so ε̂ = (x_t − √ᾱ_t E[x0|x_t,c]) / √(1 − ᾱ_t).
 * - features: a small fixed conv+pool network, the demo's stand-in image network for identification.
 */
import { GraphBuilder, intAttr, intsAttr, model, rng, strAttr, valueInfo } from '../sd/fixture.js';
import { onnxProto } from '../lazyPackages.js';

// (functions, not constants: onnx-proto loads when a model is built, not when the package is imported)
const T = () => onnxProto().TensorProto.DataType;

export const SCALING_FACTOR = 0.18215;

/** Colour transform of the latent's first three channels (rows: latent channel, columns: R, G, B in [-1,1]). */
export const COLOUR_TRANSFORM = [
  [2, 2, 2], // brightness
  [3, -3, 0], // red–green
  [1.5, 1.5, -3], // yellow–blue
];
/** Gain of the 4th channel, the luminance SD within each 8×8 block (latents of roughly unit scale, like SD's). */
export const CONTRAST_GAIN = 8;

function invert3(m: number[][]): number[][] {
  const [[a, b, c], [d, e, f], [g, h, i]] = m;
  const det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g);
  return [
    [(e * i - f * h) / det, (c * h - b * i) / det, (b * f - c * e) / det],
    [(f * g - d * i) / det, (a * i - c * g) / det, (c * d - a * f) / det],
    [(d * h - e * g) / det, (b * g - a * h) / det, (a * e - b * d) / det],
  ];
}

export function vaeEncoderModel(): Uint8Array {
  const g = new GraphBuilder(rng(1));
  const pool = (x: string) => g.op('AveragePool', [x], [intsAttr('kernel_shape', [8, 8]), intsAttr('strides', [8, 8])]);
  const colour = g.op('Conv', [pool('sample'), g.floats(COLOUR_TRANSFORM.flat(), [3, 3, 1, 1])], [intsAttr('kernel_shape', [1, 1])]);
  const lum = g.op('Conv', ['sample', g.floats([0.2125, 0.7154, 0.0721], [1, 3, 1, 1])], [intsAttr('kernel_shape', [1, 1])]);
  const m = pool(lum);
  const v = g.op('Sub', [pool(g.op('Mul', [lum, lum])), g.op('Mul', [m, m])]);
  const sd = g.op('Sqrt', [g.op('Relu', [v])]);
  const contrast = g.op('Sub', [g.op('Mul', [sd, g.floats([CONTRAST_GAIN])]), g.floats([1])]);
  const mean = g.op('Concat', [colour, contrast], [intAttr('axis', 1)]);
  const logvar = g.op('Add', [g.op('Mul', [mean, g.floats([0])]), g.floats([-9])]);
  const params = g.op('Concat', [mean, logvar], [intAttr('axis', 1)]);
  g.op('Mul', [params, g.floats([1 / SCALING_FACTOR])], [], 'latent_parameters');
  return model(
    g,
    'vae_encoder',
    [valueInfo('sample', T().FLOAT, ['batch_size', 3, 'height', 'width'])],
    [valueInfo('latent_parameters', T().FLOAT, ['batch_size', 8, 'height_latent', 'width_latent'])],
  );
}

export function vaeDecoderModel(): Uint8Array {
  const g = new GraphBuilder(rng(2));
  const inv = invert3(COLOUR_TRANSFORM);
  // [3 out, 4 in]: the inverse colour transform; the contrast channel does not change the colour
  // (the sampler divides by the scaling factor before decoding, as SD's decoders expect)
  const w = inv.flatMap((row) => [...row.map((v) => v * SCALING_FACTOR), 0]);
  const rgb = g.op('Conv', ['latent_sample', g.floats(w, [3, 4, 1, 1])], [intsAttr('kernel_shape', [1, 1])]);
  g.op(
    'Resize',
    [rgb, '', g.floats([1, 1, 8, 8])],
    [strAttr('mode', 'linear'), strAttr('coordinate_transformation_mode', 'half_pixel')],
    'sample',
  );
  return model(
    g,
    'vae_decoder',
    [valueInfo('latent_sample', T().FLOAT, ['batch_size', 4, 'latent_height', 'latent_width'])],
    [valueInfo('sample', T().FLOAT, ['batch_size', 3, 'height', 'width'])],
  );
}

export function textEncoderModel(table: Float32Array, vocabSize: number, dim: number): Uint8Array {
  const g = new GraphBuilder(rng(3));
  const name = g.floats(Array.from(table), [vocabSize, dim]);
  g.op('Gather', [name, 'input_ids'], [intAttr('axis', 0)], 'last_hidden_state');
  g.op('ReduceMean', ['last_hidden_state'], [intsAttr('axes', [1]), intAttr('keepdims', 0)], 'pooler_output');
  return model(
    g,
    'text_encoder',
    [valueInfo('input_ids', T().INT64, ['batch_size', 'sequence_length'])],
    [
      valueInfo('last_hidden_state', T().FLOAT, ['batch_size', 'sequence_length', dim]),
      valueInfo('pooler_output', T().FLOAT, ['batch_size', dim]),
    ],
  );
}

/** The mixture U-Net's node holding ᾱ at the input timestep (samplerWorld.ts reads the graph back by it). */
export const ALPHA_CUMPROD_T = 'alpha_cumprod_t';

export interface MixtureUnetParams {
  /** Component means: K × d scaled latents (d = 4·h·w), row-major. */
  means: Float32Array;
  components: number;
  latentShape: [number, number, number];
  /** Per-component text vectors b_k (K × D): the sum over tokens of the caption's embedding. */
  text: Float32Array;
  textDim: number;
  /** SD of each component, per latent dimension. */
  componentSd: number;
  /** Sharpness of the text weighting. */
  beta: number;
  /** ᾱ_t for t = 0..999. */
  alphasCumprod: Float64Array;
}

export function mixtureUnetModel(p: MixtureUnetParams): Uint8Array {
  const g = new GraphBuilder(rng(4));
  const [C, H, W] = p.latentShape;
  const d = C * H * W;
  const K = p.components;
  if (p.means.length !== K * d) throw new Error(`mixtureUnetModel: means has ${p.means.length} values, expected ${K}×${d}`);
  const s2 = p.componentSd * p.componentSd;
  // normalised text vectors
  const bn = new Float32Array(K * p.textDim);
  for (let k = 0; k < K; k++) {
    let n = 0;
    for (let j = 0; j < p.textDim; j++) n += p.text[k * p.textDim + j] ** 2;
    n = Math.sqrt(n) || 1;
    for (let j = 0; j < p.textDim; j++) bn[k * p.textDim + j] = p.text[k * p.textDim + j] / n;
  }
  const halfNorms = new Float32Array(K);
  for (let k = 0; k < K; k++) {
    let n = 0;
    for (let j = 0; j < d; j++) n += p.means[k * d + j] ** 2;
    halfNorms[k] = n / 2;
  }
  const M = g.floats(Array.from(p.means), [K, d]);
  const B = g.floats(Array.from(bn), [K, p.textDim]);
  const HN = g.floats(Array.from(halfNorms), [1, K]);
  // σ(t) = √((1 − ᾱ_t)/ᾱ_t) at a fractional t: linear interpolation of the σ table, clamped to 0..T−1 —
  // diffusers' np.interp(timesteps, arange(T), sigmas), the σ the σ-based schedulers (Euler, Heun, LMS,
  // Euler ancestral) integrate at under linspace spacing, where t is fractional. (Casting t to an index
  // truncated it: the U-Net then denoised at σ(⌊t⌋), not the scheduler's σ.) Integer t gives the table's σ.
  const nT = p.alphasCumprod.length;
  const sigmaTable = g.floats(Array.from(p.alphasCumprod, (v) => Math.sqrt((1 - v) / v)), [nT]);
  const tc = g.op('Clip', ['timestep', g.floats([0], []), g.floats([nT - 1], [])]);
  const lo = g.op('Min', [g.op('Floor', [tc]), g.floats([nT - 2], [])]);
  const frac = g.op('Sub', [tc, lo]);
  const index = (v: string) => g.op('Cast', [v], [intAttr('to', T().INT64)]);
  const sLo = g.op('Gather', [sigmaTable, index(lo)], [intAttr('axis', 0)]);
  const sHi = g.op('Gather', [sigmaTable, index(g.op('Add', [lo, g.floats([1], [])]))], [intAttr('axis', 0)]);
  const sigma = g.op('Add', [sLo, g.op('Mul', [frac, g.op('Sub', [sHi, sLo])])]);
  const sigma2 = g.op('Mul', [sigma, sigma]);
  // ᾱ = 1/(1 + σ²) and 1 − ᾱ = σ² ᾱ (no cancellation at small t)
  const one = g.floats([1]);
  const a = g.op('Div', [one, g.op('Add', [one, sigma2])], [], ALPHA_CUMPROD_T);
  const sqa = g.op('Sqrt', [a]);
  const oneMinusA = g.op('Mul', [sigma2, a]);
  const vt = g.op('Add', [g.op('Mul', [a, g.floats([s2])]), oneMinusA]); // ᾱ s² + 1 − ᾱ
  // logits: (√ᾱ x·μ_k − ᾱ |μ_k|²/2) / v_t + β cos(c̄, b_k)
  const x = g.op('Flatten', ['sample'], [intAttr('axis', 1)]);
  const xm = g.op('Gemm', [x, M], [intAttr('transB', 1)]);
  const lx = g.op('Div', [g.op('Sub', [g.op('Mul', [xm, sqa]), g.op('Mul', [HN, a])]), vt]);
  const cbar = g.op('ReduceMean', ['encoder_hidden_states'], [intsAttr('axes', [1]), intAttr('keepdims', 0)]);
  const cn = g.op('Add', [g.op('ReduceL2', [cbar], [intsAttr('axes', [1]), intAttr('keepdims', 1)]), g.floats([1e-6])]);
  const cos = g.op('Gemm', [g.op('Div', [cbar, cn]), B], [intAttr('transB', 1)]);
  const logits = g.op('Add', [lx, g.op('Mul', [cos, g.floats([p.beta])])]);
  const r = g.op('Softmax', [logits], [intAttr('axis', 1)]);
  const mbar = g.op('MatMul', [r, M]);
  // E[x0|x_t] = (1 − ᾱ s²/v_t) m̄ + (√ᾱ s²/v_t) x_t
  const gain = g.op('Div', [g.op('Mul', [sqa, g.floats([s2])]), vt]);
  const x0 = g.op('Add', [g.op('Mul', [mbar, g.op('Sub', [one, g.op('Mul', [gain, sqa])])]), g.op('Mul', [x, gain])]);
  const eps = g.op('Div', [g.op('Sub', [x, g.op('Mul', [x0, sqa])]), g.op('Sqrt', [oneMinusA])]);
  g.op('Reshape', [eps, g.op('Shape', ['sample'])], [], 'out_sample');
  return model(
    g,
    'unet',
    [
      valueInfo('sample', T().FLOAT, ['batch_size', C, H, W]),
      valueInfo('timestep', T().FLOAT, []),
      valueInfo('encoder_hidden_states', T().FLOAT, ['batch_size', 'sequence_length', p.textDim]),
    ],
    [valueInfo('out_sample', T().FLOAT, ['batch_size', C, H, W])],
  );
}

/** A small fixed feature network (two conv+ReLU+max-pool stages, seeded weights): images [B,3,S,S] → features. */
export function featureNetworkModel(seed = 7): Uint8Array {
  const g = new GraphBuilder(rng(seed));
  const conv = (x: string, cin: number, cout: number, k: number) =>
    g.op(
      'Conv',
      [x, g.weight([cout, cin, k, k], 1 / Math.sqrt(cin * k * k)), g.weight([cout], 0.05)],
      [intsAttr('kernel_shape', [k, k]), intsAttr('pads', [(k - 1) / 2, (k - 1) / 2, (k - 1) / 2, (k - 1) / 2])],
    );
  const maxpool = (x: string, k: number) => g.op('MaxPool', [x], [intsAttr('kernel_shape', [k, k]), intsAttr('strides', [k, k])]);
  const h1 = maxpool(g.op('Relu', [conv('images', 3, 8, 5)]), 4);
  const h2 = maxpool(g.op('Relu', [conv(h1, 8, 16, 3)]), 2);
  g.op('Flatten', [h2], [intAttr('axis', 1)], 'features');
  return model(g, 'features', [valueInfo('images', T().FLOAT, ['batch_size', 3, 'height', 'width'])], [valueInfo('features', T().FLOAT, ['batch_size', 'dim'])]);
}
