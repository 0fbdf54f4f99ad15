/** `ridge fit` inputs (issue #11): int64 groups, float64 X/Y with a note, a missing file named in one line. */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { registerRidgeCommand } from '../../ts/cli/commands/ridge.js';
import { InvalidArgumentError, MissingFileError, NonFiniteError, ShapeError } from '../../ts/errors.js';
import { writeNpy } from '../../ts/io/npy.js';
import { PreflightError } from '../../ts/pipeline/errors.js';
import { RidgeModel } from '../../ts/ridge/RidgeModel.js';
import { planted } from '../helpers/random.js';
import { runCommands } from '../helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-cli-inputs-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const f = (name: string) => join(tmp, name);

const run = (...args: string[]): Promise<string> => runCommands([registerRidgeCommand], args);

/** numpy's np.save of an int64 vector, byte for byte. */
function int64Npy(values: number[]): Buffer {
  let dict = `{'descr': '<i8', 'fortran_order': False, 'shape': (${values.length},), }`;
  dict = dict.padEnd(64 - 10 - 1, ' ') + '\n';
  const data = Buffer.alloc(8 * values.length);
  values.forEach((v, i) => data.writeBigInt64LE(BigInt(v), 8 * i));
  return Buffer.concat([Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, dict.length, 0]), Buffer.from(dict, 'latin1'), data]);
}

/** A float32 matrix as numpy's np.save writes a Fortran-ordered one (np.save(p, X.T) of a C array): column by column. */
function fortranNpy(data: Float32Array, rows: number, cols: number): Buffer {
  let dict = `{'descr': '<f4', 'fortran_order': True, 'shape': (${rows}, ${cols}), }`;
  dict = dict.padEnd(64 - 10 - 1, ' ') + '\n';
  const f = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) f[c * rows + r] = data[r * cols + c];
  return Buffer.concat([Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, dict.length, 0]), Buffer.from(dict, 'latin1'), Buffer.from(f.buffer)]);
}

describe('ridge fit inputs', () => {
  const { x, y } = planted(48, 6, 3, 5);

  it('a Fortran-ordered X and a 1-D y (one target, as scikit-learn takes it) fit the model their C-order, 2-D forms fit', async () => {
    writeFileSync(f('xF.npy'), fortranNpy(x.data, 48, 6));
    const first = Float32Array.from({ length: 48 }, (_, i) => y.data[i * 3]);
    await writeNpy(f('y1d.npy'), first, [48]);
    await writeNpy(f('xC.npy'), x.data, [48, 6]);
    await writeNpy(f('y2d.npy'), first, [48, 1]);
    const out = await run('ridge', 'fit', '--x', f('xF.npy'), '--y', f('y1d.npy'), '--alphas', '1e-1:1e3:5', '--folds', '3', '--out', f('m1.safetensors'));
    expect(out).toMatch(/X 48×6, Y 48×1; 5 alphas, 3 folds/);
    await run('ridge', 'fit', '--x', f('xC.npy'), '--y', f('y2d.npy'), '--alphas', '1e-1:1e3:5', '--folds', '3', '--out', f('m2.safetensors'));
    const [a, b] = await Promise.all([RidgeModel.load(f('m1.safetensors')), RidgeModel.load(f('m2.safetensors'))]);
    expect(Array.from(a.predict(x).data)).toEqual(Array.from(b.predict(x).data));
    // a 1-D y of other length is held against X's rows like any Y; a 1-D X is refused (samples or features?)
    await writeNpy(f('y1d40.npy'), first.subarray(0, 40), [40]);
    await expect(run('ridge', 'fit', '--x', f('xC.npy'), '--y', f('y1d40.npy'), '--out', f('m3.safetensors'))).rejects.toThrow(
      new ShapeError(`--y ${f('y1d40.npy')} has 40 rows but --x ${f('xC.npy')} has 48; one row per sample in both`),
    );
    await expect(run('ridge', 'fit', '--x', f('y1d.npy'), '--y', f('y2d.npy'), '--out', f('m3.safetensors'))).rejects.toThrow(
      `--x: X (${f('y1d.npy')}): expected a 2-D array (samples × columns), got shape (48)`,
    );
  });

  it('accepts int64 groups and float64 X/Y, with a one-line note per conversion', async () => {
    await writeNpy(f('x.npy'), Float64Array.from(x.data), [48, 6]);
    await writeNpy(f('y.npy'), y.data, [48, 3]);
    writeFileSync(f('g.npy'), int64Npy(Array.from({ length: 48 }, (_, i) => i % 8)));
    const out = await run('ridge', 'fit', '--x', f('x.npy'), '--y', f('y.npy'), '--groups', f('g.npy'), '--folds', '4', '--alphas', '1,10,100', '--out', f('m.safetensors'));
    expect(out.split('\n').filter((l) => l.startsWith('note:'))).toEqual([`note: X (${f('x.npy')}) is float64; converted to float32, the engine's precision`]);
    expect(out).toMatch(/4 folds \(grouped\)/);
  });

  it('NaN/Inf in X or Y (checked by the engine) and float64 beyond float32 are refused naming the file and element', async () => {
    const yInf = Float32Array.from(y.data);
    yInf[3 * 3 + 1] = -Infinity;
    await writeNpy(f('x32.npy'), x.data, [48, 6]);
    await writeNpy(f('yinf.npy'), yInf, [48, 3]);
    await expect(run('ridge', 'fit', '--x', f('x32.npy'), '--y', f('yinf.npy'), '--out', f('inf.safetensors'))).rejects.toThrow(
      new NonFiniteError(`Y (${f('yinf.npy')}): element [row 3, column 1] (flat index 10) is -Infinity; finite numbers are required`),
    );
    const yBig = Float64Array.from(y.data);
    yBig[5] = 1e39;
    await writeNpy(f('ybig.npy'), yBig, [48, 3]);
    await expect(run('ridge', 'fit', '--x', f('x32.npy'), '--y', f('ybig.npy'), '--out', f('inf.safetensors'))).rejects.toThrow(
      new NonFiniteError(`Y (${f('ybig.npy')}): element [row 1, column 2] = 1e+39 is beyond float32's range (±3.4e38)`),
    );
    expect(existsSync(f('inf.safetensors'))).toBe(false);
  });

  it('X, Y and groups of different lengths are refused naming the files, before the fit', async () => {
    await writeNpy(f('x32.npy'), x.data, [48, 6]);
    await writeNpy(f('y40.npy'), y.data.subarray(0, 40 * 3), [40, 3]);
    await writeNpy(f('y48.npy'), y.data, [48, 3]);
    writeFileSync(f('g10.npy'), int64Npy(Array.from({ length: 10 }, (_, i) => i)));
    await expect(run('ridge', 'fit', '--x', f('x32.npy'), '--y', f('y40.npy'), '--out', f('s.safetensors'))).rejects.toThrow(
      new ShapeError(`--y ${f('y40.npy')} has 40 rows but --x ${f('x32.npy')} has 48; one row per sample in both`),
    );
    await expect(run('ridge', 'fit', '--x', f('x32.npy'), '--y', f('y48.npy'), '--groups', f('g10.npy'), '--out', f('s.safetensors'))).rejects.toThrow(
      new ShapeError(`--groups ${f('g10.npy')} has 10 entries but --x ${f('x32.npy')} has 48 rows; one group label (e.g. the image id) per row`),
    );
    expect(existsSync(f('s.safetensors'))).toBe(false);
  });

  it('--folds beyond half the rows of X is refused from its header, naming the flag, the rows and the file', async () => {
    // (the fit refused it only once the data was read, as "RidgeCV: 49 folds but only 48 samples")
    await writeNpy(f('x32.npy'), x.data, [48, 6]);
    await writeNpy(f('y48.npy'), y.data, [48, 3]);
    for (const folds of ['49', '25']) {
      await expect(run('ridge', 'fit', '--x', f('x32.npy'), '--y', f('y48.npy'), '--folds', folds, '--out', f('k.safetensors'))).rejects.toThrow(
        new InvalidArgumentError(`--folds ${folds} needs ${2 * Number(folds)} rows (samples) at least, 2 per validation fold, but --x ${f('x32.npy')} has 48; use at most 24 folds`),
      );
    }
    await writeNpy(f('x3.npy'), x.data.subarray(0, 18), [3, 6]);
    await writeNpy(f('y3.npy'), y.data.subarray(0, 9), [3, 3]);
    await expect(run('ridge', 'fit', '--x', f('x3.npy'), '--y', f('y3.npy'), '--folds', '2', '--out', f('k.safetensors'))).rejects.toThrow(
      new InvalidArgumentError(`--folds 2 needs 4 rows (samples) at least, 2 per validation fold, but --x ${f('x3.npy')} has 3; too few for cross-validation (2 folds of 2 samples at least)`),
    );
    expect(existsSync(f('k.safetensors'))).toBe(false);
  });

  it('every problem of the flags and the inputs\' headers is listed at once, before anything is read', async () => {
    await writeNpy(f('x32.npy'), x.data, [48, 6]);
    await writeNpy(f('y40.npy'), y.data.subarray(0, 40 * 3), [40, 3]);
    writeFileSync(f('g10.npy'), int64Npy(Array.from({ length: 10 }, (_, i) => i)));
    const refused = (...args: string[]) => run('ridge', 'fit', ...args).then(() => { throw new Error('expected a refusal'); }, (e: unknown) => e as PreflightError);
    const e = await refused('--x', f('x32.npy'), '--y', f('y40.npy'), '--groups', f('g10.npy'), '--alphas', '1,10,10', '--folds', '1', '--score', 'foo', '--out', f('many.safetensors'));
    expect(e).toBeInstanceOf(PreflightError);
    expect(e.message.split('\n')[0]).toBe('cannot start ridge fit:');
    expect(e.problems).toEqual([
      '--folds: expected an integer from 2 to 1048576, got 1',
      "--alphas: the alphas must be distinct, got 10 at positions 1 and 2 of '1,10,10'",
      "--score: expected r2, pearson, got 'foo'",
      `--y ${f('y40.npy')} has 40 rows but --x ${f('x32.npy')} has 48; one row per sample in both`,
      `--groups ${f('g10.npy')} has 10 entries but --x ${f('x32.npy')} has 48 rows; one group label (e.g. the image id) per row`,
    ]);
    // the headers' shapes and types, and the other choices, are named by their flags too
    await writeNpy(f('x1d.npy'), x.data, [48 * 6]);
    await writeNpy(f('yint.npy'), new Int16Array(48 * 3), [48, 3]);
    const h = await refused('--x', f('x1d.npy'), '--y', f('yint.npy'), '--route', 'dual', '--backend', 'gpu', '--out', f('many.safetensors'));
    expect(h.problems).toEqual([
      "--route: expected auto, primal, kernel, got 'dual'",
      "--backend: expected auto, cpu, cuda, got 'gpu'",
      `--x: X (${f('x1d.npy')}): expected a 2-D array (samples × columns), got shape (288)`,
      `--y: Y (${f('yint.npy')}): expected float32 or float64 data, got int16`,
    ]);
    // too many folds for X's rows is one more line
    const k = await refused('--x', f('x32.npy'), '--y', f('y40.npy'), '--folds', '30', '--score', 'foo', '--out', f('many.safetensors'));
    expect(k.problems).toEqual([
      "--score: expected r2, pearson, got 'foo'",
      `--y ${f('y40.npy')} has 40 rows but --x ${f('x32.npy')} has 48; one row per sample in both`,
      `--folds 30 needs 60 rows (samples) at least, 2 per validation fold, but --x ${f('x32.npy')} has 48; use at most 24 folds`,
    ]);
    expect(existsSync(f('many.safetensors'))).toBe(false);
  });

  it('a missing input is one MissingFileError naming the flag and the file', async () => {
    await expect(run('ridge', 'fit', '--x', f('nope.npy'), '--y', f('y.npy'), '--out', f('m2.safetensors'))).rejects.toThrow(
      new MissingFileError(`--x: ${f('nope.npy')}: file not found`),
    );
  });

  it('one problem is the line it has in the list: --alphas alone is "--alphas: …", not "alphas: …"', async () => {
    await writeNpy(f('x32.npy'), x.data, [48, 6]);
    await writeNpy(f('y48.npy'), y.data, [48, 3]);
    const alone = run('ridge', 'fit', '--x', f('x32.npy'), '--y', f('y48.npy'), '--alphas', '0,1', '--out', f('a.safetensors'));
    await expect(alone).rejects.toThrow(new InvalidArgumentError('--alphas: every alpha must be finite and > 0, got 0 at position 0'));
    await expect(alone).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('the groups are checked with every other problem: their length against a refused X, their count against --folds', async () => {
    await writeNpy(f('xint.npy'), new Int32Array(48 * 6), [48, 6]);
    await writeNpy(f('y48.npy'), y.data, [48, 3]);
    writeFileSync(f('g10.npy'), int64Npy(Array.from({ length: 10 }, (_, i) => i)));
    writeFileSync(f('g2.npy'), int64Npy(Array.from({ length: 48 }, (_, i) => (i < 24 ? 7 : 9))));
    const refused = (...args: string[]) => run('ridge', 'fit', ...args).then(() => { throw new Error('expected a refusal'); }, (e: unknown) => e as PreflightError);
    // an int32 X is refused, but its rows are known: the groups' length is still checked against them
    const e = await refused('--x', f('xint.npy'), '--y', f('y48.npy'), '--groups', f('g10.npy'), '--out', f('g.safetensors'));
    expect(e.problems).toEqual([
      `--x: X (${f('xint.npy')}): expected float32 or float64 data, got int32`,
      `--groups ${f('g10.npy')} has 10 entries but --x ${f('xint.npy')} has 48 rows; one group label (e.g. the image id) per row`,
    ]);
    // 2 distinct groups cannot fill 5 folds: refused before the fit (the engine named neither flag nor file), alone or listed
    const few = `--groups ${f('g2.npy')} has 2 distinct groups but --folds is 5; expected at least one group per fold (a group never straddles folds)`;
    await writeNpy(f('x32.npy'), x.data, [48, 6]);
    const out = run('ridge', 'fit', '--x', f('x32.npy'), '--y', f('y48.npy'), '--groups', f('g2.npy'), '--out', f('g.safetensors'));
    await expect(out).rejects.toThrow(new InvalidArgumentError(few));
    const listed = await refused('--x', f('x32.npy'), '--y', f('y48.npy'), '--groups', f('g2.npy'), '--alphas', '0', '--out', f('g.safetensors'));
    expect(listed.problems).toEqual(['--alphas: every alpha must be finite and > 0, got 0 at position 0', few]);
    expect(await run('ridge', 'fit', '--x', f('x32.npy'), '--y', f('y48.npy'), '--groups', f('g2.npy'), '--folds', '2', '--out', f('g.safetensors'))).toMatch(/2 folds \(grouped\)/);
  });

  it('an X or Y without columns is refused before the fit, naming the flag and the file (review s44)', async () => {
    await writeNpy(f('x0.npy'), new Float32Array(0), [48, 0]);
    await writeNpy(f('y0.npy'), new Float32Array(0), [48, 0]);
    await writeNpy(f('x32.npy'), x.data, [48, 6]);
    const e = await run('ridge', 'fit', '--x', f('x0.npy'), '--y', f('y0.npy'), '--out', f('e.safetensors')).then(() => undefined, (err: unknown) => err as PreflightError);
    expect(e?.problems).toEqual([
      `--x: X (${f('x0.npy')}): has no columns, shape (48, 0); expected at least one feature column`,
      `--y: Y (${f('y0.npy')}): has no columns, shape (48, 0); expected at least one target column`,
    ]);
    await expect(run('ridge', 'fit', '--x', f('x32.npy'), '--y', f('y0.npy'), '--out', f('e.safetensors'), '--dry-run')).rejects.toThrow(/--y: Y .*has no columns/);
  });
});
