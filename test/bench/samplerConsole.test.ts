/**
 * `bench sampler`'s console output said neither which scheduler, guidance and threads it measured nor what
 * "overhead ×" and "TS steps/s" are, and printed its numbers as quoted strings (console.table of toFixed strings).
 * Its figures were then medians of 3 runs of a few ms with no spread, and "overhead ×" (engine loop ÷ U-Net) stood
 * beside a TS overhead of another definition (wall ÷ U-Net). loopFigures gives every figure as a median with its
 * interquartile range and run count, and both overheads of the native loop. The runs here are scripted: no timing.
 */
import { describe, expect, it } from 'vitest';

import { loopTableLines, microTableLines, setupLine, textTable, type SamplerSetup } from '../../ts/bench/samplerConsole.js';
import { loopFigures, type NativeRun, type TsRun } from '../../ts/bench/samplerLoopFigures.js';
import { TIMING_RULE } from '../../ts/bench/samplerTiming.js';

const setup: SamplerSetup = { scheduler: 'ddim', guidance: 5, strength: 1, seed: 1, imagesPerRun: 1, batchSize: 1, threads: 1, spinning: true, warmupRuns: 2, rule: TIMING_RULE };

// five rounds of the tiny model: native walls (sorted .002 .002 .0022 .0025 .004), U-Net 1.5 ms, loop 1.02 × U-Net
const nativeWalls = [0.002, 0.0025, 0.002, 0.004, 0.0022];
const native: NativeRun[] = nativeWalls.map((s) => ({ seconds: s, loopSeconds: 0.00153, unetSeconds: 0.0015, updateSeconds: 0.00001 }));
// TS walls (sorted .010 .011 .012 .012 .013), U-Net 6 ms; per-round TS ÷ native: 6, 4.4, 5, 3.25, 5.4545…
const ts: TsRun[] = [0.012, 0.011, 0.01, 0.013, 0.012].map((s) => ({ seconds: s, unetSeconds: 0.006 }));
const tiny = loopFigures({ model: 'tiny', latent: '8×8', unetMflopsPerCall: 0.29, steps: 50, unetCalls: 50 }, native, ts);
const large = loopFigures(
  { model: 'large', latent: '32×32', unetMflopsPerCall: 471.86, steps: 20, unetCalls: 20 },
  [0.07, 0.06, 0.065, 0.066, 0.064].map((s) => ({ seconds: s, loopSeconds: 0.0641, unetSeconds: 0.064, updateSeconds: 0.00005 })),
  [0.07, 0.068, 0.069, 0.072, 0.07].map((s) => ({ seconds: s, unetSeconds: 0.066 })),
);

describe('bench sampler loop figures', () => {
  it('gives steps/s at the median wall time with its interquartile range, and the run count', () => {
    expect(tiny.repeats).toBe(5);
    expect(tiny.nativeStepsPerSec).toBeCloseTo(50 / 0.0022, 6);
    expect(tiny.nativeStepsPerSecIqr[0]).toBeCloseTo(50 / 0.0025, 6); // at the third quartile of the times
    expect(tiny.nativeStepsPerSecIqr[1]).toBeCloseTo(50 / 0.002, 6);
    expect(tiny.nativeCallsPerSec).toBeCloseTo(50 / 0.0022, 6);
    expect(tiny.tsStepsPerSec).toBeCloseTo(50 / 0.012, 6);
    expect(tiny.tsStepsPerSecIqr[0]).toBeCloseTo(50 / 0.012, 6);
    expect(tiny.tsStepsPerSecIqr[1]).toBeCloseTo(50 / 0.011, 6);
    expect(tiny.nativeWallSeconds).toEqual({ median: 0.0022, q1: 0.002, q3: 0.0025, min: 0.002, max: 0.004, repeats: 5 });
    expect(tiny.tsWallSeconds.median).toBe(0.012);
    expect(tiny.nativeLoopSeconds.median).toBe(0.00153);
    expect(tiny.nativeUnetSeconds.median).toBe(0.0015);
    expect(tiny.tsUnetSeconds.median).toBe(0.006);
  });

  it("keeps the engine's loop overhead and the wall overhead apart, the latter as the TS loop's", () => {
    expect(tiny.nativeLoopOverhead).toBeCloseTo(1.02, 10);
    expect(tiny.nativeLoopOverheadIqr).toEqual([tiny.nativeLoopOverhead, tiny.nativeLoopOverhead]);
    // wall ÷ U-Net per run: 1.333, 1.667, 1.333, 2.667, 1.467 → median 1.467
    expect(tiny.nativeWallOverhead).toBeCloseTo(0.0022 / 0.0015, 10);
    expect(tiny.nativeWallOverheadIqr[0]).toBeCloseTo(0.002 / 0.0015, 10);
    expect(tiny.nativeWallOverheadIqr[1]).toBeCloseTo(0.0025 / 0.0015, 10);
    expect(tiny.tsWallOverhead).toBeCloseTo(2, 10);
    expect(tiny.tsWallOverheadIqr[0]).toBeCloseTo(0.011 / 0.006, 10);
  });

  it('takes the speed-up round by round (TS ÷ native of the same round): its median and quartiles', () => {
    expect(tiny.speedupOverTs).toBeCloseTo(5, 10);
    expect(tiny.speedupOverTsIqr[0]).toBeCloseTo(4.4, 10);
    expect(tiny.speedupOverTsIqr[1]).toBeCloseTo(0.012 / 0.0022, 10);
    expect(() => loopFigures({ model: 'm', latent: '8×8', unetMflopsPerCall: 1, steps: 5, unetCalls: 5 }, native, ts.slice(1))).toThrow('paired runs');
  });
});

describe('bench sampler console output', () => {
  it('opens with the setup, ends with a legend of the columns, and prints numbers unquoted with their IQR', () => {
    const lines = loopTableLines(setup, [tiny, large]);
    expect(lines[0]).toBe(
      'bench sampler: scheduler ddim, guidance 5 (2 U-Net rows per image), strength 1, seed 1, 1 image per run (batch size 1), ' +
        '1 ONNX Runtime intra-op thread, spinning on; 2 warm-up runs of each loop, then native and TS runs alternated round by round ' +
        'until each has ≥ 5 runs and ≥ 0.2 s (at most 200); median (IQR) over the runs',
    );
    expect(lines[1].split(/\s{2,}/)).toEqual(['model', 'latent', 'MFLOP/call', 'steps', 'runs', 'native steps/s', 'loop÷U-Net', 'wall÷U-Net', 'TS steps/s', 'TS wall÷U-Net', 'speed-up ×']);
    expect(lines[3].trim().split(/\s{2,}/)).toEqual(['tiny', '8×8', '0.29', '50', '5', '22,727 (IQR 20,000–25,000)', '1.020', '1.467', '4,167 (IQR 4,167–4,545)', '2.000', '5.00 (IQR 4.40–5.45)']);
    expect(lines[4].trim().split(/\s{2,}/)).toEqual(['large', '32×32', '471.86', '20', '5', '307.7 (IQR 303.0–312.5)', '1.002', '1.016', '285.7 (IQR 285.7–289.9)', '1.061', '1.09 (IQR 1.06–1.09)']);
    expect(lines.slice(1, 5).join('\n')).not.toMatch(/['"]/);
    // numbers with their ranges right-aligned: the columns end together
    expect(lines[3].indexOf('25,000)') + 7).toBe(lines[4].indexOf('312.5)') + 6);
    const legend = lines.at(-1) as string;
    expect(legend).toContain("loop÷U-Net: the engine's own loop time ÷ its summed U-Net run time (1 = the loop adds nothing; the ≤ 1.03 target)");
    expect(legend).toContain("wall÷U-Net: the call's wall time ÷ the same (the TS loop's definition");
    expect(legend).toContain('TS steps/s: the same steps in the TypeScript loop on onnxruntime-node');
    expect(legend).toContain('speed-up ×: median over the rounds of TS wall time ÷ native wall time in the same round');
    expect(loopTableLines({ ...setup, scheduler: 'unipc', threads: 4 }, [tiny])[0]).toContain('scheduler unipc, guidance 5 (2 U-Net rows per image), strength 1, seed 1, 1 image per run (batch size 1), 4 ONNX Runtime intra-op threads');
  });

  it('says every setting a comparison of records needs', () => {
    const line = setupLine({ ...setup, strength: 0.75, seed: 42, imagesPerRun: 4, batchSize: 2, spinning: false, warmupRuns: 1, rule: { minSeconds: 0.5, minRepeats: 9, maxRepeats: 50 } });
    expect(line).toContain('strength 0.75, seed 42, 4 images per run (batch size 2)');
    expect(line).toContain('spinning off; 1 warm-up run of each loop');
    expect(line).toContain('until each has ≥ 9 runs and ≥ 0.5 s (at most 50)');
  });

  it("a scheduler that calls the U-Net more often than it steps (Heun) has its calls and calls/s beside the steps and steps/s", () => {
    // (the "steps" column was the engine's U-Net calls and "native steps/s" calls per second: 39 "steps" for Heun's 20)
    const heun = loopFigures(
      { model: 'tiny', latent: '8×8', unetMflopsPerCall: 0.29, steps: 20, unetCalls: 39 },
      [0.02, 0.02, 0.02, 0.02, 0.02].map((s) => ({ seconds: s, loopSeconds: 0.0204, unetSeconds: 0.02, updateSeconds: 0 })),
      [0.1, 0.1, 0.1, 0.1, 0.1].map((s) => ({ seconds: s, unetSeconds: 0.05 })),
    );
    const lines = loopTableLines({ ...setup, scheduler: 'heun' }, [heun]);
    expect(lines[1].split(/\s{2,}/)).toEqual(['model', 'latent', 'MFLOP/call', 'steps', 'U-Net calls', 'runs', 'native steps/s', 'native calls/s', 'loop÷U-Net', 'wall÷U-Net', 'TS steps/s', 'TS wall÷U-Net', 'speed-up ×']);
    expect(lines[3].trim().split(/\s{2,}/)).toEqual(['tiny', '8×8', '0.29', '20', '39', '5', '1,000 (IQR 1,000–1,000)', '1,950', '1.020', '1.000', '200.0 (IQR 200.0–200.0)', '2.000', '5.00 (IQR 5.00–5.00)']);
    expect(lines.at(-1)).toContain('native calls/s: U-Net calls per second of the same');
    // DDIM's table (one call a step) keeps its columns, and says a step is one call
    expect(loopTableLines(setup, [tiny]).at(-1)).toContain('fused engine loop (one U-Net call a step)');
  });

  it('aligns numbers right and text left', () => {
    expect(textTable(['op', 'µs'], [['a', 1.5], ['longer', 12.25]])).toEqual(['op         µs', '------  -----', 'a         1.5', 'longer  12.25']);
    expect(textTable(['n'], [['1,000 (IQR 9–11)'], ['5 (IQR 4–6)']])).toEqual(['               n', '----------------', '1,000 (IQR 9–11)', '     5 (IQR 4–6)']);
    const micro = microTableLines([{ name: 'fused step ddim', meanMicros: 2.7012, opsPerSec: 370211.6, rme: 1.234 }]);
    expect(micro[0]).toContain('mean time per call');
    expect(micro[3].split(/\s{2,}/)).toEqual(['fused step ddim', '2.70', '370212', '1.2']);
  });
});
