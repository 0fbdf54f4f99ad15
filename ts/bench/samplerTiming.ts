/**
 * Timing of `bench samplers`' cost columns. One run of a demo-world sampler takes a few milliseconds, so the best of two
 * single runs (the old rule) measured noise: lms and dpmpp2m at 40 steps, both 40 U-Net calls with 1–2% loop overhead,
 * came out at 106.8 and 277.9 images/s in one record, and ddim at 20 steps at 282.9 then 506.9 in two. Here every
 * configuration is repeated until it has both a minimum number of runs and a minimum total time, in rounds that run each
 * configuration once (starting one place later each round), so a slow spell of the machine falls on every configuration
 * alike; the figure is the median with its interquartile range and the repeat count.
 */

/** The stop rule: at least `minRepeats` runs and `minSeconds` of measured time per configuration, at most `maxRepeats` runs. */
export interface RepeatRule {
  minSeconds: number;
  minRepeats: number;
  maxRepeats: number;
}

/** The bench's rule: ≥ 0.2 s and ≥ 5 runs, whichever comes later (capped at 200 runs). */
export const TIMING_RULE: RepeatRule = { minSeconds: 0.2, minRepeats: 5, maxRepeats: 200 };

/** Order statistics of one configuration's measured values (quartiles by linear interpolation, as numpy's default). */
export interface TimingStats {
  median: number;
  q1: number;
  q3: number;
  min: number;
  max: number;
  repeats: number;
}

/** The p-quantile (0 ≤ p ≤ 1) of sorted values, linear between order statistics. */
function quantile(sorted: readonly number[], p: number): number {
  const h = (sorted.length - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

export function timingStats(values: readonly number[]): TimingStats {
  if (!values.length) throw new Error('timingStats: no values');
  const s = [...values].sort((a, b) => a - b);
  return { median: quantile(s, 0.5), q1: quantile(s, 0.25), q3: quantile(s, 0.75), min: s[0], max: s[s.length - 1], repeats: s.length };
}

/**
 * Runs `measure` for every key in rounds until each key's rule is met: a round runs each key that still needs runs once,
 * starting one key later than the round before. `measure` returns the run's measured seconds (what the rule sums) and
 * whatever else the caller keeps; the result holds every key's samples in the order they ran. With `lockstep`, every
 * key runs in every round until all keys meet the rule, so the i-th samples of all keys ran side by side in round i
 * (for a paired comparison: a fast key keeps running beside a slow one instead of alone after it).
 */
export async function timeInterleaved<K, S extends { seconds: number }>(
  keys: readonly K[],
  measure: (key: K) => Promise<S>,
  rule: RepeatRule = TIMING_RULE,
  lockstep = false,
): Promise<Map<K, S[]>> {
  const samples = new Map<K, S[]>(keys.map((k) => [k, []]));
  const done = (k: K): boolean => {
    const s = samples.get(k) as S[];
    if (s.length >= rule.maxRepeats) return true;
    return s.length >= rule.minRepeats && s.reduce((t, x) => t + x.seconds, 0) >= rule.minSeconds;
  };
  for (let round = 0; !keys.every(done); round++) {
    for (let i = 0; i < keys.length; i++) {
      const k = keys[(round + i) % keys.length];
      if (lockstep || !done(k)) (samples.get(k) as S[]).push(await measure(k));
    }
  }
  return samples;
}

/** One configuration's cost figures (a row's `cost` entry). */
export interface CostEntry {
  batch: number;
  /** batch ÷ the median loop time. */
  imagesPerSecond: number;
  /** images/s at the loop time's third and first quartiles: the interquartile range of imagesPerSecond. */
  imagesPerSecondIqr: [number, number];
  /** The median over the runs of loop ÷ U-Net time. */
  overhead: number;
  /** Runs timed (TIMING_RULE). */
  repeats: number;
  /** The loop's seconds per run: median, quartiles, range, count. */
  loopSeconds: TimingStats;
}

/** A cost entry from one configuration's runs (loop and U-Net seconds each). */
export function costEntry(batch: number, runs: readonly { seconds: number; unetSeconds: number }[]): CostEntry {
  const loop = timingStats(runs.map((r) => r.seconds));
  return {
    batch,
    imagesPerSecond: batch / loop.median,
    imagesPerSecondIqr: [batch / loop.q3, batch / loop.q1],
    overhead: timingStats(runs.map((r) => r.seconds / r.unetSeconds)).median,
    repeats: loop.repeats,
    loopSeconds: loop,
  };
}

/** A cost entry as the console and the HTML print it: "106.8 img/s (IQR 100.1–110.2, 23 runs)". */
export function costText(c: Pick<CostEntry, 'imagesPerSecond'> & Partial<CostEntry>): string {
  if (!c.imagesPerSecondIqr || c.repeats === undefined) return `${c.imagesPerSecond.toFixed(1)} img/s`;
  const [lo, hi] = c.imagesPerSecondIqr;
  return `${c.imagesPerSecond.toFixed(1)} img/s (IQR ${lo.toFixed(1)}–${hi.toFixed(1)}, ${c.repeats} runs)`;
}
