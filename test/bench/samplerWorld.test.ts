/**
 * The exact ground truth behind `bench samplers`: the mixture read back from a demo-world U-Net, its
 * posterior mean against the U-Net itself, the probability-flow ODE against its closed form for one
 * Gaussian, the sliced Wasserstein distance, and the convergence-order fit.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { convergenceOrder } from '../../ts/bench/samplerOrder.js';
import { MixtureSlicedW2 } from '../../ts/bench/mixtureSlicedW2.js';
import { exactSamples, logDensityPerDim, mixtureWeights, posteriorMean, probabilityFlow, readMixture } from '../../ts/bench/samplerWorld.js';
import { mixtureUnetModel } from '../../ts/demo/models.js';
import { sdAlphasCumprod } from '../../ts/demo/world.js';
import { OnnxModel } from '../../ts/sd/OnnxModel.js';

let dir = '';
const K = 5;
const d = 4 * 2 * 2;
const D = 6;
const means = Float32Array.from({ length: K * d }, (_, i) => Math.sin(i * 1.3) * 0.8);
const text = Float32Array.from({ length: K * D }, (_, i) => Math.cos(i * 0.7));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'brainlatent-mixture-'));
  await mkdir(join(dir, 'unet'), { recursive: true });
  const bytes = mixtureUnetModel({ means, components: K, latentShape: [4, 2, 2], text, textDim: D, componentSd: 0.2, beta: 3, alphasCumprod: sdAlphasCumprod() });
  await writeFile(join(dir, 'unet', 'model.onnx'), bytes);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the demo world as ground truth', () => {
  it('reads the mixture back, and its posterior mean is what the U-Net computes', async () => {
    const mix = await readMixture(dir);
    expect([mix.K, mix.d, mix.textDim]).toEqual([K, d, D]);
    expect(mix.s).toBeCloseTo(0.2, 6);
    expect(mix.beta).toBe(3);
    const c = Float32Array.from({ length: 77 * D }, (_, i) => Math.sin(i * 0.11));
    const w = mixtureWeights(mix, c, 77);
    expect(w.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    // the U-Net's ε at t gives x̂0 = (x − √(1−ᾱ) ε)/√ᾱ, which in σ-space is D(x/√ᾱ, σ)
    const model = await OnnxModel.load(join(dir, 'unet', 'model.onnx'));
    try {
      const t = 400;
      const a = mix.alphasCumprod[t];
      const sigma = Math.sqrt((1 - a) / a);
      const x = Float32Array.from({ length: d }, (_, i) => Math.cos(i * 0.9) * 1.5);
      const out = await model.run(
        { sample: { data: x, shape: [1, 4, 2, 2] }, timestep: { data: Float32Array.of(t), shape: [] }, encoder_hidden_states: { data: c, shape: [1, 77, D] } },
        ['out_sample'],
      );
      const eps = out.out_sample.data;
      const x0 = Float64Array.from(x, (v, i) => (v - Math.sqrt(1 - a) * eps[i]) / Math.sqrt(a));
      const D0 = posteriorMean(mix, w, Float64Array.from(x, (v) => v / Math.sqrt(a)), sigma);
      for (let i = 0; i < d; i++) expect(Math.abs(x0[i] - D0[i])).toBeLessThan(2e-4);
    } finally {
      model.dispose();
    }
  });

  it('denoises at a fractional timestep at the σ the σ-based schedulers integrate at (np.interp of the σ table), not at ⌊t⌋', async () => {
    // Euler, Heun, LMS under linspace spacing (and Karras σ) pass fractional t: diffusers' σ(t) is the
    // linear interpolation of √((1 − ᾱ)/ᾱ) between the neighbouring integers, clamped to 0..999.
    const mix = await readMixture(dir);
    expect(mix.fractionalTimesteps).toBe('interpolated');
    const table = Array.from(sdAlphasCumprod(), (a) => Math.sqrt((1 - a) / a));
    const sigmaAt = (t: number): number => {
      const tc = Math.min(Math.max(t, 0), 999);
      const lo = Math.min(Math.floor(tc), 998);
      return table[lo] + (tc - lo) * (table[lo + 1] - table[lo]);
    };
    const c = Float32Array.from({ length: 77 * D }, (_, i) => Math.sin(i * 0.11));
    const w = mixtureWeights(mix, c, 77);
    const model = await OnnxModel.load(join(dir, 'unet', 'model.onnx'));
    try {
      for (const t of [0, 0.6, 3.3, 400.37, 998.5, 999]) {
        const sigma = sigmaAt(t);
        const a = 1 / (1 + sigma * sigma);
        const x = Float32Array.from({ length: d }, (_, i) => Math.cos(i * 0.9) * 1.5);
        const out = await model.run(
          { sample: { data: x, shape: [1, 4, 2, 2] }, timestep: { data: Float32Array.of(t), shape: [] }, encoder_hidden_states: { data: c, shape: [1, 77, D] } },
          ['out_sample'],
        );
        // in σ-space: x̂0 = x/√ᾱ − σ ε must be D(x/√ᾱ, σ)
        const xs = Float64Array.from(x, (v) => v / Math.sqrt(a));
        const x0 = Float64Array.from(xs, (v, i) => v - sigma * out.out_sample.data[i]);
        const D0 = posteriorMean(mix, w, xs, sigma);
        for (let i = 0; i < d; i++) expect(Math.abs(x0[i] - D0[i]), `t = ${t}, element ${i}`).toBeLessThan(2e-5 * (1 + Math.abs(D0[i])));
      }
    } finally {
      model.dispose();
    }
  });

  it('integrates the probability-flow ODE: one Gaussian has the closed form x − μ ∝ √(s² + σ²)', async () => {
    const mix = await readMixture(dir);
    const w = new Float64Array(K);
    w[2] = 1;
    const mu = Float64Array.from(mix.means.subarray(2 * d, 3 * d));
    const x = Float64Array.from({ length: d }, (_, i) => mu[i] + Math.sin(i) * 3);
    const r = probabilityFlow(mix, w, x, 10, 0.05, 1e-10);
    const scale = Math.sqrt((mix.s ** 2 + 0.05 ** 2) / (mix.s ** 2 + 100));
    for (let i = 0; i < d; i++) expect(r.x[i]).toBeCloseTo(mu[i] + (x[i] - mu[i]) * scale, 8);
  });

  it('scores samples: exact samples have the mixture log-density, shifted ones a sliced W2 near the shift', async () => {
    const mix = await readMixture(dir);
    const w = Float64Array.from({ length: K }, () => 1 / K);
    const a = exactSamples(mix, w, 400, 1);
    const sw = new MixtureSlicedW2({ means: mix.means, K, d, sds: new Float64Array(K).fill(mix.s), weights: w }, 400, { directions: 64 });
    const exact = sw.score(a);
    // a shift of 0.5 in every coordinate projects to 0.5 Σθ_j on a unit direction θ: √(mean (0.5 Σθ)²) over the directions
    const shift = Math.sqrt(sw.directions.reduce((acc, dir) => acc + (0.5 * dir.reduce((x, v) => x + v, 0)) ** 2, 0) / 64);
    const shifted = sw.score(a.map((v) => v + 0.5));
    expect(shifted).toBeGreaterThan(5 * exact);
    expect(Math.abs(shifted - shift)).toBeLessThanOrEqual(exact + 1e-12); // Minkowski: the shift moves every projected sample alike
    // mean log-density of exact samples ≈ −entropy: close to the within-component Gaussian's −½ log(2πe s²)
    let ll = 0;
    for (let i = 0; i < 400; i++) ll += logDensityPerDim(mix, w, a.subarray(i * d, (i + 1) * d)) / 400;
    expect(ll).toBeCloseTo(-0.5 * Math.log(2 * Math.PI * Math.E * mix.s ** 2) - Math.log(K) / d, 1);
  });

  it('fits the convergence order on log-log axes above the floor', () => {
    const pts = [5, 10, 20, 40, 80].map((n) => ({ calls: n, err: Math.max(3 / n ** 2, 1e-6) }));
    expect(convergenceOrder(pts, 1e-6)).toBeCloseTo(2, 6); // 5 steps (error 0.12) is before the asymptotic range
    const floor = [5, 10, 20, 40, 80, 160, 320].map((n) => ({ calls: n, err: Math.max(0.1 / n, 1e-3) }));
    expect(convergenceOrder(floor, 1e-3)).toBeCloseTo(1, 6);
    expect(convergenceOrder([{ calls: 10, err: 1e-5 }, { calls: 20, err: 1e-5 }], 1e-5)).toBeNull();
  });
});
