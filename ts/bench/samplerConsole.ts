/**
 * `bench sampler`'s console output: a line with the setup, a legend of the columns, and plain aligned tables with
 * numbers as numbers (console.table quoted every value it was given as a string, and said nothing of the setup).
 */

export interface LoopRow {
  model: string;
  latent: string;
  unetMflopsPerCall: number;
  /** Denoising steps of one run (the plan's, from its first: not the U-Net calls). */
  steps: number;
  /** U-Net calls of one run (each on the image's 2 rows with guidance): more than `steps` for PNDM's warm-up and Heun's second calls. */
  unetCalls: number;
  nativeStepsPerSec: number;
  nativeCallsPerSec: number;
  overheadRatio: number;
  tsStepsPerSec: number;
  speedupOverTs: number;
}

export interface MicroRow {
  name: string;
  meanMicros: number;
  opsPerSec: number;
  rme: number;
}

export interface SamplerSetup {
  scheduler: string;
  guidance: number;
  threads: number;
  repeats: number;
}

/** Columns of text under a header row and a rule; a column of numbers (numbers, or decimal strings) is right-aligned. */
export function textTable(head: readonly string[], rows: readonly (readonly (string | number)[])[]): string[] {
  const cells = rows.map((r) => r.map(String));
  const width = head.map((h, j) => Math.max(h.length, ...cells.map((r) => r[j].length)));
  const numeric = head.map((_, j) => cells.every((r) => /^-?\d+(\.\d+)?$/.test(r[j])));
  const line = (r: readonly string[]) =>
    r
      .map((c, j) => (numeric[j] ? c.padStart(width[j]) : c.padEnd(width[j])))
      .join('  ')
      .trimEnd();
  return [line(head), width.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)];
}


/**
 * The loop table with its setup line above and its legend below. Where a scheduler calls the U-Net more often than
 * it steps (PNDM's warm-up, Heun's two calls a step) the calls and calls/s stand beside the steps and steps/s.
 */
export function loopTableLines(setup: SamplerSetup, rows: readonly LoopRow[]): string[] {
  const calls = rows.some((r) => r.unetCalls !== r.steps);
  // [head, cell, a U-Net-call column (shown only where calls and steps differ)]
  const columns: [string, (r: LoopRow) => string | number, boolean][] = [
    ['model', (r) => r.model, false],
    ['latent', (r) => r.latent, false],
    ['MFLOP/call', (r) => r.unetMflopsPerCall, false],
    ['steps', (r) => r.steps, false],
    ['U-Net calls', (r) => r.unetCalls, true],
    ['native steps/s', (r) => r.nativeStepsPerSec.toFixed(1), false],
    ['native calls/s', (r) => r.nativeCallsPerSec.toFixed(1), true],
    ['overhead ×', (r) => r.overheadRatio.toFixed(4), false],
    ['TS steps/s', (r) => r.tsStepsPerSec.toFixed(1), false],
    ['speed-up ×', (r) => r.speedupOverTs.toFixed(2), false],
  ];
  const shown = columns.filter(([, , call]) => calls || !call);
  return [
    `bench sampler: scheduler ${setup.scheduler}, guidance ${setup.guidance} (2 U-Net rows per image), ${setup.threads} ONNX Runtime intra-op thread${setup.threads === 1 ? '' : 's'}, ` +
      `1 image per run; median of ${setup.repeats} runs per loop`,
    ...textTable(
      shown.map(([head]) => head),
      rows.map((r) => shown.map(([, cell]) => cell(r))),
    ),
    'native steps/s: denoising steps per second of wall time, fused engine loop' +
      (calls ? '; native calls/s: U-Net calls per second of the same (this scheduler calls the U-Net more often than it steps)' : ' (one U-Net call a step)') +
      "; overhead ×: that loop's time ÷ the summed U-Net run time (1 = the loop adds nothing); TS steps/s: the same steps in the " +
      'TypeScript loop on onnxruntime-node; speed-up ×: TS wall time ÷ native wall time',
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
