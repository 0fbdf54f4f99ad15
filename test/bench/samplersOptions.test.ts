/**
 * `bench samplers` refuses what would quietly measure something else: a list given to a single-value flag (it ran
 * with the first entry), a step count (or batch, or scheduler) given twice, and a converged reference that is not
 * finer than the runs it measures (--converged-steps below twice the largest --steps). All before any model or
 * demo world is touched: the model path below does not exist.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { registerBenchCommand } from '../../ts/cli/commands/bench.js';
import { InvalidArgumentError } from '../../ts/errors.js';
import { runSamplersBench } from '../../ts/bench/samplers.js';
import { runCommands } from '../helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-bench-samplers-opts-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const base = ['bench', 'samplers', '--model', join(tmp, 'no-model'), '--out', join(tmp, 'out'), '--no-micro'];

describe('bench samplers options', () => {
  it.each([
    [['--samples', '3,4'], "--samples: expected one integer >= 1, got the list '3,4' (only --steps, --batch and --schedulers take lists)"],
    [['--accuracy-images', '2,8'], "--accuracy-images: expected one integer >= 1, got the list '2,8'"],
    [['--converged-steps', '500,1000'], "--converged-steps: expected one integer >= 1, got the list '500,1000'"],
    [['--threads', '1,2'], "--threads: expected one integer >= 1, got the list '1,2'"],
    [['--steps', '10,10'], '--steps: 10 is given twice (10,10); give each value once'],
    [['--batch', '1,4,1'], '--batch: 1 is given twice (1,4,1); give each value once'],
    [['--schedulers', 'ddim,euler,ddim'], '--schedulers: ddim is given twice (ddim,euler,ddim); give each value once'],
    [['--steps', '10,50', '--converged-steps', '50'], '--converged-steps 50: the converged reference must be at least twice as fine as the largest --steps (50): expected >= 100'],
    [['--steps', '10,50', '--converged-steps', '99'], '--converged-steps 99: the converged reference must be at least twice as fine as the largest --steps (50): expected >= 100'],
    [['--steps', '5,10,20,50,300'], '--converged-steps 500: the converged reference must be at least twice as fine as the largest --steps (300): expected >= 600'],
  ])('%j is refused naming the flag', async (flags, message) => {
    const e = await runCommands([registerBenchCommand], [...base, ...flags]).catch((err: unknown) => err);
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
