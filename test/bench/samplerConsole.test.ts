/**
 * `bench sampler`'s console output said neither which scheduler, guidance and threads it measured nor what
 * "overhead ×" and "TS steps/s" are, and printed its numbers as quoted strings (console.table of toFixed strings).
 */
import { describe, expect, it } from 'vitest';

import { loopTableLines, microTableLines, textTable } from '../../ts/bench/samplerConsole.js';

const rows = [
  { model: 'tiny', latent: '8×8', unetMflopsPerCall: 0.29, steps: 50, unetCalls: 50, nativeStepsPerSec: 21712.345, nativeCallsPerSec: 21712.345, overheadRatio: 1.02614, tsStepsPerSec: 3301.27, speedupOverTs: 6.577 },
  { model: 'large', latent: '32×32', unetMflopsPerCall: 472.06, steps: 20, unetCalls: 20, nativeStepsPerSec: 159.04, nativeCallsPerSec: 159.04, overheadRatio: 1.00213, tsStepsPerSec: 109.4, speedupOverTs: 1.4567 },
];

describe('bench sampler console output', () => {
  it('opens with the setup, ends with a legend of the columns, and prints numbers unquoted', () => {
    const lines = loopTableLines({ scheduler: 'ddim', guidance: 5, threads: 1, repeats: 3 }, rows);
    expect(lines[0]).toBe('bench sampler: scheduler ddim, guidance 5 (2 U-Net rows per image), 1 ONNX Runtime intra-op thread, 1 image per run; median of 3 runs per loop');
    expect(lines[1].split(/\s{2,}/)).toEqual(['model', 'latent', 'MFLOP/call', 'steps', 'native steps/s', 'overhead ×', 'TS steps/s', 'speed-up ×']);
    expect(lines[3].split(/\s+/)).toEqual(['tiny', '8×8', '0.29', '50', '21712.3', '1.0261', '3301.3', '6.58']);
    expect(lines[4].split(/\s+/)).toEqual(['large', '32×32', '472.06', '20', '159.0', '1.0021', '109.4', '1.46']);
    expect(lines.slice(1, 5).join('\n')).not.toMatch(/['"]/);
    // numbers right-aligned: the columns end together
    expect(lines[3].indexOf('21712.3') + 7).toBe(lines[4].indexOf('159.0') + 5);
    expect(lines.at(-1)).toContain("overhead ×: that loop's time ÷ the summed U-Net run time (1 = the loop adds nothing)");
    expect(lines.at(-1)).toContain('TS steps/s: the same steps in the TypeScript loop on onnxruntime-node');
    expect(loopTableLines({ scheduler: 'unipc', guidance: 5, threads: 4, repeats: 3 }, rows)[0]).toContain('scheduler unipc, guidance 5 (2 U-Net rows per image), 4 ONNX Runtime intra-op threads');
  });

  it("a scheduler that calls the U-Net more often than it steps (Heun) has its calls and calls/s beside the steps and steps/s", () => {
    // (the "steps" column was the engine's U-Net calls and "native steps/s" calls per second: 39 "steps" for Heun's 20)
    const heun = [{ model: 'tiny', latent: '8×8', unetMflopsPerCall: 0.29, steps: 20, unetCalls: 39, nativeStepsPerSec: 1000, nativeCallsPerSec: 1950, overheadRatio: 1.02, tsStepsPerSec: 200, speedupOverTs: 5 }];
    const lines = loopTableLines({ scheduler: 'heun', guidance: 5, threads: 1, repeats: 3 }, heun);
    expect(lines[1].split(/\s{2,}/)).toEqual(['model', 'latent', 'MFLOP/call', 'steps', 'U-Net calls', 'native steps/s', 'native calls/s', 'overhead ×', 'TS steps/s', 'speed-up ×']);
    expect(lines[3].split(/\s+/)).toEqual(['tiny', '8×8', '0.29', '20', '39', '1000.0', '1950.0', '1.0200', '200.0', '5.00']);
    expect(lines.at(-1)).toContain('native calls/s: U-Net calls per second of the same');
    // DDIM's table (one call a step) keeps its columns, and says a step is one call
    expect(loopTableLines({ scheduler: 'ddim', guidance: 5, threads: 1, repeats: 3 }, rows).at(-1)).toContain('fused engine loop (one U-Net call a step)');
  });

  it('aligns numbers right and text left', () => {
    expect(textTable(['op', 'µs'], [['a', 1.5], ['longer', 12.25]])).toEqual(['op         µs', '------  -----', 'a         1.5', 'longer  12.25']);
    const micro = microTableLines([{ name: 'fused step ddim', meanMicros: 2.7012, opsPerSec: 370211.6, rme: 1.234 }]);
    expect(micro[0]).toContain('mean time per call');
    expect(micro[3].split(/\s{2,}/)).toEqual(['fused step ddim', '2.70', '370212', '1.2']);
  });
});
