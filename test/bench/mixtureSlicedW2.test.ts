/**
 * The exact distribution score of `bench samplers`: the normal CDF/quantile helpers against mpmath (40 digits), and the
 * semi-discrete W2 between samples and a Gaussian mixture against a float64 brute-force reference that shares no code
 * with it (the mixture's density by Math.exp only, its CDF by 3-point Gauss–Legendre on a fine grid, its quantiles by
 * bisection, each bin's ∫ (x_i − y)² f(y) dy by composite Gauss–Legendre), plus known cases.
 */
import { describe, expect, it } from 'vitest';

import {
  bootstrapCounts,
  bootstrapReplicates,
  mixtureQuantiles,
  mixtureW2,
  MixtureSlicedW2,
  pairedSe,
  quantileBins,
  sampleSd,
  semiDiscreteW2Squared,
  sliceDirections,
  type NormalMixture1D,
} from '../../ts/bench/mixtureSlicedW2.js';
import { normalCdf, normalMass, normalPdf, normalQuantile, normalSf } from '../../ts/bench/normalCdf.js';

describe('normal CDF and quantile', () => {
  // mpmath ncdf at 40 digits
  const cdf: [number, number][] = [
    [-37, 5.7255712225245768e-300],
    [-30, 4.9067139271481871e-198],
    [-20, 2.7536241186062337e-89],
    [-10, 7.6198530241605261e-24],
    [-8.5, 9.4795348222033184e-18],
    [-5, 2.8665157187919391e-7],
    [-3, 0.0013498980316300945],
    [-2.5, 0.0062096653257761352],
    [-2, 0.022750131948179207],
    [-1, 0.15865525393145705],
    [-0.3, 0.38208857781104737],
    [0.7, 0.75803634777692697],
    [2.2, 0.9860965524865014],
    [4, 0.99996832875816688],
  ];
  it('Φ to 1e-14 (relative), the lower tail at full relative precision down to 1e-300', () => {
    for (const [z, v] of cdf) expect(Math.abs(normalCdf(z) / v - 1), `Φ(${z})`).toBeLessThan(1e-14);
    // the upper tail without cancellation: 1 − Φ(10) is not 0
    expect(Math.abs(normalSf(10) / 7.6198530241605261e-24 - 1)).toBeLessThan(2e-15);
    expect(Math.abs(normalMass(9, 10) / (1.128512207423599e-19) - 1)).toBeLessThan(1e-14);
    expect(normalCdf(0)).toBe(0.5);
    expect([normalCdf(-Infinity), normalCdf(Infinity), normalCdf(-40)]).toEqual([0, 1, 0]);
    expect(normalPdf(0)).toBeCloseTo(1 / Math.sqrt(2 * Math.PI), 16);
  });

  it('Φ⁻¹ to 1e-15, in both tails', () => {
    // mpmath findroot of ncdf(z) − p at 50 digits, p the double; 1e-300 against scipy's ndtri
    const q: [number, number][] = [
      [1e-300, -37.0470962993612],
      [1e-100, -21.273453560965324],
      [1e-20, -9.2623400897984076],
      [1e-10, -6.3613409024040562],
      [1e-5, -4.2648907939228246],
      [0.001, -3.0902323061678135],
      [0.02425, -1.9729610513118848],
      [0.1, -1.2815515655446005],
      [0.3, -0.52440051270804078],
      [0.7, 0.52440051270804078],
      [0.975, 1.9599639845400539],
      [0.999999, 4.7534243088170878],
    ];
    for (const [p, z] of q) expect(Math.abs(normalQuantile(p) - z), `Φ⁻¹(${p})`).toBeLessThan(1e-15 * Math.max(1, Math.abs(z)) * 4);
    expect([normalQuantile(0), normalQuantile(1)]).toEqual([-Infinity, Infinity]);
    expect(Math.abs(normalQuantile(0.5))).toBeLessThan(1e-17);
    for (let z = -37; z <= 3; z += 0.37) expect(Math.abs(normalQuantile(normalCdf(z)) - z)).toBeLessThan(1e-14 * Math.max(1, Math.abs(z)));
    expect(() => normalQuantile(1.5)).toThrow('p must be in [0, 1], got 1.5');
  });
});

/** 3-point Gauss–Legendre on [a, b]. */
function gl3(f: (y: number) => number, a: number, b: number): number {
  const h = (b - a) / 2;
  const m = (a + b) / 2;
  const x = Math.sqrt(3 / 5) * h;
  return h * ((5 / 9) * f(m - x) + (8 / 9) * f(m) + (5 / 9) * f(m + x));
}

/** The semi-discrete W2² by brute force: no φ/Φ closed forms, no shared code. */
function bruteForceW2Squared(samples: readonly number[], m: NormalMixture1D, grid = 200_000, perBin = 400): number {
  const K = m.weights.length;
  const pdf = (y: number): number => {
    let f = 0;
    for (let k = 0; k < K; k++) f += (m.weights[k] * Math.exp(-0.5 * ((y - m.means[k]) / m.sds[k]) ** 2)) / (m.sds[k] * Math.sqrt(2 * Math.PI));
    return f;
  };
  const lo = Math.min(...Array.from(m.means, (mu, k) => mu - 14 * m.sds[k]));
  const hi = Math.max(...Array.from(m.means, (mu, k) => mu + 14 * m.sds[k]));
  const h = (hi - lo) / grid;
  const F = new Float64Array(grid + 1);
  for (let j = 0; j < grid; j++) F[j + 1] = F[j] + gl3(pdf, lo + j * h, lo + (j + 1) * h);
  const cdf = (y: number): number => {
    const j = Math.min(grid - 1, Math.max(0, Math.floor((y - lo) / h)));
    return F[j] + gl3(pdf, lo + j * h, y);
  };
  const quantile = (p: number): number => {
    let a = lo;
    let b = hi;
    for (let it = 0; it < 80; it++) {
      const c = (a + b) / 2;
      if (cdf(c) < p) a = c;
      else b = c;
    }
    return (a + b) / 2;
  };
  const x = [...samples].sort((a, b) => a - b);
  const n = x.length;
  const q = [lo, ...Array.from({ length: n - 1 }, (_, i) => quantile((i + 1) / n)), hi];
  let total = 0;
  for (let i = 0; i < n; i++) {
    const step = (q[i + 1] - q[i]) / perBin;
    for (let s = 0; s < perBin; s++) total += gl3((y) => (x[i] - y) ** 2 * pdf(y), q[i] + s * step, q[i] + (s + 1) * step);
  }
  return total;
}

const mix3: NormalMixture1D = { weights: Float64Array.of(0.5, 0.3, 0.2), means: Float64Array.of(-1.2, 0.4, 2.5), sds: Float64Array.of(0.3, 0.05, 0.8) };
const gauss = (mu = 0, sd = 1): NormalMixture1D => ({ weights: Float64Array.of(1), means: Float64Array.of(mu), sds: Float64Array.of(sd) });

describe('semi-discrete W2 between samples and a 1-D Gaussian mixture', () => {
  it('agrees with the brute-force quadrature to 1e-9 (relative), samples inside, between and far outside the components', () => {
    const samples = [-1.5, -1.1, -0.2, 0.39, 0.41, 0.45, 1.7, 2.2, 3.9, 9];
    const exact = mixtureW2(samples, mix3) ** 2;
    const brute = bruteForceW2Squared(samples, mix3);
    expect(Math.abs(exact / brute - 1)).toBeLessThan(1e-9);
    // a bug of one bin (samples paired with the wrong quantile range) is far outside that tolerance
    const shifted = [...samples].sort((a, b) => a - b);
    const bins = quantileBins(mix3, samples.length);
    const offByOne = semiDiscreteW2Squared([shifted[1], ...shifted.slice(0, -1)], bins);
    expect(Math.abs(offByOne / brute - 1)).toBeGreaterThan(1e-3);
    // and with 3 samples, the bins are wide (whole components in one bin)
    const three = [-1, 0.5, 2];
    expect(Math.abs(mixtureW2(three, mix3) ** 2 / bruteForceW2Squared(three, mix3, 200_000, 4000) - 1)).toBeLessThan(1e-9);
  });

  it('has the closed forms of one and two samples against one Gaussian', () => {
    // n = 1: E(x − Y)² = (x − μ)² + s²
    expect(mixtureW2([1.3], gauss(0.5, 0.7)) ** 2).toBeCloseTo(0.8 ** 2 + 0.49, 14);
    // n = 1 against a mixture: (x − mean)² + variance
    const mean = 0.5 * -1.2 + 0.3 * 0.4 + 0.2 * 2.5;
    const variance = 0.5 * (0.09 + 1.44) + 0.3 * (0.0025 + 0.16) + 0.2 * (0.64 + 6.25) - mean ** 2;
    expect(mixtureW2([0.1], mix3) ** 2).toBeCloseTo((0.1 - mean) ** 2 + variance, 13);
    // n = 2: bins (−∞, μ] and [μ, ∞): ½(d² + s²) ± 2 d s φ(0) per bin, d = x − μ
    const [mu, s, x1, x2] = [0.3, 1.5, -0.4, 2];
    const phi0 = 1 / Math.sqrt(2 * Math.PI);
    const want = 0.5 * ((x1 - mu) ** 2 + s * s) + 2 * (x1 - mu) * s * phi0 + 0.5 * ((x2 - mu) ** 2 + s * s) - 2 * (x2 - mu) * s * phi0;
    expect(mixtureW2([x2, x1], gauss(mu, s)) ** 2).toBeCloseTo(want, 13);
  });

  it('puts the quantiles where the mixture CDF is i/n', () => {
    const q = mixtureQuantiles(mix3, 8);
    const cdf = (y: number) => Array.from(mix3.weights).reduce((a, w, k) => a + w * normalCdf((y - mix3.means[k]) / mix3.sds[k]), 0);
    q.forEach((y, i) => expect(Math.abs(cdf(y) - (i + 1) / 8)).toBeLessThan(2e-15));
    const bins = quantileBins(mix3, 8);
    for (const m of bins.mass) expect(Math.abs(m - 1 / 8)).toBeLessThan(4e-15);
  });

  it('samples at the quantile midpoints are close: W2 is the bins’ own spread, several times below an exact sample’s', () => {
    const midpoints = (m: NormalMixture1D, n: number): number[] => {
      const q = mixtureQuantiles(m, 2 * n);
      return Array.from({ length: n }, (_, i) => q[2 * i]); // F⁻¹((i + ½)/n)
    };
    const w50 = mixtureW2(midpoints(mix3, 50), mix3);
    expect(Math.abs(w50 ** 2 / bruteForceW2Squared(midpoints(mix3, 50), mix3) - 1)).toBeLessThan(1e-8);
    const w200 = mixtureW2(midpoints(mix3, 200), mix3);
    // (mixture SD 1.38; 200 exact samples are ~0.2 away: i.i.d. draws scored the same way, 20 sets, mean 0.225)
    expect(w200).toBeCloseTo(0.0278, 4);
    expect(w200).toBeLessThan(w50 / 2);
  });

  it('a shifted Gaussian: W2² = shift² + the unshifted midpoints’ W2², and W2 → the shift', () => {
    const n = 1000;
    const mid = Array.from({ length: n }, (_, i) => normalQuantile((i + 0.5) / n));
    const w0 = mixtureW2(mid, gauss()) ** 2;
    const w = mixtureW2(mid.map((v) => v + 0.5), gauss()) ** 2;
    expect(w).toBeCloseTo(0.25 + w0, 12);
    expect(Math.abs(Math.sqrt(w) - 0.5)).toBeLessThan(1e-3);
    // scaled: W2 between N(0, 1) and N(0, 1.5²) is 0.5 (|σ₁ − σ₂|)
    expect(Math.abs(mixtureW2(mid.map((v) => 1.5 * v), gauss()) - 0.5)).toBeLessThan(2e-3);
  });
});

describe('sliced W2 against a d-dimensional mixture', () => {
  const K = 3;
  const d = 3;
  const mix = {
    K,
    d,
    means: Float64Array.of(-1, 0.2, 0.5, 0.8, -0.6, 0.1, 0.3, 1.1, -0.9),
    sds: Float64Array.of(0.2, 0.35, 0.1),
    weights: Float64Array.of(0.25, 0.45, 0.3),
  };
  const samples = Float64Array.from({ length: 12 * d }, (_, i) => Math.sin(i * 2.1) * 0.9 + Math.cos(i * 0.37) * 0.3);

  it('is √(mean over directions of W2²), each the brute-force W2² of the projected mixture', () => {
    const sw = new MixtureSlicedW2(mix, 12, { directions: 4, seed: 5 });
    const dirs = sliceDirections(d, 4, 5);
    let total = 0;
    for (const dir of dirs) {
      const proj = Array.from({ length: 12 }, (_, i) => dir.reduce((a, v, j) => a + v * samples[i * d + j], 0));
      const pm = Float64Array.from({ length: K }, (_, k) => dir.reduce((a, v, j) => a + v * mix.means[k * d + j], 0));
      total += bruteForceW2Squared(proj, { weights: mix.weights, means: pm, sds: mix.sds }, 100_000, 200);
    }
    expect(Math.abs(sw.score(samples) / Math.sqrt(total / 4) - 1)).toBeLessThan(1e-9);
    expect(() => sw.score(samples.subarray(0, 11 * d))).toThrow('expected 12 samples of dimension 3');
  }, 30_000);

  it('scores a resample from its counts as the resampled set itself', () => {
    const sw = new MixtureSlicedW2(mix, 12, { directions: 16 });
    const p = sw.project(samples);
    expect(sw.resampledScore(p, new Int32Array(12).fill(1))).toBeCloseTo(sw.score(samples), 14);
    const counts = bootstrapCounts(12, 3, 7);
    for (const c of counts) {
      expect(c.reduce((a, v) => a + v, 0)).toBe(12);
      const picked = Array.from(c).flatMap((times, i) => Array.from({ length: times }, () => Array.from(samples.subarray(i * d, (i + 1) * d))));
      expect(sw.resampledScore(p, c)).toBeCloseTo(sw.score(Float64Array.from(picked.flat())), 13);
    }
    // the same seed draws the same resamples (paired across sample sets)
    expect(bootstrapCounts(12, 3, 7)).toEqual(counts);
    expect(pairedSe([1, 2, 3], [1, 2, 3])).toBe(0);
    expect(pairedSe([1, 2, 3], [0, 2, 4])).toBeCloseTo(1, 14); // differences 1, 0, −1
  });

  it('draws the same bootstrap resamples as before it used ts/synth/rng.ts (values captured from its own mulberry32)', () => {
    expect(bootstrapCounts(12, 3, 7).map((c) => Array.from(c))).toEqual([
      [2, 1, 1, 1, 1, 1, 2, 0, 2, 0, 0, 1],
      [0, 1, 3, 2, 1, 0, 2, 0, 0, 1, 1, 1],
      [1, 1, 0, 1, 0, 0, 2, 2, 1, 1, 1, 2],
    ]);
    // the bench's seed (BOOTSTRAP_SEED)
    expect(bootstrapCounts(8, 2, 2024).map((c) => Array.from(c))).toEqual([
      [0, 1, 1, 0, 1, 4, 1, 0],
      [1, 0, 0, 4, 0, 2, 1, 0],
    ]);
    // and so the same bootstrap SE of a score, to the last bit
    const sw = new MixtureSlicedW2(mix, 12, { directions: 16 });
    const r = bootstrapReplicates(sw, sw.project(samples), bootstrapCounts(12, 50, 2024));
    expect([sampleSd(r), r[0], r[1]]).toEqual([0.012834588291008319, 0.8644090966098736, 0.8748112862499008]);
  });
});
