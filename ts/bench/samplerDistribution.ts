/**
 * `bench samplers`' distribution scores on the demo world, with their error bars: each sampler's n samples against the
 * EXACT mixture (sliced W2, mixtureSlicedW2.ts; no reference sample set, so no reference noise), a bootstrap SE per
 * score (resampling samples, directions fixed), what exact sampling scores at this n (many exact sets: the floor a
 * perfect sampler shows), and paired differences between any two runs (their sample i shares its Philox noise, and the
 * bootstrap draws the same resamples for every set, so the SD of replicate differences is the difference's SE).
 */
import { MixtureSlicedW2, bootstrapCounts, bootstrapReplicates, pairedSe, sampleSd, SLICE_DIRECTIONS, SLICE_SEED } from './mixtureSlicedW2.js';
import { exactSamples, logDensityPerDim, type Mixture } from './samplerWorld.js';

/** Exact sets of n samples whose scores are the exact-sampling spread (seeds EXACT_SETS_SEED, +1, …). */
export const EXACT_SETS = 64;
export const EXACT_SETS_SEED = 4321;
/** Bootstrap resamples per score, and the seed of their (shared) draws. */
export const BOOTSTRAP_RESAMPLES = 200;
export const BOOTSTRAP_SEED = 2024;

/** One sample set's distribution scores. */
export interface SetScore {
  /** Sliced W2 to the exact mixture, and its bootstrap SE. */
  slicedW2: number;
  slicedW2Se: number;
  /** Mean log-density per dimension under the mixture, and its SE (SD of the samples' values / √n). */
  logDensityPerDim: number;
  logDensityPerDimSe: number;
  /** Bootstrap replicates of slicedW2 (kept for paired comparisons; not recorded). */
  replicates: Float64Array;
}

export interface ExactSampling {
  sets: number;
  seeds: number[];
  /** The sliced W2 of each exact set: mean, SD, range and every draw. */
  slicedW2: { mean: number; sd: number; min: number; max: number; draws: number[] };
  /** The bootstrap SE of the first exact set's score: how the bootstrap compares with the real spread (sd above). */
  bootstrapSeFirstSet: number;
  /** Mean log-density per dimension of the exact sets: mean and SD over the sets. */
  logDensityPerDim: { mean: number; sd: number };
}

/**
 * Two runs' sliced W2: `scheduler` at `steps` minus `versus` at `versusSteps` (≥ 0: `versus` is the one that scores
 * lower), with the paired SE of that difference. Every run's sample i starts from the same noise and every set is
 * resampled with the same bootstrap draws, so any two runs pair — across step counts too.
 */
export interface PairedComparison {
  steps: number;
  scheduler: string;
  versus: string;
  versusSteps: number;
  difference: number;
  se: number;
}

const mean = (v: ArrayLike<number>): number => Array.from(v).reduce((a, x) => a + x, 0) / v.length;

/** Scores sample sets of one size against one mixture (the exact bins are built once, in the constructor). */
export class DistributionScorer {
  readonly sliced: MixtureSlicedW2;
  readonly counts: Int32Array[];
  readonly buildSeconds: number;

  constructor(
    readonly mix: Mixture,
    readonly weights: Float64Array,
    readonly n: number,
    readonly options: { directions?: number; directionSeed?: number; resamples?: number; bootstrapSeed?: number } = {},
  ) {
    const t0 = performance.now();
    this.sliced = new MixtureSlicedW2(
      { means: mix.means, K: mix.K, d: mix.d, sds: new Float64Array(mix.K).fill(mix.s), weights },
      n,
      { directions: options.directions ?? SLICE_DIRECTIONS, seed: options.directionSeed ?? SLICE_SEED },
    );
    this.counts = bootstrapCounts(n, options.resamples ?? BOOTSTRAP_RESAMPLES, options.bootstrapSeed ?? BOOTSTRAP_SEED);
    this.buildSeconds = (performance.now() - t0) / 1000;
  }

  score(samples: Float64Array): SetScore {
    const p = this.sliced.project(samples);
    const replicates = bootstrapReplicates(this.sliced, p, this.counts);
    const d = this.mix.d;
    const ll = Float64Array.from({ length: this.n }, (_, i) => logDensityPerDim(this.mix, this.weights, samples.subarray(i * d, (i + 1) * d)));
    return {
      slicedW2: this.sliced.score(p),
      slicedW2Se: sampleSd(replicates),
      logDensityPerDim: mean(ll),
      logDensityPerDimSe: sampleSd(ll) / Math.sqrt(this.n),
      replicates,
    };
  }

  /** What exact sampling scores at this n: `sets` exact sets (seeds `seed`, +1, …), each scored as a sampler's. */
  exactSampling(sets = EXACT_SETS, seed = EXACT_SETS_SEED): ExactSampling {
    if (!(Number.isInteger(sets) && sets >= 2)) throw new Error(`exactSampling: sets must be an integer >= 2, got ${sets}`);
    const seeds = Array.from({ length: sets }, (_, k) => seed + k);
    const draws: number[] = [];
    const lls: number[] = [];
    let firstSe = Number.NaN;
    for (const s of seeds) {
      const sc = this.score(exactSamples(this.mix, this.weights, this.n, s));
      if (s === seed) firstSe = sc.slicedW2Se;
      draws.push(sc.slicedW2);
      lls.push(sc.logDensityPerDim);
    }
    return {
      sets,
      seeds,
      slicedW2: { mean: mean(draws), sd: sampleSd(draws), min: Math.min(...draws), max: Math.max(...draws), draws },
      bootstrapSeFirstSet: firstSe,
      logDensityPerDim: { mean: mean(lls), sd: sampleSd(lls) },
    };
  }
}

/**
 * Every pair of runs, once (n runs: n(n − 1)/2 pairs, in the runs' order), the higher score minus the lower ± the
 * paired SE; on a tie the earlier run is `versus`. A difference within about 2 SE does not rank the two at this n.
 */
export function pairedComparisons(rows: readonly { scheduler: string; steps: number; score: SetScore }[]): PairedComparison[] {
  const out: PairedComparison[] = [];
  for (let i = 0; i < rows.length; i++) {
    for (let j = i + 1; j < rows.length; j++) {
      const [hi, lo] = rows[j].score.slicedW2 < rows[i].score.slicedW2 ? [rows[i], rows[j]] : [rows[j], rows[i]];
      out.push({
        steps: hi.steps,
        scheduler: hi.scheduler,
        versus: lo.scheduler,
        versusSteps: lo.steps,
        difference: hi.score.slicedW2 - lo.score.slicedW2,
        se: pairedSe(hi.score.replicates, lo.score.replicates),
      });
    }
  }
  return out;
}

/** Per step count, the best-scoring run's scheduler (the first of equal scores, in the runs' order). */
export function bestAtEachSteps(rows: readonly { scheduler: string; steps: number; slicedW2?: number }[]): Map<number, string> {
  const best = new Map<number, { scheduler: string; slicedW2: number }>();
  for (const r of rows) {
    if (r.slicedW2 === undefined || !Number.isFinite(r.slicedW2)) continue;
    const b = best.get(r.steps);
    if (!b || r.slicedW2 < b.slicedW2) best.set(r.steps, { scheduler: r.scheduler, slicedW2: r.slicedW2 });
  }
  return new Map([...best].map(([n, b]) => [n, b.scheduler]));
}

/**
 * How a paired difference reads: '' where it ranks the two (|difference| ≥ 2 SE), ' (not resolved)' where it does
 * not, ' (identical)' where the two runs scored alike in every replicate (difference and SE 0: two schedulers whose
 * samples agree, as DDIM and UniPC at 2 steps; 0 ≥ 2·0 once called them resolved, review s43).
 */
export function pairNote(difference: number, se: number): '' | ' (not resolved)' | ' (identical)' {
  if (difference === 0 && se === 0) return ' (identical)';
  return Math.abs(difference) >= 2 * se ? '' : ' (not resolved)';
}

/**
 * The printed view of `pairedComparisons`: per step count, every other scheduler against the best-scoring one at that
 * step count (score − best ± SE), in the order of step counts and runs.
 */
export function versusBest(paired: readonly PairedComparison[], rows: readonly { scheduler: string; steps: number; slicedW2?: number }[]): PairedComparison[] {
  const best = bestAtEachSteps(rows);
  const order = new Map(rows.map((r, i) => [`${r.scheduler}@${r.steps}`, i]));
  const steps = [...best.keys()];
  return paired
    .filter((p) => p.steps === p.versusSteps && best.get(p.steps) === p.versus)
    .sort((a, b) => steps.indexOf(a.steps) - steps.indexOf(b.steps) || (order.get(`${a.scheduler}@${a.steps}`) ?? 0) - (order.get(`${b.scheduler}@${b.steps}`) ?? 0));
}
