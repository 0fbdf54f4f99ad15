/**
 * Sliced Wasserstein-2 between a set of samples and an EXACT Gaussian mixture — no reference samples, so the score
 * carries only the samples' own sampling noise.
 *
 * Along a unit direction θ the mixture Σ w_k N(μ_k, s_k² I) projects to the 1-D mixture Σ w_k N(μ_k·θ, s_k²). The W2
 * between the n projected samples (sorted: x_1 ≤ … ≤ x_n, each of mass 1/n) and that mixture is the semi-discrete
 * 1-D W2: W2² = Σ_i ∫_{(i−1)/n}^{i/n} (x_i − F⁻¹(u))² du = Σ_i ∫_{q_{i−1}}^{q_i} (x_i − y)² f(y) dy with q_i = F⁻¹(i/n).
 * Each bin's integral has a closed form per component in φ and Φ; written as the bin's mass m, mean c and variance v
 * it is m·((x_i − c)² + v), so the bins are computed once per direction and every sample set is then scored in
 * O(n log n) per direction. The sliced W2 is √(mean over directions of W2²).
 */
import { philoxNormal } from '../sd/philox.js';
import { mulberry32 } from '../synth/rng.js';
import { normalCdf, normalPdf } from './normalCdf.js';

/** A 1-D mixture of normals: weights summing to 1, means, SDs (> 0). */
export interface NormalMixture1D {
  weights: Float64Array;
  means: Float64Array;
  sds: Float64Array;
}

/** Components further than this many SDs from a point contribute below 1e-32 of their weight: left out. */
const REACH = 12;

/** A 1-D mixture with its components sorted by mean, for the windows of components near a point. */
interface Sorted1D {
  K: number;
  weights: Float64Array;
  means: Float64Array;
  sds: Float64Array;
  /** Σ of the weights of the components before index k. */
  before: Float64Array;
  /** REACH × the largest SD: components whose mean is further than this from a point are at its limits. */
  reach: number;
}

function sortMixture(m: NormalMixture1D): Sorted1D {
  const K = m.weights.length;
  const idx = Array.from({ length: K }, (_, k) => k).sort((a, b) => m.means[a] - m.means[b]);
  const before = new Float64Array(K + 1);
  idx.forEach((k, i) => (before[i + 1] = before[i] + m.weights[k]));
  return {
    K,
    weights: Float64Array.from(idx, (k) => m.weights[k]),
    means: Float64Array.from(idx, (k) => m.means[k]),
    sds: Float64Array.from(idx, (k) => m.sds[k]),
    before,
    reach: REACH * Math.max(...Array.from(m.sds)),
  };
}

/** First index whose mean is ≥ y (sorted means). */
function lowerBound(means: Float64Array, y: number): number {
  let lo = 0;
  let hi = means.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (means[mid] < y) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function sortedCdfPdf(m: Sorted1D, y: number): { cdf: number; pdf: number } {
  const k0 = lowerBound(m.means, y - m.reach);
  const k1 = lowerBound(m.means, y + m.reach);
  let cdf = m.before[k0]; // every component far below y: all of its weight
  let pdf = 0;
  for (let k = k0; k < k1; k++) {
    const w = m.weights[k];
    const z = (y - m.means[k]) / m.sds[k];
    if (z > REACH) cdf += w;
    else if (z >= -REACH) {
      cdf += w * normalCdf(z);
      pdf += (w * normalPdf(z)) / m.sds[k];
    }
  }
  return { cdf, pdf };
}

/** F(y) and f(y) of a 1-D mixture. */
export function mixtureCdfPdf(m: NormalMixture1D, y: number): { cdf: number; pdf: number } {
  return sortedCdfPdf(sortMixture(m), y);
}

/**
 * The quantiles q_i = F⁻¹(i/n), i = 1 … n − 1, in increasing order: safeguarded Newton on F(y) − i/n (a bisection step
 * whenever Newton leaves the bracket), each starting from the previous quantile, to a relative 1e-15.
 */
export function mixtureQuantiles(m: NormalMixture1D, n: number): Float64Array {
  return sortedQuantiles(sortMixture(m), n);
}

function sortedQuantiles(m: Sorted1D, n: number): Float64Array {
  let lo0 = Infinity;
  let hi0 = -Infinity;
  for (let k = 0; k < m.K; k++) {
    lo0 = Math.min(lo0, m.means[k] - 40 * m.sds[k]);
    hi0 = Math.max(hi0, m.means[k] + 40 * m.sds[k]);
  }
  const q = new Float64Array(Math.max(0, n - 1));
  let prev = lo0;
  let prevPdf = 0;
  for (let i = 1; i < n; i++) {
    const p = i / n;
    let lo = prev;
    let hi = hi0;
    // start one Newton step of 1/n from the previous quantile when its density allows
    let y = prevPdf > 0 ? Math.min(prev + 1 / n / prevPdf, hi0) : prev;
    for (let it = 0; it < 400; it++) {
      const { cdf, pdf } = sortedCdfPdf(m, y);
      const g = cdf - p;
      prevPdf = pdf;
      if (g === 0) break;
      if (g < 0) lo = Math.max(lo, y);
      else hi = Math.min(hi, y);
      let next = pdf > 0 ? y - g / pdf : Number.NaN;
      if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
      const done = Math.abs(next - y) <= 1e-15 * (1 + Math.abs(y)) || hi - lo <= 1e-15 * (1 + Math.abs(y));
      y = next;
      if (done) break;
    }
    q[i - 1] = y;
    prev = y;
  }
  return q;
}

/** The mixture between consecutive quantiles i/n: per bin its mass (1/n up to rounding), mean and variance. */
export interface QuantileBins {
  n: number;
  mass: Float64Array;
  mean: Float64Array;
  variance: Float64Array;
}

/**
 * Each bin's mass, mean and variance in closed form: per component (z = (y − μ)/s, bin [a, b] in z, reference point r
 * near the bin, c = (r − μ)/s), ∫ f = ΔΦ, ∫ (y − r) f = s(φ(a) − φ(b) − cΔΦ), ∫ (y − r)² f = s²((1 + c²)ΔΦ −
 * (bφ(b) − aφ(a)) − 2c(φ(a) − φ(b))). Moments are taken about r (the bin's boundary nearer the middle, or for the two
 * infinite end bins the finite one) so that narrow bins keep their digits; ΔΦ comes from the tail that keeps them.
 * Only the components within REACH SDs of the bin enter (sorted by mean: a window per bin).
 */
export function quantileBins(m1: NormalMixture1D, n: number): QuantileBins {
  const m = sortMixture(m1);
  const K = m.K;
  const mass = new Float64Array(n);
  const mean = new Float64Array(n);
  const variance = new Float64Array(n);
  if (n === 1) {
    // the whole mixture
    let mu = 0;
    for (let k = 0; k < K; k++) mu += m.weights[k] * m.means[k];
    let v = 0;
    for (let k = 0; k < K; k++) v += m.weights[k] * (m.sds[k] ** 2 + (m.means[k] - mu) ** 2);
    return { n, mass: Float64Array.of(1), mean: Float64Array.of(mu), variance: Float64Array.of(v) };
  }
  const q = sortedQuantiles(m, n);
  // per component, its Φ(z), Φ(−z), φ(z), z at the last two boundaries (slot j % 2 holds boundary j): each computed once
  const slotOf = [new Int32Array(K).fill(-2), new Int32Array(K).fill(-2)];
  const cdfS = [new Float64Array(K), new Float64Array(K)];
  const sfS = [new Float64Array(K), new Float64Array(K)];
  const pdfS = [new Float64Array(K), new Float64Array(K)];
  const zS = [new Float64Array(K), new Float64Array(K)];
  // boundary j is q_j for 0 ≤ j < n − 1; j = −1 is −∞, j = n − 1 is +∞
  const at = (k: number, j: number): number => {
    const s = j & 1;
    if (slotOf[s][k] === j) return s;
    slotOf[s][k] = j;
    const y = j < 0 ? -Infinity : j >= n - 1 ? Infinity : q[j];
    const z = (y - m.means[k]) / m.sds[k];
    zS[s][k] = z;
    if (z > REACH) {
      cdfS[s][k] = 1;
      sfS[s][k] = 0;
      pdfS[s][k] = z === Infinity ? 0 : normalPdf(z);
    } else if (z < -REACH) {
      cdfS[s][k] = 0;
      sfS[s][k] = 1;
      pdfS[s][k] = z === -Infinity ? 0 : normalPdf(z);
    } else if (z < 0) {
      const t = normalCdf(z);
      cdfS[s][k] = t;
      sfS[s][k] = 1 - t;
      pdfS[s][k] = normalPdf(z);
    } else {
      const t = normalCdf(-z);
      cdfS[s][k] = 1 - t;
      sfS[s][k] = t;
      pdfS[s][k] = normalPdf(z);
    }
    return s;
  };
  const mid = Math.floor(n / 2);
  for (let i = 0; i < n; i++) {
    const yLo = i === 0 ? -Infinity : q[i - 1];
    const yHi = i === n - 1 ? Infinity : q[i];
    // reference point: a finite boundary, the one nearer the distribution's middle
    const r = !Number.isFinite(yLo) ? yHi : !Number.isFinite(yHi) ? yLo : i < mid ? yHi : yLo;
    const k0 = i === 0 ? 0 : lowerBound(m.means, yLo - m.reach);
    const k1 = i === n - 1 ? K : lowerBound(m.means, yHi + m.reach);
    let m0 = 0;
    let m1 = 0;
    let m2 = 0;
    for (let k = k0; k < k1; k++) {
      const w = m.weights[k];
      if (w === 0) continue;
      const sa = at(k, i - 1);
      const sb = at(k, i);
      const a = zS[sa][k];
      const b = zS[sb][k];
      if (a > REACH || b < -REACH) continue;
      const dPhi = a >= 0 ? sfS[sa][k] - sfS[sb][k] : cdfS[sb][k] - cdfS[sa][k];
      const sd = m.sds[k];
      const c = (r - m.means[k]) / sd;
      const pa = pdfS[sa][k];
      const pb = pdfS[sb][k];
      const apa = pa === 0 ? 0 : a * pa;
      const bpb = pb === 0 ? 0 : b * pb;
      m0 += w * dPhi;
      m1 += w * sd * (pa - pb - c * dPhi);
      m2 += w * sd * sd * ((1 + c * c) * dPhi - (bpb - apa) - 2 * c * (pa - pb));
    }
    const cm = m1 / m0;
    mass[i] = m0;
    mean[i] = r + cm;
    variance[i] = Math.max(0, m2 / m0 - cm * cm);
  }
  return { n, mass, mean, variance };
}

/** W2² between n sorted samples (ascending) and the mixture whose bins these are (quantileBins(m, n)). */
export function semiDiscreteW2Squared(sorted: ArrayLike<number>, bins: QuantileBins): number {
  if (sorted.length !== bins.n) throw new Error(`semiDiscreteW2Squared: ${sorted.length} samples against bins for ${bins.n}`);
  let total = 0;
  for (let i = 0; i < bins.n; i++) {
    const dx = sorted[i] - bins.mean[i];
    total += bins.mass[i] * (dx * dx + bins.variance[i]);
  }
  return total;
}

/** The 1-D W2 between samples (any order) and a 1-D mixture. */
export function mixtureW2(samples: ArrayLike<number>, m: NormalMixture1D): number {
  const sorted = Float64Array.from(samples).sort();
  return Math.sqrt(semiDiscreteW2Squared(sorted, quantileBins(m, sorted.length)));
}

/** A d-dimensional mixture Σ w_k N(μ_k, s_k² I): K × d means, per-component SDs. */
export interface IsotropicMixture {
  means: Float64Array;
  K: number;
  d: number;
  sds: Float64Array;
  weights: Float64Array;
}

/** Directions of the slicing: Philox normals (stream 9, one counter per direction), normalised. */
export function sliceDirections(d: number, count: number, seed: number): Float64Array[] {
  return Array.from({ length: count }, (_, p) => {
    const dir = Float64Array.from(philoxNormal(seed, p, 9, 0, d));
    const norm = Math.sqrt(dir.reduce((s, v) => s + v * v, 0));
    return dir.map((v) => v / norm);
  });
}

/** Default number of slicing directions and their Philox seed (the seed the sample-to-sample score used). */
export const SLICE_DIRECTIONS = 256;
export const SLICE_SEED = 99;

/** Per-direction projections of n samples, sorted, with each sorted value's sample index (for the bootstrap). */
export interface ProjectedSamples {
  n: number;
  sorted: Float64Array[];
  order: Int32Array[];
}

/**
 * The sliced W2 of sample sets of one size n against one mixture: the quantile bins of every direction are built once
 * (the expensive part: F⁻¹ of a K-component mixture at n − 1 points per direction) and reused for every set scored.
 */
export class MixtureSlicedW2 {
  readonly n: number;
  readonly directions: Float64Array[];
  readonly bins: QuantileBins[];

  constructor(readonly mixture: IsotropicMixture, n: number, options: { directions?: number; seed?: number } = {}) {
    if (!(Number.isInteger(n) && n >= 1)) throw new Error(`MixtureSlicedW2: n must be an integer >= 1, got ${n}`);
    const { means, K, d, sds, weights } = mixture;
    if (means.length !== K * d || sds.length !== K || weights.length !== K) throw new Error(`MixtureSlicedW2: means must be K × d (${K} × ${d}), sds and weights K`);
    this.n = n;
    this.directions = sliceDirections(d, options.directions ?? SLICE_DIRECTIONS, options.seed ?? SLICE_SEED);
    this.bins = this.directions.map((dir) => {
      const pm = new Float64Array(K);
      for (let k = 0; k < K; k++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += means[k * d + j] * dir[j];
        pm[k] = s;
      }
      return quantileBins({ weights, means: pm, sds }, n);
    });
  }

  /** Projects n samples (n × d) on every direction and sorts them. */
  project(samples: Float64Array): ProjectedSamples {
    const { d } = this.mixture;
    const n = samples.length / d;
    if (n !== this.n) throw new Error(`MixtureSlicedW2: expected ${this.n} samples of dimension ${d} (${this.n * d} values), got ${samples.length} values`);
    const sorted: Float64Array[] = [];
    const order: Int32Array[] = [];
    const proj = new Float64Array(n);
    for (const dir of this.directions) {
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += samples[i * d + j] * dir[j];
        proj[i] = s;
      }
      const idx = Int32Array.from({ length: n }, (_, i) => i).sort((a, b) => proj[a] - proj[b] || a - b);
      order.push(idx);
      sorted.push(Float64Array.from(idx, (i) => proj[i]));
    }
    return { n, sorted, order };
  }

  /** W2² per direction of projected samples. */
  perDirection(p: ProjectedSamples): Float64Array {
    return Float64Array.from(p.sorted, (s, k) => semiDiscreteW2Squared(s, this.bins[k]));
  }

  /** The sliced W2: √(mean over directions of the semi-discrete W2²). */
  score(samples: Float64Array | ProjectedSamples): number {
    const p = samples instanceof Float64Array ? this.project(samples) : samples;
    const w = this.perDirection(p);
    return Math.sqrt(w.reduce((a, v) => a + v, 0) / w.length);
  }

  /**
   * The sliced W2 of a resample given by counts (how many times each of the n samples is drawn; they sum to n), on
   * the same directions: the resample sorted is each sorted sample repeated by its count, so no sort is needed.
   */
  resampledScore(p: ProjectedSamples, counts: Int32Array): number {
    let total = 0;
    for (let k = 0; k < p.sorted.length; k++) {
      const { mass, mean, variance } = this.bins[k];
      const s = p.sorted[k];
      const o = p.order[k];
      let bin = 0;
      let acc = 0;
      for (let e = 0; e < p.n; e++) {
        const x = s[e];
        for (let c = counts[o[e]]; c > 0; c--, bin++) {
          const dx = x - mean[bin];
          acc += mass[bin] * (dx * dx + variance[bin]);
        }
      }
      total += acc;
    }
    return Math.sqrt(total / p.sorted.length);
  }
}

/**
 * The bootstrap resamples: `resamples` count vectors over n samples, drawn from `seed` by mulberry32 (synth/rng.ts:
 * reproducible, independent of the Philox streams of the samples and directions). The same vectors are used for
 * every sample set of the run, so the replicates of two sets whose sample i shares its noise (the bench's samplers) are
 * paired: the SD of their differences is the SE of the difference of their scores.
 */
export function bootstrapCounts(n: number, resamples: number, seed: number): Int32Array[] {
  const rand = mulberry32(seed);
  return Array.from({ length: resamples }, () => {
    const c = new Int32Array(n);
    for (let i = 0; i < n; i++) c[Math.min(n - 1, Math.floor(rand() * n))]++;
    return c;
  });
}

/** The bootstrap replicates of a set's sliced W2 (one per count vector). */
export function bootstrapReplicates(sw: MixtureSlicedW2, p: ProjectedSamples, counts: readonly Int32Array[]): Float64Array {
  return Float64Array.from(counts, (c) => sw.resampledScore(p, c));
}

/** Sample SD (n − 1). */
export function sampleSd(v: ArrayLike<number>): number {
  const n = v.length;
  if (n < 2) return Number.NaN;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += v[i] / n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (v[i] - mean) ** 2;
  return Math.sqrt(ss / (n - 1));
}

/** The SE of the difference of two paired sets' scores: the SD of their replicates' differences. */
export function pairedSe(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`pairedSe: ${a.length} vs ${b.length} replicates`);
  return sampleSd(Float64Array.from({ length: a.length }, (_, i) => a[i] - b[i]));
}
