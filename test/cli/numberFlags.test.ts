/**
 * Every command's numeric flags go through one parser (ts/cli/flagValue.ts): the same wording, the flag named, and
 * the same refusals — a blank (Number('') is 0), hex, 'Infinity', a fraction where an integer is meant — before
 * any work starts.
 */
import { describe, expect, it } from 'vitest';

import { registerBatchCommand } from '../../ts/cli/commands/batch.js';
import { registerBenchCommand } from '../../ts/cli/commands/bench.js';
import { registerNsdCommand } from '../../ts/cli/commands/nsd.js';
import { registerRidgeCommand } from '../../ts/cli/commands/ridge.js';
import { registerSdCommand } from '../../ts/cli/commands/sd.js';
import { registerServeCommand } from '../../ts/cli/commands/serve.js';
import { registerSynthCommand } from '../../ts/cli/commands/synth.js';
import { registerWorkerCommand } from '../../ts/cli/commands/worker.js';
import { decimalFlag, integerFlag } from '../../ts/cli/flagValue.js';
import { runCommands } from '../helpers/cli.js';

const ALL = [registerBatchCommand, registerBenchCommand, registerNsdCommand, registerRidgeCommand, registerSdCommand, registerServeCommand, registerSynthCommand, registerWorkerCommand];

describe('numeric flags', () => {
  it('integerFlag and decimalFlag accept plain decimals and name the flag otherwise', () => {
    expect(integerFlag('5', '--folds', 2)).toBe(5);
    expect(integerFlag(' 8 ', '--port', 0, 65535)).toBe(8);
    expect(decimalFlag('0.25', '--divisor', 0)).toBe(0.25);
    expect(decimalFlag('-1e-3', '--eta')).toBe(-0.001);
    expect(() => integerFlag('1', '--folds', 2)).toThrow(/^--folds: expected an integer >= 2, got 1$/);
    expect(() => integerFlag('2.5', '--folds', 2)).toThrow(/^--folds: expected an integer >= 2, got 2\.5$/);
    expect(() => integerFlag('70000', '--port', 0, 65535)).toThrow(/^--port: expected an integer from 0 to 65535, got 70000$/);
    expect(() => integerFlag('1e400', '--threads', 0)).toThrow(/^--threads: expected an integer >= 0, got 1e400$/);
    for (const bad of ['', ' ', '0x10', 'Infinity', 'abc', '3 threads']) {
      expect(() => integerFlag(bad, '--threads', 0)).toThrow(`--threads: expected an integer >= 0, got '${bad}'`);
      expect(() => decimalFlag(bad, '--divisor', 0)).toThrow(`--divisor: expected a number > 0, got '${bad}'`);
    }
  });

  it.each([
    [['ridge', 'fit', '--x', 'x.npy', '--y', 'y.npy', '--out', 'm.safetensors', '--folds', ''], "--folds: expected an integer from 2 to 1048576, got ''"],
    // (RidgeCV's MAX_FOLDS: refused there, in RidgeCV's words, after the flags)
    [['ridge', 'fit', '--x', 'x.npy', '--y', 'y.npy', '--out', 'm.safetensors', '--folds', '1048577'], '--folds: expected an integer from 2 to 1048576, got 1048577'],
    [['ridge', 'fit', '--x', 'x.npy', '--y', 'y.npy', '--out', 'm.safetensors', '--threads', '0x2'], "--threads: expected an integer from 0 to 4096, got '0x2'"],
    // engine threads: the engine refuses a count above MAX_ENGINE_THREADS (4096), so the flag does, naming itself
    [['ridge', 'fit', '--x', 'x.npy', '--y', 'y.npy', '--out', 'm.safetensors', '--threads', '5000'], '--threads: expected an integer from 0 to 4096, got 5000'],
    [['worker', '--redis', 'redis://127.0.0.1:1', '--threads', '5000'], '--threads: expected an integer from 0 to 4096, got 5000'],
    [['bench', 'ridge', '--threads', '4097'], '--threads: expected an integer from 1 to 4096, got 4097'],
    [['bench', 'banded', '--threads', '5000'], '--threads: expected an integer from 1 to 4096, got 5000'],
    [['nsd', 'extract', '--root', '.', '--subject', '0', '--roi', 'nsdgeneral', '--out', 'o'], '--subject: expected an integer >= 1, got 0'],
    [['nsd', 'extract', '--root', '.', '--subject', '1', '--roi', 'nsdgeneral', '--out', 'o', '--divisor', 'Infinity'], "--divisor: expected a number > 0, got 'Infinity'"],
    [['serve', '--root', '.', '--port', '70000'], '--port: expected an integer from 0 to 65535, got 70000'],
    [['serve', '--root', '.', '--jobs', '1.5'], '--jobs: expected an integer >= 1, got 1.5'],
    // (review s43: it was refused as 'startServer options.host: …')
    [['serve', '--root', '.', '--host', ''], "--host: expected an address or host name (e.g. 127.0.0.1 or 0.0.0.0), got ''"],
    // (without --redis the service ignored it)
    [['serve', '--root', '.', '--redis', 'redis://127.0.0.1:1', '--workers', '257'], '--workers: expected an integer from 0 to 256, got 257'],
    [['serve', '--root', '.', '--workers', '5'], '--workers is for jobs through --redis (job processes given to the shared queue); without --redis, --jobs sets how many jobs run at once'],
    [['batch', 'run', 'm.json', '--concurrency', '0'], '--concurrency 0 runs no job here'],
    [['synth', 'nsd', '--out', 'o', '--seed', '1.5'], '--seed: expected an integer, got 1.5'],
    [['synth', 'nsd', '--out', 'o', '--noise', ''], "--noise: expected a number, got ''"],
    [['sd', 'fixture', '--out', 'o', '--seed', '-1'], '--seed: expected an integer >= 0, got -1'],
    // (review s35-r5: raw 'Invalid typed array length', or V8's heap crash with --unet-layers 1e6)
    [['sd', 'fixture', '--out', 'o', '--text-dim', '1e9'], '--text-dim: expected an integer from 1 to 4096, got 1e9'],
    [['sd', 'fixture', '--out', 'o', '--unet-layers', '1e6'], '--unet-layers: expected an integer from 0 to 64, got 1e6'],
    [['nsd', 'image', '--root', 'r', '--id', '1', '--out', 'o.png', '--size', '100000'], '--size: expected an integer from 1 to 4096, got 100000'],
    [['batch', 'run', 'm.json', '--concurrency', '-1'], '--concurrency: expected an integer from 0 to 256, got -1'],
    // (a pool's bound, MAX_JOB_PROCESSES: 1e9 forked a process for every job queued)
    [['batch', 'run', 'm.json', '--concurrency', '257'], '--concurrency: expected an integer from 0 to 256, got 257'],
    [['bench', 'ridge', '--repeats', '0'], '--repeats: expected an integer >= 1, got 0'],
    [['bench', 'ridge', '--threads', 'all'], "--threads: expected an integer from 1 to 4096, got 'all'"],
    [['bench', 'ridge', '--threads', '0'], '--threads: expected an integer from 1 to 4096, got 0'],
    [['bench', 'banded', '--threads', '0'], '--threads: expected an integer from 1 to 4096, got 0'],
    [['worker', '--redis', 'redis://127.0.0.1:1', '--grace', '2.5'], '--grace: expected an integer from 0 to 2147483, got 2.5'],
    // times within setTimeout's range, in the flags' units (--stall-ms 0 reached BullMQ, which refused it after connecting)
    [['worker', '--redis', 'redis://127.0.0.1:1', '--grace', '2147484'], '--grace: expected an integer from 0 to 2147483, got 2147484'],
    [['worker', '--redis', 'redis://127.0.0.1:1', '--stall-ms', '0'], '--stall-ms: expected an integer from 1 to 2147483647, got 0'],
    [['worker', '--redis', 'redis://127.0.0.1:1', '--poll', '2147483648'], '--poll: expected an integer from 0 to 2147483647, got 2147483648'],
    [['serve', '--root', '.', '--shutdown-deadline', '2147454'], '--shutdown-deadline: expected an integer from 0 to 2147453, got 2147454'],
    [['serve', '--root', '.', '--session-max-age', '1e21'], '--session-max-age: expected an integer from 1 to 34560000, got 1e21'],
    [['worker', '--redis', 'redis://127.0.0.1:1', '--concurrency', '0'], '--concurrency: expected an integer from 1 to 256, got 0'],
    [['worker', '--redis', 'redis://127.0.0.1:1', '--concurrency', '257'], '--concurrency: expected an integer from 1 to 256, got 257'],
    [['worker', '--redis', 'redis://127.0.0.1:1', '--max-stalled', '1001'], '--max-stalled: expected an integer from 0 to 1000, got 1001'],
    [['worker', '--redis', 'redis://127.0.0.1:1', '--max-stalled', '-1'], '--max-stalled: expected an integer from 0 to 1000, got -1'],
  ])('brainlatent %j: %s', async (args, message) => {
    await expect(runCommands(ALL, args)).rejects.toThrow(message);
  });
});
