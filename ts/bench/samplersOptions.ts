/**
 * `bench samplers`' options, checked once before any work starts (no model loaded, no demo world built), every
 * error naming the flag and what it allows: a value that cannot work fails here, not after minutes of references.
 */
import { InvalidArgumentError } from '../errors.js';
import { SCHEDULERS, type SchedulerName } from '../sd/schedulerConfig.js';

/**
 * The fewest samples per distribution score: the sliced W2 of one sample is the distance between two points, not
 * between two distributions.
 */
export const MIN_SAMPLES = 2;
/**
 * Below this many samples the bench warns that its distribution scores do not rank samplers. Measured on the demo world
 * (docs/sampler.md "Choosing --samples"): 256 is the smallest n at which 2 SD of exact sampling's sliced W2 (0.039) is
 * below the gap between the samplers (DDIM − DPM-Solver++ SDE, 0.12; at 128: 2 × 0.058 against 0.108).
 */
export const RECOMMENDED_SAMPLES = 256;
/** The gap between samplers the recommendation was measured against (demo world, 20 steps), for the warning's text. */
const SAMPLER_GAP = 0.1;

/** The refusal of a --samples value (`got` as typed): the CLI and checkSamplersOptions say the same. */
export function samplesError(got: string): InvalidArgumentError {
  return new InvalidArgumentError(
    `--samples ${got}: expected an integer >= ${MIN_SAMPLES} (the sliced W2 of one sample is the distance between two points, not between ` +
      `two distributions; below ${RECOMMENDED_SAMPLES} the bench warns that its distribution scores do not rank samplers)`,
  );
}

export interface SamplersChecked {
  schedulers: readonly string[];
  steps: readonly number[];
  batches: readonly number[];
  samples: number;
  convergedSteps: number;
}

/** A list flag names each value once: a repeated one would be a duplicate row (or column) of the results and of the order fit. */
function checkOnce(flag: string, values: readonly (string | number)[]): void {
  if (values.length === 0) throw new InvalidArgumentError(`${flag}: expected at least one value, got none`);
  const twice = values.find((v, i) => values.indexOf(v) !== i);
  if (twice !== undefined) throw new InvalidArgumentError(`${flag}: ${twice} is given twice (${values.join(',')}); give each value once`);
}

/**
 * Checks the options against the model's schedule: `trainTimesteps` is num_train_timesteps of its scheduler config
 * (`source`, named in the errors). A run takes at most that many steps, and the converged reference (at least twice
 * the largest --steps, see below) must fit too, so --steps is at most ⌊T/2⌋.
 */
export function checkSamplersOptions(o: SamplersChecked, trainTimesteps: number, source: string): void {
  for (const s of o.schedulers) {
    if (!SCHEDULERS.includes(s as SchedulerName)) throw new InvalidArgumentError(`--schedulers: unknown '${s}' (known: ${SCHEDULERS.join(', ')})`);
  }
  checkOnce('--schedulers', o.schedulers);
  checkOnce('--steps', o.steps);
  checkOnce('--batch', o.batches);
  if (!(Number.isInteger(o.samples) && o.samples >= MIN_SAMPLES)) throw samplesError(String(o.samples));
  const limits = `num_train_timesteps steps (${trainTimesteps} in ${source})`;
  const maxSteps = Math.floor(trainTimesteps / 2);
  const tooMany = o.steps.filter((n) => n > maxSteps);
  if (tooMany.length) {
    throw new InvalidArgumentError(
      `--steps ${tooMany.join(',')}: at most ${maxSteps} (a run takes at most ${limits}, and the converged reference, ` +
        `--converged-steps, must take at least twice the largest --steps)`,
    );
  }
  if (o.convergedSteps > trainTimesteps) {
    throw new InvalidArgumentError(`--converged-steps ${o.convergedSteps}: at most ${trainTimesteps} (a run takes at most ${limits})`);
  }
  // The converged solution is the reference of the "vs converged" errors, and the floor of their order fit is its
  // own difference from a run at ⌈N/2⌉ steps: both must be finer than every run measured, so N >= 2 × the largest.
  const finest = Math.max(...o.steps);
  if (o.convergedSteps < 2 * finest) {
    throw new InvalidArgumentError(
      `--converged-steps ${o.convergedSteps}: the converged reference must be at least twice as fine as the largest --steps (${finest}): expected >= ${2 * finest} ` +
        `(its error floor is its difference from a run at half its steps, which must still be finer than every run measured)`,
    );
  }
}

/** What exact sampling scores at this sample size (samplerDistribution.ts): the sliced W2 of exact sets, mean and SD. */
export interface ExactSpread {
  mean: number;
  sd: number;
}

/**
 * Why the distribution scores of a run do not rank samplers, if they do not: too few samples, or a sampler that
 * scores below exact sampling by more than 2 SD of its spread — a finite set can sit closer to the distribution than
 * exact samples do (samples more concentrated than the distribution, say), so the score alone is not yet a verdict.
 * Empty when neither.
 */
export function distributionWarnings(samples: number, exact: ExactSpread, rows: readonly { scheduler: string; steps: number; slicedW2?: number }[]): string[] {
  const out: string[] = [];
  if (samples < RECOMMENDED_SAMPLES) {
    out.push(
      `--samples ${samples} is below ${RECOMMENDED_SAMPLES}: exact sampling's own spread at this size (exact sets score ${exact.mean.toExponential(2)} ± ` +
        `${exact.sd.toExponential(2)}, mean ± SD) is not small against the gaps between samplers (about ${SAMPLER_GAP} on the demo world; ` +
        `below ${RECOMMENDED_SAMPLES} samples 2 SD of that spread exceeds them), so the distribution scores do not rank samplers; use --samples ${RECOMMENDED_SAMPLES} or more`,
    );
  }
  const low = Math.max(0, exact.mean - 2 * exact.sd);
  const below = rows.filter((r) => r.slicedW2 !== undefined && Number.isFinite(r.slicedW2) && r.slicedW2 < low);
  if (below.length) {
    out.push(
      `${below.map((r) => `${r.scheduler} ${r.steps}`).join(', ')} score${below.length === 1 ? 's' : ''} below exact sampling's sliced W2 by more than 2 SD ` +
        `(< ${low.toExponential(2)}): at ${samples} samples a set can sit closer to the distribution than exact samples do (too concentrated, say), so this is not better than exact sampling`,
    );
  }
  return out;
}
