/**
 * `bench sampler`'s console output: a line with the setup, a legend of the columns, and plain aligned tables with
 * numbers as numbers (console.table quoted every value it was given as a string, and said nothing of the setup).
 */
import type { LoopRow } from './samplerLoopFigures.js';
import type { SchedulerName } from '../sd/schedulerConfig.js';
import type { RepeatRule } from './samplerTiming.js';

export type { LoopRow } from './samplerLoopFigures.js';

export interface MicroRow {
  name: string;
  meanMicros: number;
  opsPerSec: number;
  rme: number;
}

/** What a run of the bench holds fixed: printed above the table and kept in the record beside the figures. */
export interface SamplerSetup {
  scheduler: SchedulerName;
  guidance: number;
  strength: number;
  /** The Philox seed of every run's noise (the same noise in every run and in both loops). */
  seed: number;
  /** Images per img2img call, and the engine's batch size (images per U-Net run, × 2 rows with guidance). */
  imagesPerRun: number;
  batchSize: number;
  threads: number;
  /** ONNX Runtime's intra-op spinning in the engine's session (the TypeScript loop's session keeps onnxruntime-node's default, on). */
  spinning: boolean;
  /** Untimed full runs of each loop before the timed ones. */
  warmupRuns: number;
  /** The stop rule of the timed runs (runs and seconds per loop). */
  rule: RepeatRule;
}

/** Columns of text under a header row and a rule; a column of numbers (numbers, or decimal strings) is right-aligned. */
export function textTable(head: readonly string[], rows: readonly (readonly (string | number)[])[]): string[] {
  const cells = rows.map((r) => r.map(String));
  const width = head.map((h, j) => Math.max(h.length, ...cells.map((r) => r[j].length)));
  // (a number with its range in parentheses, "28,799 (IQR 26,100–29,800)", aligns as a number)
  const numeric = head.map((_, j) => cells.every((r) => /^-?[\d,]+(\.\d+)?( \(.*\))?$/.test(r[j])));
  const line = (r: readonly string[]) =>
    r
      .map((c, j) => (numeric[j] ? c.padStart(width[j]) : c.padEnd(width[j])))
      .join('  ')
      .trimEnd();
  return [line(head), width.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)];
}


/** A rate as printed: whole numbers with thousands separators from 1,000 up, one decimal below. */
export function rateText(v: number): string {
  return v >= 1000 ? Math.round(v).toLocaleString('en-US') : v.toFixed(1);
}

/** A median with its interquartile range: "28,799 (IQR 26,100–29,800)". */
export function withIqr(median: number, [lo, hi]: readonly [number, number], text: (v: number) => string): string {
  return `${text(median)} (IQR ${text(lo)}–${text(hi)})`;
}

/** The setup line above the table. */
export function setupLine(s: SamplerSetup): string {
  const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;
  return (
    `bench sampler: scheduler ${s.scheduler}, guidance ${s.guidance} (2 U-Net rows per image), strength ${s.strength}, seed ${s.seed}, ` +
    `${plural(s.imagesPerRun, 'image')} per run (batch size ${s.batchSize}), ${plural(s.threads, 'ONNX Runtime intra-op thread')}, ` +
    `spinning ${s.spinning ? 'on' : 'off'}; ${plural(s.warmupRuns, 'warm-up run')} of each loop, then native and TS runs alternated ` +
    `round by round until each has ≥ ${s.rule.minRepeats} runs and ≥ ${s.rule.minSeconds} s (at most ${s.rule.maxRepeats}); median (IQR) over the runs`
  );
}

/**
 * The loop table with its setup line above and its legend below. Where a scheduler calls the U-Net more often than
 * it steps (PNDM's warm-up, Heun's two calls a step) the calls and calls/s stand beside the steps and steps/s.
 */
export function loopTableLines(setup: SamplerSetup, rows: readonly LoopRow[]): string[] {
  const calls = rows.some((r) => r.unetCalls !== r.steps);
  const ratio = (v: number) => v.toFixed(3);
  const times = (v: number) => v.toFixed(2);
  // [head, cell, a U-Net-call column (shown only where calls and steps differ)]
  const columns: [string, (r: LoopRow) => string | number, boolean][] = [
    ['model', (r) => r.model, false],
    ['latent', (r) => r.latent, false],
    ['MFLOP/call', (r) => r.unetMflopsPerCall, false],
    ['steps', (r) => r.steps, false],
    ['U-Net calls', (r) => r.unetCalls, true],
    ['runs', (r) => r.repeats, false],
    ['native steps/s', (r) => withIqr(r.nativeStepsPerSec, r.nativeStepsPerSecIqr, rateText), false],
    ['native calls/s', (r) => rateText(r.nativeCallsPerSec), true],
    ['loop÷U-Net', (r) => ratio(r.nativeLoopOverhead), false],
    ['wall÷U-Net', (r) => ratio(r.nativeWallOverhead), false],
    ['TS steps/s', (r) => withIqr(r.tsStepsPerSec, r.tsStepsPerSecIqr, rateText), false],
    ['TS wall÷U-Net', (r) => ratio(r.tsWallOverhead), false],
    ['speed-up ×', (r) => withIqr(r.speedupOverTs, r.speedupOverTsIqr, times), false],
  ];
  const shown = columns.filter(([, , call]) => calls || !call);
  return [
    setupLine(setup),
    ...textTable(
      shown.map(([head]) => head),
      rows.map((r) => shown.map(([, cell]) => cell(r))),
    ),
    'runs: timed runs of each loop; native steps/s: denoising steps per second of the img2img call\'s wall time, fused engine loop' +
      (calls ? '; native calls/s: U-Net calls per second of the same (this scheduler calls the U-Net more often than it steps)' : ' (one U-Net call a step)') +
      "; loop÷U-Net: the engine's own loop time ÷ its summed U-Net run time (1 = the loop adds nothing; the ≤ 1.03 target); " +
      "wall÷U-Net: the call's wall time ÷ the same (the TS loop's definition: adds the call's checks, the hop to the engine's thread and back, set-up); " +
      'TS steps/s: the same steps in the TypeScript loop on onnxruntime-node; TS wall÷U-Net: its wall time ÷ its summed U-Net time; ' +
      'speed-up ×: median over the rounds of TS wall time ÷ native wall time in the same round',
  ];
}

export function microTableLines(rows: readonly MicroRow[]): string[] {
  return [
    'micro-benchmarks (benchmark.js): mean time per call, calls per second, relative margin of error',
    ...textTable(
      ['operation', 'µs', 'ops/s', '±%'],
      rows.map((m) => [m.name, m.meanMicros.toFixed(2), Math.round(m.opsPerSec), m.rme.toFixed(1)]),
    ),
  ];
}
