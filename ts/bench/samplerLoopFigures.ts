/**
 * `bench sampler`'s figures for one model size, from the runs of the native and the TypeScript loop that ran side by
 * side (timeInterleaved in lockstep: run i of each in round i, alternating which goes first). Every figure is a median
 * with its interquartile range and the run count: the old figures, medians of 3 runs of 2–7 ms, ranged from 8,887 to
 * 28,799 native steps/s on the tiny model over the records, with no spread to say so.
 *
 * Two overheads, each a ratio to the summed U-Net run time the engine measured:
 * - loop ÷ U-Net: the engine's own loop time (init, steps, the final copy into the result; docs/sampler.md's ≤ 1.03
 *   target), what the fused loop adds around ONNX Runtime;
 * - wall ÷ U-Net: the caller's wall time of one `Diffusion.img2img` call, the TypeScript loop's definition, so the two
 *   loops compare on it (beyond the loop it holds the call's argument checks and plan, the output array's allocation,
 *   the job's hop to the engine's thread and back to the event loop, the inputs' finiteness checks, step compilation
 *   and the U-Net's input binding; the latents are written into the output array in the loop, not copied after).
 */
import { timingStats, type TimingStats } from './samplerTiming.js';

/** One timed run of the native loop: `seconds` is the wall time of the img2img call; the rest the engine's stats. */
export interface NativeRun {
  seconds: number;
  loopSeconds: number;
  unetSeconds: number;
  updateSeconds: number;
}

/** One timed run of the TypeScript loop: wall seconds and the summed U-Net call times. */
export interface TsRun {
  seconds: number;
  unetSeconds: number;
}

/** What identifies a row: the model and the counts of one run. */
export interface LoopShape {
  model: string;
  latent: string;
  unetMflopsPerCall: number;
  /** Denoising steps of one run (the plan's, from its first: not the U-Net calls). */
  steps: number;
  /** U-Net calls of one run (each on the image's 2 rows with guidance): more than `steps` for PNDM's warm-up and Heun's second calls. */
  unetCalls: number;
}

/** The figures the console table prints. Each `…Iqr` is [at the first quartile, at the third] of its figure. */
export interface LoopRow extends LoopShape {
  nativeStepsPerSec: number;
  nativeStepsPerSecIqr: [number, number];
  nativeCallsPerSec: number;
  /** Median over the runs of the engine's loop time ÷ its summed U-Net time. */
  nativeLoopOverhead: number;
  /** Median over the runs of the img2img call's wall time ÷ the summed U-Net time (tsWallOverhead's definition). */
  nativeWallOverhead: number;
  tsStepsPerSec: number;
  tsStepsPerSecIqr: [number, number];
  /** Median over the runs of the TypeScript loop's wall time ÷ its summed U-Net time. */
  tsWallOverhead: number;
  /** Median over the rounds of TS wall ÷ native wall of the same round. */
  speedupOverTs: number;
  speedupOverTsIqr: [number, number];
  /** Runs of each loop (the same for both: they ran in lockstep). */
  repeats: number;
}

/** A row as the record keeps it: the printed figures and the distributions they came from. */
export interface LoopFigures extends LoopRow {
  nativeLoopOverheadIqr: [number, number];
  nativeWallOverheadIqr: [number, number];
  tsWallOverheadIqr: [number, number];
  nativeWallSeconds: TimingStats;
  nativeLoopSeconds: TimingStats;
  nativeUnetSeconds: TimingStats;
  nativeUpdateSeconds: TimingStats;
  tsWallSeconds: TimingStats;
  tsUnetSeconds: TimingStats;
}

const iqr = (s: TimingStats): [number, number] => [s.q1, s.q3];
/** A rate `count / seconds` at the median and across the quartiles (the slower time gives the lower rate). */
const rate = (count: number, s: TimingStats): { median: number; iqr: [number, number] } => ({ median: count / s.median, iqr: [count / s.q3, count / s.q1] });

export function loopFigures(shape: LoopShape, native: readonly NativeRun[], ts: readonly TsRun[]): LoopFigures {
  if (!native.length || native.length !== ts.length) {
    throw new Error(`bench sampler: expected paired runs of both loops, got ${native.length} native and ${ts.length} TypeScript`);
  }
  const nWall = timingStats(native.map((r) => r.seconds));
  const tWall = timingStats(ts.map((r) => r.seconds));
  const nRate = rate(shape.steps, nWall);
  const tRate = rate(shape.steps, tWall);
  const loopOver = timingStats(native.map((r) => r.loopSeconds / r.unetSeconds));
  const wallOver = timingStats(native.map((r) => r.seconds / r.unetSeconds));
  const tsOver = timingStats(ts.map((r) => r.seconds / r.unetSeconds));
  const speedup = timingStats(ts.map((r, i) => r.seconds / native[i].seconds));
  return {
    ...shape,
    nativeStepsPerSec: nRate.median,
    nativeStepsPerSecIqr: nRate.iqr,
    nativeCallsPerSec: shape.unetCalls / nWall.median,
    nativeLoopOverhead: loopOver.median,
    nativeWallOverhead: wallOver.median,
    tsStepsPerSec: tRate.median,
    tsStepsPerSecIqr: tRate.iqr,
    tsWallOverhead: tsOver.median,
    speedupOverTs: speedup.median,
    speedupOverTsIqr: iqr(speedup),
    repeats: native.length,
    nativeLoopOverheadIqr: iqr(loopOver),
    nativeWallOverheadIqr: iqr(wallOver),
    tsWallOverheadIqr: iqr(tsOver),
    nativeWallSeconds: nWall,
    nativeLoopSeconds: timingStats(native.map((r) => r.loopSeconds)),
    nativeUnetSeconds: timingStats(native.map((r) => r.unetSeconds)),
    nativeUpdateSeconds: timingStats(native.map((r) => r.updateSeconds)),
    tsWallSeconds: tWall,
    tsUnetSeconds: timingStats(ts.map((r) => r.unetSeconds)),
  };
}
