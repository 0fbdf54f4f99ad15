/**
 * `brainlatent bench ridge --threads`: the fits run in child processes (ts/bench/ridgeWorker.ts), so the count
 * reaches them by environment (threadEnv); before, the flag set only the parent's threads, which ran the SGEMM
 * probes, and every fit ran on all cores. Checked on a tiny planted problem: the worker's engine reports the count.
 * Also: an unknown --shapes or --cv-method is refused before the SGEMM probe and the data.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { describe, expect, it } from 'vitest';

import { distModule } from '../helpers/dist.js';
import { runCommand, runModule } from '../helpers/nodeChild.js';
import { tempDir } from '../helpers/tempDir.js';

const worker = distModule('bench/ridgeWorker');

async function writeTiny(dir: string): Promise<void> {
  const r = await runModule(`
    const { plantedData, writeBenchData } = await import(${JSON.stringify(pathToFileURL(distModule('bench/ridgeData')).href)});
    const s = { name: 'tiny', nTrain: 60, nTest: 20, p: 30, t: 8 };
    await writeBenchData(${JSON.stringify(dir)}, s, plantedData(s));
  `);
  expect(r.status, r.stderr).toBe(0);
}

async function workerThreads(dir: string, env: NodeJS.ProcessEnv): Promise<number> {
  const r = await runCommand(process.execPath, [worker, dir, '5', '3'], { env });
  expect(r.status, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { threads: number }).threads;
}

describe('bench ridge --threads', () => {
  it("gives the fits' processes the thread count (BRAINLATENT_BENCH_THREADS and the BLAS variables)", async () => {
    const { threadEnv } = (await import(pathToFileURL(distModule('bench/ridge')).href)) as typeof import('../../ts/bench/ridge.js');
    const env = threadEnv(1);
    expect(env).toMatchObject({ BRAINLATENT_BENCH_THREADS: '1', OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1' });
    // (without a count: the environment as it is, plus the engine's OpenBLAS core where the engine chose it)
    const { sameKernelsEnv } = (await import(pathToFileURL(distModule('bench/blasKernels')).href)) as typeof import('../../ts/bench/blasKernels.js');
    expect(threadEnv(undefined)).toEqual(sameKernelsEnv());
    expect(threadEnv(undefined).OPENBLAS_NUM_THREADS).toBe(process.env.OPENBLAS_NUM_THREADS);
    const dir = tempDir('bl-bench-ridge-threads-');
    await writeTiny(dir);
    expect(await workerThreads(dir, env)).toBe(1);
    expect(await workerThreads(dir, threadEnv(3))).toBe(3);
  });

  it('refuses a count that is not a positive integer before any work', async () => {
    const r = await runCommand(process.execPath, [distModule('cli/main'), 'bench', 'ridge', '--threads', '0', '--shapes', 'medium'], {
      env: { ...process.env, NO_COLOR: '1' },
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/--threads/);
    expect(r.stdout).not.toMatch(/SGEMM/);
  });
});

describe('bench ridge: bad input', () => {
  it('refuses an unknown shape or CV method before any work', async () => {
    const dir = tempDir('bl-bench-ridge-bad-');
    for (const [flag, value, message] of [
      ['--shapes', 'bogus', /bench ridge --shapes: unknown shape 'bogus' \(expected medium, large, encoding\)/],
      ['--cv-method', 'nope', /bench ridge --cv-method: expected 'auto', 'per-fold', 'exact', got 'nope'/],
    ] as const) {
      const r = await runCommand(process.execPath, [distModule('cli/main'), 'bench', 'ridge', flag, value, '--results', dir], {
        env: { ...process.env, NO_COLOR: '1' },
      });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(r.stdout).not.toMatch(/SGEMM/);
    }
    expect(() => readFileSync(join(dir, 'ridge.jsonl'))).toThrow();
  });
});
