/**
 * `brainlatent bench banded` wiring (ts/bench/banded.ts): the engine's BandedRidgeCV and bench/numpy_banded.py run on
 * the same planted data, the script searching the engine's own candidates γ on its folds, and one JSON record lands in
 * <results>/banded.jsonl with both times, their ratio and how often both chose the same alpha and γ. At a tiny shape
 * (values only, never timings); the CLI's flags are checked before any work.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { describe, expect, it } from 'vitest';

import { distModule } from '../helpers/dist.js';
import { runCommand, runModule } from '../helpers/nodeChild.js';
import { tempDir } from '../helpers/tempDir.js';

interface BandedRecord {
  bench: string;
  figures: {
    nAlphas: number;
    folds: number;
    candidates: number;
    repeats: number;
    results: {
      shape: { name: string; n: number; bands: number[]; t: number };
      brainlatent: { seconds: number; runs: number[]; solver: string; eigPrecision: string; threads: number };
      numpy?: { seconds: number; runs: number[]; alphaAgreement: number; gammaAgreement: number; fitSpeedup: number };
    }[];
  };
}

const brainlatent = (...args: string[]) => runCommand(process.execPath, [distModule('cli/main'), ...args], { env: { ...process.env, NO_COLOR: '1' } });

const runTiny = async (dir: string, numpy: boolean, threads?: number): Promise<BandedRecord> => {
  const r = await runModule(
    `
    const { runBandedBench } = await import(${JSON.stringify(pathToFileURL(distModule('bench/banded')).href)});
    await runBandedBench({ shapes: [{ name: 'tiny', n: 90, bands: [40, 24], t: 24 }], candidates: 6, alphas: 5, folds: 3, repeats: 2, numpy: ${numpy}, threads: ${threads ?? 'undefined'}, log: () => {} });
  `,
    120_000,
    { ...process.env, BRAINLATENT_BENCH_DIR: dir },
  );
  expect(r.status, r.stderr).toBe(0);
  const lines = readFileSync(join(dir, 'banded.jsonl'), 'utf8').trim().split('\n');
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0]) as BandedRecord;
};

describe('bench banded', () => {
  it('records the engine against numpy on the same candidates and folds: both choose the same alpha and γ for every target', async () => {
    const dir = tempDir('bl-bench-banded-');
    const rec = await runTiny(dir, true);
    expect(rec.bench).toBe('banded');
    expect(rec.figures).toMatchObject({ nAlphas: 5, folds: 3, candidates: 6, repeats: 2 });
    expect(rec.figures.results).toHaveLength(1);
    const [row] = rec.figures.results;
    expect(row.shape).toEqual({ name: 'tiny', n: 90, bands: [40, 24], t: 24 });
    expect(row.brainlatent.runs).toHaveLength(2);
    expect(row.numpy?.runs).toHaveLength(2);
    // (the same protocol on the same γ and folds: the same choices, target by target)
    expect(row.numpy?.alphaAgreement).toBe(1);
    expect(row.numpy?.gammaAgreement).toBe(1);
    expect(row.numpy?.fitSpeedup).toBeCloseTo(row.numpy!.seconds / row.brainlatent.seconds, 10);
  }, 120_000);

  it('--no-numpy: the engine alone; --threads reaches the fit in its own process', async () => {
    const dir = tempDir('bl-bench-banded-');
    const [row] = (await runTiny(dir, false, 1)).figures.results;
    expect(row.brainlatent.runs).toHaveLength(2);
    // (the engine's own loops ran on every core under --threads 1 before: only OPENBLAS_NUM_THREADS was set)
    expect(row.brainlatent.threads).toBe(1);
    expect(row).not.toHaveProperty('numpy');
  }, 120_000);

  it('the CLI lists its flags and refuses a bad count or an unknown shape before any work', async () => {
    const help = (await brainlatent('bench', 'banded', '--help')).stdout;
    for (const flag of ['--shapes <list>', '--no-numpy', '--candidates <n>', '--alphas <n>', '--folds <n>', '--repeats <n>', '--threads <n>', '--python <path>', '--results <dir>']) {
      expect(help).toContain(flag);
    }
    const dir = tempDir('bl-bench-banded-');
    const bad = await brainlatent('bench', 'banded', '--candidates', '0', '--results', dir);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('--candidates: expected an integer >= 1, got 0');
    const unknown = await brainlatent('bench', 'banded', '--shapes', 'huge', '--results', dir);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toMatch(/unknown shape 'huge' \(expected demo, medium\)/);
    expect(() => readFileSync(join(dir, 'banded.jsonl'))).toThrow();
  });
});
