/**
 * `ridge fit`'s alpha-edge warning counts only targets that are not constant, the rule reconstruct's decoders use
 * (alphaDiagnostics): a constant target scores 0 at every alpha and ties to the largest, so a Y with half its
 * columns constant warned "50.0% … the largest; consider widening the grid at both ends", an all-constant Y
 * "100.0% … widening upwards".
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { registerRidgeCommand } from '../../../ts/cli/commands/ridge.js';
import { writeNpy } from '../../../ts/io/npy.js';
import { planted } from '../../helpers/random.js';
import { runCommands } from '../../helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-cli-const-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const f = (name: string) => join(tmp, name);

const run = (...args: string[]): Promise<string> => runCommands([registerRidgeCommand], args);
const notesAndWarnings = (out: string) => out.split('\n').filter((l) => /^(note|warning):/.test(l));

describe('ridge fit: constant targets and the alpha-edge warning', () => {
  const n = 48, p = 5, t = 12;
  const { x } = planted(n, p, 1, 9);
  // noiseless linear targets: each chooses the grid's smallest alpha
  const linear = (i: number, j: number) => Array.from({ length: p }, (_, k) => x.data[i * p + k] * (1 + ((k * (j + 1)) % 4))).reduce((a, b) => a + b, 0);
  const yMixed = Float32Array.from({ length: n * t }, (_, k) => (k % t < 6 ? 2.5 : linear(Math.floor(k / t), k % t))); // 6 constant columns

  it('half the targets constant: they are counted in a note and left out of the warning', async () => {
    await writeNpy(f('x.npy'), x.data, [n, p]);
    await writeNpy(f('y.npy'), yMixed, [n, t]);
    for (const score of ['r2', 'pearson']) {
      const out = await run('ridge', 'fit', '--x', f('x.npy'), '--y', f('y.npy'), '--alphas', '1e-2:1e2:5', '--score', score, '--out', f('m.safetensors'));
      expect(notesAndWarnings(out)).toEqual([
        'note: 6 of 12 targets are constant over the samples (every alpha scores 0); they are left out of the alpha-edge check',
        'warning: 100.0% of targets with a positive CV score chose the smallest alpha; consider widening the grid downwards',
      ]);
    }
  });

  it('every target constant: a note says so and nothing warns', async () => {
    await writeNpy(f('yc.npy'), new Float32Array(n * 4).fill(-1), [n, 4]);
    const out = await run('ridge', 'fit', '--x', f('x.npy'), '--y', f('yc.npy'), '--out', f('mc.safetensors'));
    expect(notesAndWarnings(out)).toEqual(['note: all 4 targets are constant over the samples (every alpha scores 0); nothing to fit, so the chosen alphas mean nothing']);
  });

  it('no constant target: no note, the warning as before', async () => {
    await writeNpy(f('y6.npy'), Float32Array.from({ length: n * 6 }, (_, k) => linear(Math.floor(k / 6), k % 6)), [n, 6]);
    const out = await run('ridge', 'fit', '--x', f('x.npy'), '--y', f('y6.npy'), '--alphas', '1e-2:1e2:5', '--out', f('m6.safetensors'));
    expect(notesAndWarnings(out)).toEqual(['warning: 100.0% of targets chose the smallest alpha; consider widening the grid downwards']);
  });

  it('targets of pure noise (no positive CV score at any alpha) pile up at the largest alpha and are left out of the warning', async () => {
    // noise targets at the top of the grid (by chance one may land lower), and only the linear ones counted
    let s = 7;
    const noise = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5);
    const yNoise = Float32Array.from({ length: n * t }, (_, k) => (k % t < 6 ? noise() : linear(Math.floor(k / t), k % t)));
    await writeNpy(f('yn.npy'), yNoise, [n, t]);
    const out = await run('ridge', 'fit', '--x', f('x.npy'), '--y', f('yn.npy'), '--alphas', '1e-2:1e6:9', '--out', f('mn.safetensors'));
    expect(out).toMatch(/chosen alphas \(targets per alpha\):[\s\S]*1\.00e\+6 +[1-9] /);
    // the note says how many the table counts that the warning does not (the table shows them at 1e6, the warning 100% at the smallest)
    expect(notesAndWarnings(out)).toEqual([
      'note: 6 of 12 targets score <= 0 at every alpha (the features predict nothing there, so their chosen alpha means nothing); they are in the table above but left out of the alpha-edge check',
      'warning: 100.0% of targets with a positive CV score chose the smallest alpha; consider widening the grid downwards',
    ]);
  });

  it('a one-alpha grid: every target chooses it by design, and nothing warns about grid edges', async () => {
    const out = await run('ridge', 'fit', '--x', f('x.npy'), '--y', f('y6.npy'), '--alphas', '1e1:1e1:1', '--out', f('m1.safetensors'));
    expect(out).toMatch(/chosen alphas \(targets per alpha\):\n +1\.00e\+1 +6 /);
    expect(notesAndWarnings(out)).toEqual([]);
  });
});
