/** bench ridge's whole-command runs: each run's parts from the command's own lines, and the run of the median time outside the fit. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type CliRun, medianOutside, ridgeFitCommandRuns } from '../../ts/bench/ridge.js';
import { writeNpy } from '../../ts/io/npy.js';
import { distModule } from '../helpers/dist.js';

const dir = mkdtempSync(join(tmpdir(), 'bl-cliruns-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = (outside: number, write: number): CliRun => ({ seconds: 1 + outside, fitSeconds: 1, outsideSeconds: outside, startupSeconds: outside - write, readSeconds: 0, writeSeconds: write });

describe('bench ridge: the whole ridge fit command, run as often as the fit', () => {
  it('times each run whole and splits it by the command’s own lines', async () => {
    let seed = 1;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) - 0.5;
    await writeNpy(join(dir, 'x.npy'), Float32Array.from({ length: 40 * 6 }, rand), [40, 6]);
    await writeNpy(join(dir, 'y.npy'), Float32Array.from({ length: 40 * 3 }, rand), [40, 3]);
    const out = join(dir, 'model.safetensors');
    const runs = ridgeFitCommandRuns(['--x', join(dir, 'x.npy'), '--y', join(dir, 'y.npy'), '--alphas', '1,10', '--folds', '4', '--out', out], 3, process.env, distModule('cli/main'));
    expect(runs).toHaveLength(3);
    for (const r of runs) {
      for (const v of Object.values(r)) expect(Number.isFinite(v)).toBe(true);
      expect(r.fitSeconds).toBeGreaterThan(0);
      expect(r.writeSeconds).toBeGreaterThan(0);
      expect(r.outsideSeconds).toBeCloseTo(r.seconds - r.fitSeconds, 12);
      expect(r.startupSeconds).toBeCloseTo(r.outsideSeconds - r.readSeconds - r.writeSeconds, 12);
      expect(r.startupSeconds).toBeGreaterThan(0);
    }
  });

  it('reports the run of the median time outside the fit, whatever the order', () => {
    const [a, b, c] = [run(0.6, 0.45), run(0.2, 0.06), run(0.25, 0.1)];
    expect(medianOutside([a, b, c])).toBe(c);
    expect(medianOutside([c, a, b])).toBe(c);
    expect(medianOutside([b])).toBe(b);
    // (an even count: the lower middle one)
    expect(medianOutside([a, b, c, run(0.3, 0.1)])).toBe(c);
  });
});
