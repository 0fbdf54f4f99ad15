/**
 * `bench samplers` refuses what would quietly measure something else: a list given to a single-value flag (it ran
 * with the first entry), a step count (or batch, or scheduler) given twice, and a converged reference that is not
 * finer than the runs it measures (--converged-steps below twice the largest --steps), more steps than the model's
 * num_train_timesteps allows (--steps 600 asked for --converged-steps >= 1200, which no run can take; --converged-steps
 * 3000 failed after the references were built, naming no flag), and a distribution score of one sample. All before
 * any model or demo world is touched: the model path below does not exist (SD 1.5's schedule: 1000 timesteps).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { registerBenchCommand } from '../../ts/cli/commands/bench.js';
import { InvalidArgumentError } from '../../ts/errors.js';
import { runSamplersBench } from '../../ts/bench/samplers.js';
import { checkSamplersOptions, distributionWarnings, MIN_SAMPLES, RECOMMENDED_SAMPLES } from '../../ts/bench/samplersOptions.js';
import { runCommands } from '../helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-bench-samplers-opts-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const base = ['bench', 'samplers', '--model', join(tmp, 'no-model'), '--out', join(tmp, 'out'), '--no-micro'];

describe('bench samplers options', () => {
  it.each([
    [['--samples', '3,4'], "--samples: expected one integer >= 2, got the list '3,4' (only --steps, --batch and --schedulers take lists)"],
    [['--accuracy-images', '2,8'], "--accuracy-images: expected one integer >= 1, got the list '2,8'"],
    [['--converged-steps', '500,1000'], "--converged-steps: expected one integer >= 1, got the list '500,1000'"],
    [['--threads', '1,2'], "--threads: expected one integer >= 1, got the list '1,2'"],
    [['--steps', '10,10'], '--steps: 10 is given twice (10,10); give each value once'],
    [['--batch', '1,4,1'], '--batch: 1 is given twice (1,4,1); give each value once'],
    [['--schedulers', 'ddim,euler,ddim'], '--schedulers: ddim is given twice (ddim,euler,ddim); give each value once'],
    [['--steps', '10,50', '--converged-steps', '50'], '--converged-steps 50: the converged reference must be at least twice as fine as the largest --steps (50): expected >= 100'],
    [['--steps', '10,50', '--converged-steps', '99'], '--converged-steps 99: the converged reference must be at least twice as fine as the largest --steps (50): expected >= 100'],
    [['--steps', '5,10,20,50,300'], '--converged-steps 500: the converged reference must be at least twice as fine as the largest --steps (300): expected >= 600'],
    [['--steps', '600', '--schedulers', 'euler'], "--steps 600: at most 500 (a run takes at most num_train_timesteps steps (1000 in SD 1.5's scheduler config)"],
    [['--steps', '1001', '--converged-steps', '3000'], '--steps 1001: at most 500'],
    [['--steps', '10,501,600'], '--steps 501,600: at most 500'],
    [['--steps', '100', '--converged-steps', '3000'], "--converged-steps 3000: at most 1000 (a run takes at most num_train_timesteps steps (1000 in SD 1.5's scheduler config))"],
    [['--samples', '1'], '--samples 1: expected an integer >= 2 (the sliced W2 of one sample is the distance between two points, not between two distributions'],
    [['--samples', '0'], '--samples 0: expected an integer >= 2'],
    // (a fraction said "expected an integer >= 0"; '' ran all ten schedulers)
    [['--samples', '2.5'], '--samples 2.5: expected an integer >= 2 (the sliced W2 of one sample'],
    [['--samples', 'many'], '--samples many: expected an integer >= 2'],
    [['--schedulers', ''], "--schedulers: unknown '' (known: ddim,"],
    [['--schedulers', 'ddim,'], "--schedulers: unknown '' (known: ddim,"],
    // (without --arch sd1, --memory was ignored)
    [['--memory', 'lean'], '--memory: only with --arch sd1'],
  ])('%j is refused naming the flag', async (flags, message) => {
    const e = await runCommands([registerBenchCommand], [...base, ...flags]).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(InvalidArgumentError);
    expect((e as Error).message).toContain(message);
    expect(readdirSync(tmp)).toEqual([]);
  });

  it('a --model folder that is not there, or not a model, is refused before --out is made or a line printed (review s43)', async () => {
    const lines: string[] = [];
    const e = await runSamplersBench({ model: join(tmp, 'no-model'), out: join(tmp, 'out'), micro: false, log: (l) => lines.push(l) }).catch((err: unknown) => err);
    expect((e as Error).message).toBe(`model folder ${join(tmp, 'no-model')} does not exist; expected an SD 1.x ONNX model folder`);
    mkdirSync(join(tmp, 'empty-model'));
    const e2 = await runSamplersBench({ model: join(tmp, 'empty-model'), out: join(tmp, 'out'), micro: false, log: (l) => lines.push(l) }).catch((err: unknown) => err);
    expect((e2 as Error).message).toMatch(/^model folder .*empty-model has no text_encoder\/model\.onnx, unet\/model\.onnx/);
    expect(lines).toEqual([]);
    expect(readdirSync(tmp)).toEqual(['empty-model']);
    rmSync(join(tmp, 'empty-model'), { recursive: true });
  });

  it.each([
    [['--steps', '10'], '--steps: not used with --arch sd1'],
    [['--schedulers', 'ddim', '--samples', '64', '--no-micro'], '--schedulers, --samples, --no-micro: not used with --arch sd1'],
    [['--model', 'm', '--out', 'o', '--accuracy-images', '2', '--converged-steps', '100'], '--model, --accuracy-images, --converged-steps, --out: not used with --arch sd1'],
  ])('--arch sd1 refuses the demo bench flags %j (they were dropped silently), before any fixture is written', async (flags, message) => {
    const cache = join(tmp, 'sd1-cache');
    const e = await runCommands([registerBenchCommand], ['bench', 'samplers', '--arch', 'sd1', '--cache', cache, '--memory', 'lean', ...flags]).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(InvalidArgumentError);
    expect((e as Error).message).toContain(message);
    expect(readdirSync(tmp)).toEqual([]);
  });

  it('the API refuses the same, and an empty list', async () => {
    const o = { model: join(tmp, 'no-model'), out: join(tmp, 'out'), micro: false, log: () => undefined };
    await expect(runSamplersBench({ ...o, steps: [20, 20] })).rejects.toThrow('--steps: 20 is given twice');
    await expect(runSamplersBench({ ...o, steps: [] })).rejects.toThrow('--steps: expected at least one value, got none');
    await expect(runSamplersBench({ ...o, steps: [10, 40], convergedSteps: 60 })).rejects.toThrow('--converged-steps 60: the converged reference must be at least twice');
    expect(readdirSync(tmp)).toEqual([]);
  });
});

describe('checkSamplersOptions', () => {
  const ok = { schedulers: ['euler'], steps: [10, 20], batches: [1], samples: 64, convergedSteps: 100 };
  it('derives the step limits from the schedule it is given, naming its source', () => {
    expect(() => checkSamplersOptions({ ...ok, steps: [600], convergedSteps: 1200 }, 2000, 'a.json')).not.toThrow();
    expect(() => checkSamplersOptions({ ...ok, steps: [1001], convergedSteps: 2002 }, 2000, 'a.json')).toThrow('--steps 1001: at most 1000 (a run takes at most num_train_timesteps steps (2000 in a.json)');
    expect(() => checkSamplersOptions({ ...ok, steps: [100], convergedSteps: 2001 }, 2000, 'a.json')).toThrow('--converged-steps 2001: at most 2000');
    expect(() => checkSamplersOptions({ ...ok, steps: [500], convergedSteps: 1000 }, 1000, 'b.json')).not.toThrow();
    expect(() => checkSamplersOptions({ ...ok, samples: MIN_SAMPLES }, 1000, 'b.json')).not.toThrow();
    expect(() => checkSamplersOptions({ ...ok, samples: MIN_SAMPLES - 1 }, 1000, 'b.json')).toThrow(`--samples ${MIN_SAMPLES - 1}: expected an integer >= ${MIN_SAMPLES}`);
  });

  it("reads num_train_timesteps from the model folder's scheduler config before loading anything", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bl-bench-samplers-t-'));
    try {
      const model = join(dir, 'model');
      mkdirSync(join(model, 'scheduler'), { recursive: true });
      const config = join(model, 'scheduler', 'scheduler_config.json');
      writeFileSync(config, JSON.stringify({ _class_name: 'DDIMScheduler', num_train_timesteps: 400 }));
      const o = { model, out: join(dir, 'out'), micro: false, log: () => undefined };
      await expect(runSamplersBench({ ...o, steps: [250], convergedSteps: 500 })).rejects.toThrow(`--steps 250: at most 200 (a run takes at most num_train_timesteps steps (400 in ${config})`);
      await expect(runSamplersBench({ ...o, steps: [100], convergedSteps: 500 })).rejects.toThrow('--converged-steps 500: at most 400');
      expect(readdirSync(dir)).toEqual(['model']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('distributionWarnings', () => {
  const floor = { mean: 0.68, sd: 0.05 };
  const row = (scheduler: string, slicedW2: number | undefined) => ({ scheduler, steps: 40, slicedW2 });
  it(`warns below ${RECOMMENDED_SAMPLES} samples, and names the runs that beat exact sampling by more than 2 SD`, () => {
    // the reviewer's run: --samples 16, exact sets 0.678 apart, ddpm 0.45–0.53, the deterministic ones 0.85
    const w = distributionWarnings(16, floor, [row('ddpm', 0.45), row('euler', 0.85), row('unipc', 0.6)]);
    expect(w).toHaveLength(2);
    expect(w[0]).toContain(`--samples 16 is below ${RECOMMENDED_SAMPLES}`);
    expect(w[0]).toContain('6.80e-1 ± 5.00e-2');
    expect(w[1]).toMatch(/^ddpm 40 scores below exact sampling's sliced W2 by more than 2 SD \(< 5\.80e-1\)/);
  });
  it('is silent at enough samples with every run above the band, and ignores NaN and absent scores', () => {
    expect(distributionWarnings(RECOMMENDED_SAMPLES, floor, [row('euler', 0.7), row('ddpm', 0.59), row('x', Number.NaN), row('y', undefined)])).toEqual([]);
  });
  it('warns from one sample below the recommendation, with the exact spread and the recommendation in its text', () => {
    const below = distributionWarnings(RECOMMENDED_SAMPLES - 1, floor, [row('euler', 0.7)]);
    expect(below).toHaveLength(1);
    expect(below[0]).toContain(`--samples ${RECOMMENDED_SAMPLES - 1} is below ${RECOMMENDED_SAMPLES}: exact sampling's own spread`);
    expect(below[0]).toContain(`use --samples ${RECOMMENDED_SAMPLES} or more`);
  });
});

describe('RECOMMENDED_SAMPLES', () => {
  // Measured on the demo world (bench samplers' world, c = 0, 20 steps, samples seed 77; docs/sampler.md "Choosing
  // --samples"): per n, exact sampling's sliced W2 SD over the 64 exact sets, and the gap between the samplers — DDIM's
  // score minus DPM-Solver++ SDE's (the deterministic vs the stochastic ones), averaged over disjoint blocks of n of
  // 512 samples. At 512 these are the bench's own figures (0.124 ± 0.029; 0.524 − 0.394).
  const measured: { n: number; exactSd: number; samplerGap: number }[] = [
    { n: 16, exactSd: 0.166, samplerGap: 0.066 },
    { n: 32, exactSd: 0.101, samplerGap: 0.089 },
    { n: 64, exactSd: 0.088, samplerGap: 0.102 },
    { n: 128, exactSd: 0.058, samplerGap: 0.108 },
    { n: 256, exactSd: 0.039, samplerGap: 0.121 },
    { n: 512, exactSd: 0.029, samplerGap: 0.129 },
  ];
  it('is the smallest measured --samples at which 2 SD of exact sampling is below the gap between samplers', () => {
    const first = measured.find((m) => 2 * m.exactSd < m.samplerGap);
    expect(first?.n).toBe(RECOMMENDED_SAMPLES);
    // and the rule holds at every larger size measured (the spread falls as 1/√n, the gap does not)
    expect(measured.filter((m) => m.n >= RECOMMENDED_SAMPLES).every((m) => 2 * m.exactSd < m.samplerGap)).toBe(true);
  });
});
