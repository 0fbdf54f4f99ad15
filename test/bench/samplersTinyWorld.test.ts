/**
 * `bench samplers` end to end on the smallest demo-like world (test/bench/tinyMixtureModel.ts: a 6-component mixture on
 * 4×2×2 latents behind the sd fixture), through the CLI, in a few seconds: what its console, samplers.json, samplers.html,
 * samplers.csv and the samplers.jsonl record say.
 *
 * - DDIM at a step count that does not divide 1000 runs off its grid; the bench left such runs out of the common noise
 *   level only, and fitted them into the measured orders (`--steps 3,7` on the demo world printed "ddim -4.43"), with
 *   no word in the console, the HTML or the record.
 * - `distribution.paired` (every pair of runs, any schedulers and step counts) was checked only by types: here its
 *   count, fields, sign convention and agreement with the per-run scores, on real runs.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { registerBenchCommand } from '../../ts/cli/commands/bench.js';
import { offGridReason } from '../../ts/bench/samplerOrder.js';
import type { SamplerRow, SamplersBenchResult } from '../../ts/bench/samplersResult.js';
import { writeTinyMixtureModel } from './tinyMixtureModel.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-bench-samplers-tiny-'));
const out = join(tmp, 'out');
let consoleText = '';
let record: { bench: string; figures: SamplersBenchResult };
let json: SamplersBenchResult;
const envBefore = process.env.BRAINLATENT_BENCH_DIR;

// 3 schedulers (two deterministic that coincide on their grid, one stochastic) × 4 and 6 steps: DDIM at 6 is off its grid
// (1000/6 is not an integer); 4 and 6 steps share t = 499, the common noise level
const SCHEDULERS = ['ddim', 'euler', 'euler-ancestral'];
const STEPS = [4, 6];

beforeAll(async () => {
  const model = join(tmp, 'model');
  await writeTinyMixtureModel(model);
  const program = new Command().exitOverride();
  registerBenchCommand(program);
  const chunks: string[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => (chunks.push(String(c)), true));
  try {
    await program.parseAsync([
      'node', 'brainlatent', 'bench', 'samplers', '--model', model, '--schedulers', SCHEDULERS.join(','), '--steps', STEPS.join(','), '--batch', '1',
      '--samples', '8', '--accuracy-images', '2', '--converged-steps', '16', '--no-micro', '--out', out, '--results', join(tmp, 'results'),
    ]);
  } finally {
    spy.mockRestore();
    if (envBefore === undefined) delete process.env.BRAINLATENT_BENCH_DIR;
    else process.env.BRAINLATENT_BENCH_DIR = envBefore;
  }
  consoleText = chunks.join('');
  const lines = readFileSync(join(tmp, 'results', 'samplers.jsonl'), 'utf8').trim().split('\n');
  expect(lines).toHaveLength(1);
  record = JSON.parse(lines[0]);
  json = JSON.parse(readFileSync(join(out, 'samplers.json'), 'utf8'));
}, 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const row = (rows: SamplerRow[], scheduler: string, steps: number): SamplerRow => rows.find((r) => r.scheduler === scheduler && r.steps === steps) as SamplerRow;

describe('bench samplers on a tiny mixture world', () => {
  it('runs every scheduler at every step count, as a demo world (exact ODE, common level, distribution scores)', () => {
    const f = record.figures;
    expect(record.bench).toBe('samplers');
    expect(f.rows.map((r) => `${r.scheduler}/${r.steps}`)).toEqual(SCHEDULERS.flatMap((s) => STEPS.map((n) => `${s}/${n}`)));
    expect(f.setup.mixture).toMatchObject({ components: 6, dimension: 16 });
    expect(f.commonLevel.timestep).toBe(499);
    expect(f.distribution).not.toBeNull();
    // the record is samplers.json without its file names
    expect({ ...json, files: undefined, wallSeconds: 0, processPeakRssMiB: 0 }).toEqual({ ...f, files: undefined, wallSeconds: 0, processPeakRssMiB: 0 });
  });

  it('leaves DDIM off its grid out of the order fits and the common level, and says so in the console, the HTML and the record', () => {
    const f = record.figures;
    const reason = offGridReason(1000);
    expect(f.offGrid).toEqual({ reason, runs: ['ddim 6'] });
    // the row keeps its errors, flagged; every other row carries no flag
    const off = row(f.rows, 'ddim', 6);
    expect(off.offGrid).toBe(true);
    for (const r of f.rows) if (r !== off) expect(r.offGrid).toBeUndefined();
    expect(off.relErrorExact).toBeGreaterThan(5 * (row(f.rows, 'euler', 6).relErrorExact as number));
    // on its grid DDIM is Euler (the same ODE step in the ε parametrisation)
    expect(row(f.rows, 'ddim', 4).relErrorExact).toBeCloseTo(row(f.rows, 'euler', 4).relErrorExact as number, 5);
    // one DDIM run left on its grid: no order, where the fit used to take the off-grid run's error
    expect(f.convergenceOrder.ddim).toMatchObject({ vsConverged: null, vsExact: null });
    expect(f.convergenceOrder.ddim.reason.vsExact).toMatch(/^one point between 3× the exact-ODE floor .* and 0\.1; an order needs 2 \(1 run off the grid left out\)$/);
    expect(f.commonLevel.timestep !== null && f.commonLevel.skipped).toEqual(['ddim 6']);
    expect(off.relErrorCommon).toBeUndefined();
    // console: the run's line, the order line, the common level's line
    const offLine = consoleText.split('\n').find((l) => /^ddim\s+6 steps/.test(l));
    expect(offLine).toContain('[off the grid: left out of the order fits]');
    expect(consoleText).toMatch(new RegExp(`measured order per U-Net call: .*; vs the exact ODE between the same noise levels / vs the converged solution: ddim —/—, euler [-\\d.—]+/[-\\d.—]+, euler-ancestral —/—; left out \\(${reason.replace(/[()/⌊⌋]/g, '\\$&')}\\): ddim 6\\n`));
    // every "—" says why
    expect(consoleText).toMatch(/\n {2}no order vs the exact ODE for ddim: one point between 3× the exact-ODE floor [-\d.e]+ and 0\.1; an order needs 2 \(1 run off the grid left out\)\n/);
    expect(consoleText).toContain('  no order vs the exact ODE for euler-ancestral: stochastic (no accuracy runs)');
    expect(consoleText).toContain(`common noise level: t = 499`);
    expect(consoleText).toContain(`; left out (${reason}): ddim 6\n`);
    // HTML: the order section names the run and why; the table marks it
    const html = readFileSync(join(out, 'samplers.html'), 'utf8');
    expect(html).toContain(`<p class="warn">Left out of every order fit and of the error charts: ddim 6 (${reason}).`);
    expect(html).toContain(`<td>${off.relErrorExact?.toExponential(2)} (off the grid)</td>`);
    // CSV: the off_grid column
    const csv = readFileSync(join(out, 'samplers.csv'), 'utf8').trim().split('\n');
    expect(csv[0].split(',').at(-1)).toBe('off_grid');
    expect(csv.slice(1).map((l) => l.split(',').at(-1))).toEqual(['false', 'true', 'false', 'false', 'false', 'false']);
  });

  it('times each configuration to the repeat rule and reports the median images/s with its interquartile range and runs', () => {
    const f = record.figures;
    expect(f.setup.timing).toEqual({ minSeconds: 0.2, minRepeats: 5, maxRepeats: 200 });
    for (const r of f.rows) {
      for (const c of r.cost) {
        expect(c.repeats).toBeGreaterThanOrEqual(5);
        expect(c.loopSeconds.repeats).toBe(c.repeats);
        expect(c.imagesPerSecond).toBeCloseTo(1 / c.loopSeconds.median, 6);
        expect(c.imagesPerSecondIqr[0]).toBeLessThanOrEqual(c.imagesPerSecond);
        expect(c.imagesPerSecondIqr[1]).toBeGreaterThanOrEqual(c.imagesPerSecond);
      }
      const line = consoleText.split('\n').find((l) => new RegExp(`^${r.scheduler}\\s+${r.steps} steps`).test(l));
      expect(line).toMatch(/b1 [\d.]+ img\/s \(IQR [\d.]+–[\d.]+, \d+ runs\) ×/);
    }
    const html = readFileSync(join(out, 'samplers.html'), 'utf8');
    expect(html).toContain('<th>img/s b1 (median; IQR, runs)</th>');
    expect(readFileSync(join(out, 'samplers.csv'), 'utf8').split('\n')[0]).toContain('images_per_s_b1,images_per_s_iqr_low_b1,images_per_s_iqr_high_b1,runs_b1,overhead_b1');
  });

  it('records every pair of runs once in distribution.paired: higher score minus lower, consistent with the rows', () => {
    const f = record.figures;
    const dist = f.distribution as NonNullable<SamplersBenchResult['distribution']>;
    const runs = f.rows;
    const n = runs.length;
    expect(n).toBe(6);
    expect(dist.paired).toHaveLength((n * (n - 1)) / 2);
    expect(json.distribution?.paired).toEqual(dist.paired);
    const key = (s: string, k: number) => `${s}@${k}`;
    const seen = new Set<string>();
    for (const p of dist.paired) {
      expect(Object.keys(p).sort()).toEqual(['difference', 'scheduler', 'se', 'steps', 'versus', 'versusSteps']);
      const hi = row(runs, p.scheduler, p.steps);
      const lo = row(runs, p.versus, p.versusSteps);
      expect(hi).toBeDefined();
      expect(lo).toBeDefined();
      expect(hi).not.toBe(lo);
      // the pair's two runs, unordered, once each
      const pair = [key(p.scheduler, p.steps), key(p.versus, p.versusSteps)].sort().join('|');
      expect(seen.has(pair)).toBe(false);
      seen.add(pair);
      // sign: `scheduler` at `steps` scores higher (worse) than `versus`, and the difference is the rows' scores' difference
      expect(p.difference).toBeGreaterThanOrEqual(0);
      expect(p.difference).toBe((hi.slicedW2 as number) - (lo.slicedW2 as number));
      expect(Number.isFinite(p.se) && p.se >= 0).toBe(true);
    }
    expect(seen.size).toBe((n * (n - 1)) / 2);
    // pairing: DDIM and Euler at 4 steps (both on their grid) take the same steps from the same noise, so their samples
    // agree to float32 and the paired SE of their difference is far below either run's own bootstrap SE
    const ddimEuler4 = dist.paired.find((p) => p.steps === 4 && p.versusSteps === 4 && [p.scheduler, p.versus].sort().join() === 'ddim,euler');
    expect(ddimEuler4?.difference).toBeLessThan(1e-5);
    expect(ddimEuler4?.se).toBeLessThan(1e-3 * Math.min(row(runs, 'ddim', 4).slicedW2Se as number, row(runs, 'euler', 4).slicedW2Se as number));
    // across step counts and schedulers too: Euler ancestral's samples are its own noise's, unlike Euler's
    const cross = dist.paired.find((p) => [key(p.scheduler, p.steps), key(p.versus, p.versusSteps)].sort().join('|') === 'euler-ancestral@6|euler@4');
    expect(cross?.se).toBeGreaterThan(0);
    // the run off its grid is still scored and paired (its samples are what the sampler gives), in n − 1 pairs
    expect(dist.paired.filter((p) => key(p.scheduler, p.steps) === 'ddim@6' || key(p.versus, p.versusSteps) === 'ddim@6')).toHaveLength(n - 1);
    // the console and the HTML print the count, and each step count against its best from the same list
    expect(consoleText).toContain(`every pair of runs, ${dist.paired.length}, is in samplers.json distribution.paired`);
    const html = readFileSync(join(out, 'samplers.html'), 'utf8');
    expect(html).toContain(`Every pair of runs, across step counts too (${dist.paired.length} in all), is in samplers.json, distribution.paired.`);
    for (const steps of STEPS) {
      const at = runs.filter((r) => r.steps === steps);
      const best = at.reduce((b, r) => ((r.slicedW2 as number) < (b.slicedW2 as number) ? r : b));
      for (const r of at.filter((x) => x !== best)) {
        const p = dist.paired.find((q) => q.scheduler === r.scheduler && q.steps === steps && q.versus === best.scheduler && q.versusSteps === steps);
        expect(p, `${r.scheduler} at ${steps} against the best, ${best.scheduler}`).toBeDefined();
        expect(consoleText).toContain(`${r.scheduler} +${p?.difference.toExponential(1)} ± ${p?.se.toExponential(1)}`);
      }
      expect(consoleText).toContain(`${steps} steps (best ${best.scheduler})`);
    }
  });
});
