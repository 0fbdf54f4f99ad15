/**
 * The distribution scores with their error bars, on a small mixture with the exact denoiser: the exact
 * probability-flow ODE as the sampler scores within exact sampling's spread, and a deliberately wrong sampler (Euler
 * with 3 steps) scores worse by more than twice its paired SE and above every exact set. The bootstrap SE is checked against the real spread of exact sets.
 */
import { describe, expect, it } from 'vitest';

import { DistributionScorer } from '../../ts/bench/samplerDistribution.js';
import { pairedSe } from '../../ts/bench/mixtureSlicedW2.js';
import { posteriorMean, probabilityFlow, type Mixture } from '../../ts/bench/samplerWorld.js';
import { sdAlphasCumprod } from '../../ts/demo/world.js';
import { philoxNormal } from '../../ts/sd/philox.js';

const K = 4;
const d = 8;
const mix: Mixture = {
  means: Float64Array.from({ length: K * d }, (_, i) => Math.sin(i * 1.3) * 0.8),
  K,
  d,
  s: 0.2,
  text: new Float64Array(K),
  textDim: 1,
  beta: 0,
  alphasCumprod: sdAlphasCumprod(),
  fractionalTimesteps: 'interpolated',
};
const w = Float64Array.of(0.4, 0.3, 0.2, 0.1);
const n = 256;
const SIGMA_MAX = 14.6;
/** Sample i starts from the same unit noise in every sampler (as the bench's samplers do). */
const noise = (i: number): Float64Array => Float64Array.from(philoxNormal(77, i, 0, 0, d));

/** The exact probability-flow ODE from σ_max to 1e-3, then the final denoising step x̂0 = D(x, σ). */
function exactOdeSamples(): Float64Array {
  const out = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    const x = probabilityFlow(mix, w, noise(i).map((v) => v * SIGMA_MAX), SIGMA_MAX, 1e-3, 1e-8).x;
    out.set(posteriorMean(mix, w, x, 1e-3), i * d);
  }
  return out;
}

/** Euler on the same ODE with `steps` steps geometric in σ, the last one to σ = 0 (x̂0 = D(x, σ_last)). */
function eulerSamples(steps: number): Float64Array {
  const sig = Array.from({ length: steps }, (_, k) => SIGMA_MAX * (0.02 / SIGMA_MAX) ** (k / (steps - 1)));
  const out = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    let x = noise(i).map((v) => v * SIGMA_MAX);
    for (let k = 0; k + 1 < steps; k++) {
      const D = posteriorMean(mix, w, x, sig[k]);
      x = x.map((v, j) => v + ((sig[k + 1] - sig[k]) * (v - D[j])) / sig[k]);
    }
    out.set(posteriorMean(mix, w, x, sig[steps - 1]), i * d);
  }
  return out;
}

describe('distribution scores with error bars', () => {
  const scorer = new DistributionScorer(mix, w, n, { directions: 64, resamples: 200 });
  const exact = scorer.exactSampling(32);
  const ode = scorer.score(exactOdeSamples());
  const wrong = scorer.score(eulerSamples(3));

  it('the exact sampler scores within exact sampling’s spread', () => {
    const e = exact.slicedW2;
    expect(e.mean).toBeGreaterThan(0.03);
    expect(e.sd).toBeGreaterThan(0);
    expect(Math.abs(ode.slicedW2 - e.mean)).toBeLessThan(2.5 * e.sd);
    expect(ode.slicedW2).toBeGreaterThan(e.min * 0.9);
    expect(ode.slicedW2).toBeLessThan(e.max * 1.1);
    // the log-density too: within the exact sets' spread
    expect(Math.abs(ode.logDensityPerDim - exact.logDensityPerDim.mean)).toBeLessThan(3 * exact.logDensityPerDim.sd);
  });

  it('the bootstrap SE is of the order of the real spread of exact sets (conservative: resamples repeat samples)', () => {
    expect(exact.bootstrapSeFirstSet).toBeGreaterThan(0.5 * exact.slicedW2.sd);
    expect(exact.bootstrapSeFirstSet).toBeLessThan(3 * exact.slicedW2.sd);
    expect(ode.slicedW2Se).toBeGreaterThan(0.5 * exact.slicedW2.sd);
    expect(ode.slicedW2Se).toBeLessThan(3 * exact.slicedW2.sd);
  });

  it('a wrong sampler (3 Euler steps) scores worse by more than its SEs, paired or not, and above every exact set', () => {
    const diff = wrong.slicedW2 - ode.slicedW2;
    const se = pairedSe(wrong.replicates, ode.replicates);
    // (measured: 0.205 ± 0.018 against the ODE's 0.094 ± 0.030, paired SE of the difference 0.041; exact sampling
    // 0.068 ± 0.024 over 32 sets)
    expect(diff).toBeGreaterThan(2 * se);
    expect(diff).toBeGreaterThan(3 * Math.hypot(wrong.slicedW2Se, ode.slicedW2Se));
    expect(wrong.slicedW2).toBeGreaterThan(exact.slicedW2.mean + 4 * exact.slicedW2.sd);
    expect(wrong.slicedW2).toBeGreaterThan(exact.slicedW2.max);
  });
});
