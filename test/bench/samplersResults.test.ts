/**
 * `bench samplers --results DIR` puts its record in DIR, as every other bench does (README: "Benchmarks … append
 * their records … to --results DIR"); the command had no such option, so its record always went to the checkout's
 * bench/results/samplers.jsonl. A tiny fixture folder (not a demo world: cost and accuracy vs converged only). Its
 * memory figure is the bench process's peak, once (each row's "peak RSS" was that same process-wide mark).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Command } from 'commander';
import { afterAll, afterEach, expect, it, vi } from 'vitest';

import { registerBenchCommand } from '../../ts/cli/commands/bench.js';
import { writeSdFixture } from '../../ts/sd/fixture.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-bench-samplers-'));
const envBefore = process.env.BRAINLATENT_BENCH_DIR;
afterEach(() => {
  if (envBefore === undefined) delete process.env.BRAINLATENT_BENCH_DIR;
  else process.env.BRAINLATENT_BENCH_DIR = envBefore;
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

it('bench samplers --results DIR appends samplers.jsonl there, not to bench/results/', async () => {
  const model = join(tmp, 'fixture');
  await writeSdFixture(model);
  const checkout = join('bench', 'results', 'samplers.jsonl');
  const before = existsSync(checkout) ? statSync(checkout).size : -1;
  const program = new Command().exitOverride();
  registerBenchCommand(program);
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  try {
    await program.parseAsync([
      'node', 'brainlatent', 'bench', 'samplers', '--model', model, '--schedulers', 'ddim,euler', '--steps', '2,4', '--batch', '1',
      '--samples', '2', '--accuracy-images', '1', '--converged-steps', '8', '--no-micro', '--out', join(tmp, 'out'), '--results', join(tmp, 'results'),
    ]);
  } finally {
    out.mockRestore();
  }
  const lines = readFileSync(join(tmp, 'results', 'samplers.jsonl'), 'utf8').trim().split('\n');
  expect(lines).toHaveLength(1);
  const record = JSON.parse(lines[0]);
  expect(record.bench).toBe('samplers');
  expect(record.figures.rows.map((r: { scheduler: string; steps: number }) => `${r.scheduler}/${r.steps}`)).toEqual(['ddim/2', 'ddim/4', 'euler/2', 'euler/4']);
  expect(existsSync(checkout) ? statSync(checkout).size : -1).toBe(before);
  expect(existsSync(join(tmp, 'out', 'samplers.csv'))).toBe(true);
  // memory: the process's peak once, labelled as such, not a per-row copy of it (every row showed the same mark)
  expect(record.figures.processPeakRssMiB).toBeGreaterThan(0);
  for (const row of record.figures.rows) for (const c of row.cost) expect(Object.keys(c).sort()).toEqual(['batch', 'imagesPerSecond', 'imagesPerSecondIqr', 'loopSeconds', 'overhead', 'repeats']);
  expect(readFileSync(join(tmp, 'out', 'samplers.csv'), 'utf8').split('\n')[0]).not.toContain('peak_rss');
  const html = readFileSync(join(tmp, 'out', 'samplers.html'), 'utf8');
  expect(html).toContain(`Peak RSS of the bench process: ${record.figures.processPeakRssMiB} MiB, the high-water mark of the whole run`);
  // the problem is in the record, and whether the tree had uncommitted changes; --no-micro is said, not an empty list
  expect(typeof record.dirty === 'boolean' || record.dirty === null).toBe(true);
  expect(record.figures.dirty).toBe(record.dirty);
  const setup = record.figures.setup;
  expect([setup.schedulers, setup.steps, setup.samples, setup.latentShape, setup.numTrainTimesteps, setup.mixture, setup.exactOde]).toEqual([['ddim', 'euler'], [2, 4], 2, [4, 8, 8], 1000, null, null]);
  expect(record.figures.microSkipped).toBe('--no-micro');
  expect(html).toContain('Fused step micro-benchmarks: skipped (--no-micro).');
  expect(html).toContain('is not a demo world');
  // no exact mixture: no distribution block, no distribution fields in the rows
  expect(record.figures.distribution).toBeNull();
  for (const row of record.figures.rows) expect(row.slicedW2).toBeUndefined();
  expect(record.figures.wallSeconds).toBeGreaterThan(0);
}, 60_000);
