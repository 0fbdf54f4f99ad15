/**
 * The exact ground truth of the demo world for sampler benchmarks. Its U-Net (ts/demo/models.ts) is the
 * exact denoiser of a text-weighted Gaussian mixture: given conditioning c the data distribution is
 * p(x0 | c) = Σ_k w_k N(μ_k, s² I) with w = softmax(β cos(c̄, b_k)). Read back from the model file, that
 * gives: exact samples of the distribution, its log-density, the posterior mean D(x, σ) and therefore the
 * probability-flow ODE dx/dσ = (x − D(x, σ))/σ, integrated here with an adaptive Dormand–Prince solver in
 * float64 — the solution every deterministic scheduler converges to.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { ALPHA_CUMPROD_T } from '../demo/models.js';
import { FormatError } from '../errors.js';
import { onnxProto } from '../lazyPackages.js';
import { philoxNormal } from '../sd/philox.js';
import type { RefScheduler } from '../sd/referenceSchedulers.js';

export interface Mixture {
  /** K × d component means. */
  means: Float64Array;
  K: number;
  d: number;
  /** Per-dimension component SD. */
  s: number;
  /** Normalised text vectors b_k (K × D) and the text sharpness β. */
  text: Float64Array;
  textDim: number;
  beta: number;
  /** ᾱ_t of the U-Net's table (t = 0..999). */
  alphasCumprod: Float64Array;
  /**
   * How the U-Net reads a fractional timestep: 'interpolated' — at σ(t) linearly interpolated in the σ
   * table, the σ diffusers' σ-based schedulers integrate at; 'truncated' — a world built before that
   * change, which denoises at σ(⌊t⌋) (exact only at integer t, e.g. the bench's trailing spacing).
   */
  fractionalTimesteps: 'interpolated' | 'truncated';
}

function floats(t: import('onnx-proto').onnx.ITensorProto): Float64Array {
  const raw = t.rawData;
  if (raw && raw.length) {
    const f = new Float32Array(raw.byteLength / 4);
    new Uint8Array(f.buffer).set(raw);
    return Float64Array.from(f);
  }
  return Float64Array.from(t.floatData ?? []);
}

/** Reads the mixture back from a demo world's unet/model.onnx (the graph mixtureUnetModel writes). */
export async function readMixture(modelDir: string): Promise<Mixture> {
  const path = join(modelDir, 'unet', 'model.onnx');
  const m = onnxProto().ModelProto.decode(await readFile(path));
  const g = m.graph;
  const bad = (why: string): never => {
    throw new FormatError(`${path}: not a demo-world mixture U-Net (${why}); build one with \`brainlatent demo\` or pass a demo world's model folder`);
  };
  if (!g) return bad('no graph');
  const inits = new Map((g.initializer ?? []).map((t) => [t.name ?? '', t]));
  const nodes = g.node ?? [];
  const producer = new Map<string, (typeof nodes)[number]>();
  for (const nd of nodes) for (const o of nd.output ?? []) producer.set(o, nd);
  // M: the Gemm on the flattened sample; B: the Gemm on the normalised mean text embedding
  const gemms = nodes.filter((nd) => nd.opType === 'Gemm');
  const mGemm = gemms.find((nd) => producer.get(nd.input?.[0] ?? '')?.opType === 'Flatten') ?? bad('no Gemm on the sample');
  const bGemm = gemms.find((nd) => nd !== mGemm) ?? bad('no text Gemm');
  const M = inits.get(mGemm.input?.[1] ?? '') ?? bad('no means');
  const Bt = inits.get(bGemm.input?.[1] ?? '') ?? bad('no text vectors');
  const betaMul = nodes.find((nd) => nd.opType === 'Mul' && nd.input?.[0] === bGemm.output?.[0]) ?? bad('no beta');
  const gather = nodes.find((nd) => nd.opType === 'Gather') ?? bad('no alphas table');
  // Current worlds gather σ_t (interpolated at fractional t) and name ᾱ_t's node; worlds built before
  // gathered ᾱ_t itself at the truncated timestep.
  const interpolated = nodes.some((nd) => nd.output?.[0] === ALPHA_CUMPROD_T);
  const alphaNode = interpolated ? ALPHA_CUMPROD_T : gather.output?.[0];
  const s2Mul = nodes.find((nd) => nd.opType === 'Mul' && nd.input?.[0] === alphaNode && inits.has(nd.input?.[1] ?? '')) ?? bad('no s²');
  const table = floats(inits.get(gather.input?.[0] ?? '') ?? bad('no table'));
  const [K, d] = (M.dims ?? []).map(Number);
  const [, D] = (Bt.dims ?? []).map(Number);
  return {
    means: floats(M),
    K,
    d,
    s: Math.sqrt(floats(inits.get(s2Mul.input?.[1] ?? '')!)[0]),
    text: floats(Bt),
    textDim: D,
    beta: floats(inits.get(betaMul.input?.[1] ?? '')!)[0],
    alphasCumprod: interpolated ? table.map((sg) => 1 / (1 + sg * sg)) : table,
    fractionalTimesteps: interpolated ? 'interpolated' : 'truncated',
  };
}

/** Mixture weights for conditioning rows c [seq × D] (the U-Net's text weighting, in float64). */
export function mixtureWeights(mix: Mixture, c: Float32Array, seq: number): Float64Array {
  const D = mix.textDim;
  const cbar = new Float64Array(D);
  for (let s = 0; s < seq; s++) for (let j = 0; j < D; j++) cbar[j] += c[s * D + j] / seq;
  const norm = Math.sqrt(cbar.reduce((a, v) => a + v * v, 0)) + 1e-6;
  const logits = new Float64Array(mix.K);
  for (let k = 0; k < mix.K; k++) {
    let dot = 0;
    for (let j = 0; j < D; j++) dot += (cbar[j] / norm) * mix.text[k * D + j];
    logits[k] = mix.beta * dot;
  }
  return softmax(logits);
}

function softmax(l: Float64Array): Float64Array {
  const mx = Math.max(...l);
  const e = l.map((v) => Math.exp(v - mx));
  const s = e.reduce((a, v) => a + v, 0);
  return e.map((v) => v / s);
}

/** Posterior mean E[x0 | x0 + σ n = x] under the mixture (float64). */
export function posteriorMean(mix: Mixture, w: Float64Array, x: Float64Array, sigma: number): Float64Array {
  const { K, d, means, s } = mix;
  const v = s * s + sigma * sigma;
  const logits = new Float64Array(K);
  for (let k = 0; k < K; k++) {
    if (w[k] === 0) {
      logits[k] = -Infinity;
      continue;
    }
    let q = 0;
    for (let j = 0; j < d; j++) {
      const r = x[j] - means[k * d + j];
      q += r * r;
    }
    logits[k] = Math.log(w[k]) - q / (2 * v);
  }
  const r = softmax(logits);
  const out = new Float64Array(d);
  const gain = (s * s) / v;
  for (let k = 0; k < K; k++) {
    if (r[k] < 1e-300) continue;
    for (let j = 0; j < d; j++) out[j] += r[k] * (means[k * d + j] + gain * (x[j] - means[k * d + j]));
  }
  return out;
}

/** log p(x0 | c) under the mixture, per dimension (so values compare across latent sizes). */
export function logDensityPerDim(mix: Mixture, w: Float64Array, x: Float64Array): number {
  const { K, d, means, s } = mix;
  const logits = new Float64Array(K);
  for (let k = 0; k < K; k++) {
    let q = 0;
    for (let j = 0; j < d; j++) {
      const r = x[j] - means[k * d + j];
      q += r * r;
    }
    logits[k] = Math.log(w[k]) - q / (2 * s * s);
  }
  const mx = Math.max(...logits);
  const lse = mx + Math.log(logits.reduce((a, v) => a + Math.exp(v - mx), 0));
  return lse / d - 0.5 * Math.log(2 * Math.PI * s * s);
}

/** n exact samples of the mixture (a fixed Philox stream per sample): n × d. */
export function exactSamples(mix: Mixture, w: Float64Array, n: number, seed: number): Float64Array {
  const out = new Float64Array(n * mix.d);
  const cdf = new Float64Array(mix.K);
  w.reduce((acc, v, k) => (cdf[k] = acc + v), 0);
  for (let i = 0; i < n; i++) {
    const u = philoxNormal(seed, i, 7, 0, 2);
    // a uniform from two normals' CDF-free combination: the angle is uniform on [0, 2π)
    const uni = (Math.atan2(u[1], u[0]) + Math.PI) / (2 * Math.PI);
    let k = cdf.findIndex((c) => c >= uni);
    if (k < 0) k = mix.K - 1;
    const z = philoxNormal(seed, i, 8, 0, mix.d);
    for (let j = 0; j < mix.d; j++) out[i * mix.d + j] = mix.means[k * mix.d + j] + mix.s * z[j];
  }
  return out;
}

/**
 * The probability-flow ODE from x at σ_from to σ_to, in σ-space (x_σ = x0 + σ n): dx/dlnσ = x − D(x, σ),
 * adaptive Dormand–Prince 5(4) in float64 with relative tolerance `rtol`. Returns x at σ_to and the
 * number of denoiser evaluations.
 */
export function probabilityFlow(
  mix: Mixture,
  w: Float64Array,
  x0: Float64Array,
  sigmaFrom: number,
  sigmaTo: number,
  rtol = 1e-9,
): { x: Float64Array; evaluations: number } {
  const f = (u: number, x: Float64Array): Float64Array => {
    const D = posteriorMean(mix, w, x, Math.exp(u));
    return x.map((v, j) => v - D[j]);
  };
  const a = [
    [],
    [1 / 5],
    [3 / 40, 9 / 40],
    [44 / 45, -56 / 15, 32 / 9],
    [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
    [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
    [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
  ];
  const c = [0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1, 1];
  const b5 = [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0];
  const b4 = [5179 / 57600, 0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40];
  let u = Math.log(sigmaFrom);
  const uEnd = Math.log(sigmaTo);
  let h = (uEnd - u) / 50;
  let x = Float64Array.from(x0);
  let evals = 0;
  const n = x.length;
  while ((uEnd - u) * Math.sign(h) > 1e-14) {
    if ((u + h - uEnd) * Math.sign(h) > 0) h = uEnd - u;
    const k: Float64Array[] = [];
    for (let st = 0; st < 7; st++) {
      const xs = Float64Array.from(x);
      for (let q = 0; q < st; q++) if (a[st][q]) for (let j = 0; j < n; j++) xs[j] += h * a[st][q] * k[q][j];
      k.push(f(u + c[st] * h, xs));
      evals++;
    }
    let err = 0;
    const x5 = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      let s5 = x[j];
      let s4 = x[j];
      for (let st = 0; st < 7; st++) {
        s5 += h * b5[st] * k[st][j];
        s4 += h * b4[st] * k[st][j];
      }
      x5[j] = s5;
      const sc = rtol * (1 + Math.max(Math.abs(x[j]), Math.abs(s5)));
      err = Math.max(err, Math.abs(s5 - s4) / sc);
    }
    if (err <= 1) {
      u += h;
      x = x5;
    }
    h *= Math.min(5, Math.max(0.2, 0.9 * (err === 0 ? 5 : err ** -0.2)));
  }
  return { x, evaluations: evals };
}

/** σ(t) of the U-Net's table at a possibly fractional t: linear interpolation, as the demo U-Net reads it. */
export function mixtureSigma(mix: Mixture, t: number): number {
  const ac = mix.alphasCumprod;
  const sig = (i: number): number => Math.sqrt((1 - ac[i]) / ac[i]);
  const tc = Math.min(Math.max(t, 0), ac.length - 1);
  const lo = Math.min(Math.floor(tc), ac.length - 2);
  return sig(lo) + (tc - lo) * (sig(lo + 1) - sig(lo));
}

/**
 * One deterministic scheduler's run on the exact denoiser, in float64 with the latents rounded to float32
 * between steps as diffusers keeps them (ts/sd/referenceSchedulers.ts: diffusers' classes transcribed, the
 * reference the engine is tested against), from unit noise `noise` at strength 1 and conditioning weights w.
 * The engine returns only the final latents; this gives the scheduler's state where the run reaches
 * timestep `tStop`: after the U-Net calls before the last one at `tStop` (Heun and PNDM call twice at a
 * timestep and finish their step onto it with the second call; UniPC's state there is its predictor — its
 * corrector at tStop runs with the next call). Returned in σ-space (x0 + σ n, the exact ODE's variable), with
 * `sigmaStop` the σ the caller integrates the ODE to, and the final latents of the whole run.
 */
export function schedulerStateAt(
  mix: Mixture,
  w: Float64Array,
  sched: RefScheduler,
  steps: number,
  noise: Float64Array,
  tStop: number,
  sigmaStop: number,
): { state: Float64Array; final: Float64Array; callsToState: number } {
  sched.setTimesteps(steps);
  sched.setBeginIndex?.(0);
  const ts = sched.timesteps;
  const stopAt = ts.lastIndexOf(tStop);
  if (stopAt < 1) throw new Error(`schedulerStateAt: timestep ${tStop} is not reached by a ${steps}-step run (${ts.join(', ')})`);
  let x = sched.addNoise(new Float64Array(noise.length), noise, ts[0]);
  let state: Float64Array | null = null;
  for (let k = 0; k < ts.length; k++) {
    const t = ts[k];
    const xin = sched.scaleModelInput(x, t);
    if (k === stopAt) {
      // the U-Net's input is VP-space for every scheduler (√ᾱ x0 + √(1 − ᾱ) n): ÷ √ᾱ gives σ-space
      const inv = Math.sqrt(1 + sigmaStop * sigmaStop);
      state = xin.map((v) => v * inv);
    }
    // the exact denoiser as the U-Net: ε = (x_σ − D(x_σ, σ))/σ
    const sigma = mixtureSigma(mix, t);
    const xs = xin.map((v) => v * Math.sqrt(1 + sigma * sigma));
    const D = posteriorMean(mix, w, xs, sigma);
    const eps = Float64Array.from(Float32Array.from(xs.map((v, j) => (v - D[j]) / sigma)));
    x = Float64Array.from(Float32Array.from(sched.step(eps, t, x, () => new Float64Array(x.length))));
  }
  return { state: state as Float64Array, final: x, callsToState: stopAt };
}
