/**
 * `bench sampler`'s console output: a line with the setup, a legend of the columns, and plain aligned tables with
 * numbers as numbers (console.table quoted every value it was given as a string, and said nothing of the setup).
 */

export interface LoopRow {
  model: string;
  latent: string;
  unetMflopsPerCall: number;
  steps: number;
  nativeStepsPerSec: number;
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


/** The loop table with its setup line above and its legend below. */
export function loopTableLines(setup: SamplerSetup, rows: readonly LoopRow[]): string[] {
  return [
    `bench sampler: scheduler ${setup.scheduler}, guidance ${setup.guidance} (2 U-Net rows per image), ${setup.threads} ONNX Runtime intra-op thread${setup.threads === 1 ? '' : 's'}, ` +
      `1 image per run; median of ${setup.repeats} runs per loop`,
    ...textTable(
      ['model', 'latent', 'MFLOP/call', 'steps', 'native steps/s', 'overhead ×', 'TS steps/s', 'speed-up ×'],
      rows.map((r) => [r.model, r.latent, r.unetMflopsPerCall, r.steps, r.nativeStepsPerSec.toFixed(1), r.overheadRatio.toFixed(4), r.tsStepsPerSec.toFixed(1), r.speedupOverTs.toFixed(2)]),
    ),
    'native steps/s: denoising steps per second of wall time, fused engine loop; overhead ×: that loop\'s time ÷ the summed U-Net run time ' +
      '(1 = the loop adds nothing); TS steps/s: the same steps in the TypeScript loop on onnxruntime-node; speed-up ×: TS wall time ÷ native wall time',
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
