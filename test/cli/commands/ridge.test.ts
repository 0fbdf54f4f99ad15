import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { registerRidgeCommand } from '../../../ts/cli/commands/ridge.js';
import { InvalidArgumentError, MissingFileError } from '../../../ts/errors.js';
import { readNpy, writeNpy } from '../../../ts/io/npy.js';
import { readSafetensors, writeSafetensors } from '../../../ts/io/safetensors.js';
import { nativeSync } from '../../../ts/native/call.js';
import { RidgeCV } from '../../../ts/ridge/RidgeCV.js';
import { RidgeModel } from '../../../ts/ridge/RidgeModel.js';
import { distModule } from '../../helpers/dist.js';
import { runCommand } from '../../helpers/nodeChild.js';
import { planted } from '../../helpers/random.js';
import { runCommands } from '../../helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-cli-ridge-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const f = (name: string) => join(tmp, name);

const run = (...args: string[]): Promise<string> => runCommands([registerRidgeCommand], args);

describe('brainlatent ridge fit / predict', () => {
  const { x, y } = planted(60, 8, 5, 21);

  it('fits from .npy files, prints a summary, and predicts', async () => {
    await writeNpy(f('x.npy'), x.data, [60, 8]);
    await writeNpy(f('y.npy'), Float64Array.from(y.data), [60, 5]); // float64 Y is accepted
    await writeNpy(f('g.npy'), Int32Array.from({ length: 60 }, (_, i) => i % 12), [60]);
    const out = await run('ridge', 'fit', '--x', f('x.npy'), '--y', f('y.npy'), '--alphas', '1e-1:1e3:5', '--folds', '3', '--groups', f('g.npy'), '--standardize', '--out', f('m.safetensors'));
    expect(out).toMatch(/X 60×8, Y 60×5; 5 alphas, 3 folds \(grouped\)/);
    expect(out).toMatch(/chosen alphas \(targets per alpha\)/);
    expect(out).toMatch(/mean CV r2 at the chosen alphas: 0\.\d+/);
    const model = await RidgeModel.load(f('m.safetensors'));
    expect(model.settings).toMatchObject({ nFolds: 3, foldKind: 'groups', standardize: true });
    expect(model.settings.alphas.map((a) => +a.toPrecision(6))).toEqual([0.1, 1, 10, 100, 1000]);
    const msg = await run('ridge', 'predict', '--model', f('m.safetensors'), '--x', f('x.npy'), '--out', f('p.npy'));
    expect(msg).toMatch(/predicted 60×5/);
    const p = await readNpy(f('p.npy'));
    expect(p.shape).toEqual([60, 5]);
    expect(Array.from(p.data as ArrayLike<number>)).toEqual(Array.from(model.predict(x).data));
  });

  it("a name without its extension, beside the file with it, is named with a 'did you mean' (ridge fit --out m wrote m.safetensors)", async () => {
    // (needs the first test's files: x.npy, y.npy, m.safetensors)
    const model = await run('ridge', 'predict', '--model', f('m'), '--x', f('x.npy'), '--out', f('p2.npy')).then(() => null, (e: Error) => e);
    expect(model).toBeInstanceOf(MissingFileError);
    expect(model?.message).toBe(`--model ${f('m')}: file not found; did you mean ${f('m.safetensors')}? ('ridge fit --out' adds .safetensors to a name without an extension)`);
    const x = await run('ridge', 'predict', '--model', f('m.safetensors'), '--x', f('x'), '--out', f('p2.npy')).then(() => null, (e: Error) => e);
    expect(x?.message).toBe(`--x ${f('x')}: file not found; did you mean ${f('x.npy')}?`);
    const y = await run('ridge', 'fit', '--x', f('x.npy'), '--y', f('y'), '--out', f('m2')).then(() => null, (e: Error) => e);
    expect(y?.message).toBe(`--y ${f('y')}: file not found; did you mean ${f('y.npy')}?`);
    // a name that is nowhere keeps the reader's error
    const none = await run('ridge', 'predict', '--model', f('nothing'), '--x', f('x.npy'), '--out', f('p2.npy')).then(() => null, (e: Error) => e);
    expect(none).toBeInstanceOf(MissingFileError);
    expect(none?.message).not.toContain('did you mean');
    // named by its flag, as ridge fit names --x (review C: 'missing.safetensors: file not found'); both when both are bad
    expect(none?.message).toBe(`--model: ${f('nothing')}: file not found`);
    const both = await run('ridge', 'predict', '--model', f('nothing'), '--x', f('nothing.npy'), '--out', f('p2.npy')).then(() => null, (e: Error) => e);
    expect(both?.message).toBe(`cannot start ridge predict:\n  - --model: ${f('nothing')}: file not found\n  - --x: ${f('nothing.npy')}: file not found`);
    expect(existsSync(f('p2.npy'))).toBe(false);
  });

  it('large inputs are mapped from their files (Linux) and fit the model the same arrays fit in memory', async () => {
    const big = planted(700, 900, 600, 5); // X 2.5 MB, Y 1.7 MB: X above the 2 MiB mapping threshold
    await writeNpy(f('xl.npy'), big.x.data, [700, 900]);
    await writeNpy(f('yl.npy'), big.y.data, [700, 600]);
    await run('ridge', 'fit', '--x', f('xl.npy'), '--y', f('yl.npy'), '--alphas', '1e0:1e4:5', '--folds', '3', '--out', f('ml.safetensors'));
    const model = await RidgeModel.load(f('ml.safetensors'));
    const inMemory = await new RidgeCV({ alphas: model.settings.alphas, folds: 3 }).fit(big.x, big.y);
    expect(Array.from(model.bestAlphas)).toEqual(Array.from(inMemory.bestAlphas));
    const a = model.predict(big.x).data, b = inMemory.predict(big.x).data;
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
    expect(worst).toBeLessThan(1e-4);
    if (process.platform === 'linux') {
      // the command installed the mapper where the engine does not use huge pages: a large array read now is the
      // file's pages, mapped (else it is read into huge pages)
      const held = await readNpy(f('xl.npy'));
      expect(readFileSync('/proc/self/maps', 'utf8').includes(f('xl.npy'))).toBe(!nativeSync((b) => b.buildInfo()).hugePages);
      expect(held.shape).toEqual([700, 900]);
    }
  });

  it('bad input: a model from a different feature count, a truncated or integer .npy, a bad alpha grid', async () => {
    await writeNpy(f('x9.npy'), new Float32Array(60 * 9), [60, 9]);
    await expect(run('ridge', 'predict', '--model', f('m.safetensors'), '--x', f('x9.npy'), '--out', f('q.npy'))).rejects.toThrow(
      `--x ${f('x9.npy')}: X has 9 features (columns) but --model ${f('m.safetensors')} was fitted on 8`,
    );
    // a model of a newer format version, named by the flag (review C #11)
    const m = await readSafetensors(f('m.safetensors'));
    const tensors = Object.fromEntries(Object.entries(m.tensors).map(([k, t]) => [k, { data: t.data, shape: t.shape }]));
    await writeSafetensors(f('v99.safetensors'), tensors, { ...m.metadata, version: '99' });
    await expect(run('ridge', 'predict', '--model', f('v99.safetensors'), '--x', f('x.npy'), '--out', f('q.npy'))).rejects.toThrow(
      `--model: ${f('v99.safetensors')}: metadata 'version' is "99"; this brainlatent reads brainlatent.ridge version '1' (the file was written by a newer brainlatent: upgrade brainlatent to load it, or load it with the one that wrote it)`,
    );
    const raw = readFileSync(f('x.npy'));
    writeFileSync(f('trunc.npy'), raw.subarray(0, raw.length - 100));
    await expect(run('ridge', 'fit', '--x', f('trunc.npy'), '--y', f('y.npy'), '--out', f('z.safetensors'))).rejects.toThrow(/truncated/);
    await writeNpy(f('int.npy'), new Int16Array(60 * 5), [60, 5]);
    await expect(run('ridge', 'fit', '--x', f('x.npy'), '--y', f('int.npy'), '--out', f('z.safetensors'))).rejects.toThrow(
      /Y .* expected float32 or float64 data, got int16/,
    );
    await expect(run('ridge', 'fit', '--x', f('x.npy'), '--y', f('y.npy'), '--alphas', '1,0,3', '--out', f('z.safetensors'))).rejects.toThrow(/> 0/);
    await expect(run('ridge', 'fit', '--x', f('x.npy'), '--y', f('y.npy'), '--alphas', '1:2', '--out', f('z.safetensors'))).rejects.toThrow(/start:stop:count/);
    await writeNpy(f('g5.npy'), new Int32Array(5), [5]);
    await expect(run('ridge', 'fit', '--x', f('x.npy'), '--y', f('y.npy'), '--groups', f('g5.npy'), '--out', f('z.safetensors'))).rejects.toThrow(
      /--groups .*g5\.npy has 5 entries but --x .*x\.npy has 60 rows/,
    );
  });

  it('refuses --memory 0, -1 and --threads -1 with the flag named; a budget below the footprint names the footprint', async () => {
    const fit = (...extra: string[]) => run('ridge', 'fit', '--x', f('x.npy'), '--y', f('y.npy'), '--out', f('mem.safetensors'), ...extra);
    await expect(fit('--memory', '0')).rejects.toThrow(/--memory: expected a size in GiB > 0 \(e.g. 0.5 or 8\), got '0'/);
    await expect(fit('--memory', '-1')).rejects.toThrow(/--memory: expected a size in GiB > 0/);
    // (review s35-r5: the engine's words, naming the library's option in bytes)
    await expect(fit('--memory', '1e20')).rejects.toThrow("--memory: expected a size in GiB up to 1048576 (1 PiB), got '1e20'");
    const { RidgeCV } = await import('../../../ts/ridge/RidgeCV.js');
    expect(() => new RidgeCV({ memoryBudget: 1e29 })).toThrow('RidgeCV memoryBudget: expected at most 1125899906842624 bytes (1 PiB), got 1e+29');
    await expect(fit('--memory', 'lots')).rejects.toThrow(/--memory/);
    // (it rounded to 0 bytes: "RidgeCV memoryBudget: expected a finite number > 0, got 0", after the dry run's header)
    await expect(fit('--memory', '1e-12', '--dry-run')).rejects.toThrow(
      new InvalidArgumentError("--memory: expected a size in GiB of at least one byte (2^-30 GiB: 9.32e-10 or more), got '1e-12'"),
    );
    await expect(fit('--threads', '-1')).rejects.toThrow(/--threads: expected an integer from 0 to 4096, got -1$/);
    await expect(fit('--folds', '2.5')).rejects.toThrow(/--folds: expected an integer from 2 to 1048576/);
    // refused from the headers' shapes, before X and Y are read, by the engine's plan of the fit's memory; the CLI
    // user's knob is --memory, not the library's memoryBudget
    const refused = await fit('--memory', '1e-9').then(() => '', (e: Error) => `${e.name}: ${e.message}`);
    // a budget's refusal: running it again cannot help (batch does not retry it)
    expect(await fit('--memory', '1e-9').then(() => null, (e: { reason?: string }) => e.reason)).toBe('budget');
    expect(refused).toMatch(
      /^OutOfMemoryError: ridge fit needs at least \S+ GiB of work buffers \(route \S+, 60 samples × 8 features → 5 targets: X's prepared copy \S+ GiB, the route's Grams and decompositions \S+ GiB, \S+ GiB fixed in all, plus \S+ \S+ per target\); --memory is 9\.31e-10 GiB: raise it to at least [\d.]+ GiB \(batches of 5 targets\), or leave it out/,
    );
    expect(refused).not.toMatch(/memoryBudget/);
    expect(existsSync(f('mem.safetensors'))).toBe(false);
    // the budget it names runs the fit
    const least = /raise it to at least ([\d.]+) GiB/.exec(refused)![1];
    expect(await fit('--memory', least)).toMatch(/work buffers: peak .* GiB in use of a \S+ GiB budget/);
    const out = await fit('--memory', '0.5');
    expect(out).toMatch(/work buffers: peak .* GiB in use of a 0.500 GiB budget \(planned at most: fixed .* GiB \+ .* GiB per batch\)/);
  });

  it('--memory below one byte is refused with exit 1 before anything is printed (the dry run printed its header, then the library refused memoryBudget 0)', async () => {
    const r = await runCommand(process.execPath, [distModule('cli/main'), 'ridge', 'fit', '--x', f('x.npy'), '--y', f('y.npy'), '--memory', '1e-12', '--out', f('mem.safetensors'), '--dry-run']);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe("brainlatent: InvalidArgumentError: --memory: expected a size in GiB of at least one byte (2^-30 GiB: 9.32e-10 or more), got '1e-12'\n");
    expect(r.status).toBe(1);
  });

  it('--dry-run prints the route and memory plan the fit then has, reading no data and writing no model', async () => {
    const args = ['ridge', 'fit', '--x', f('x.npy'), '--y', f('y.npy'), '--out', f('dry.safetensors'), '--memory', '0.001', '--standardize'];
    const dry = await run(...args, '--dry-run');
    expect(dry).toMatch(/^X 60×8 \(.*x\.npy\), Y 60×5 \(.*y\.npy\); 10 alphas, 5 folds$/m);
    const m = /^ridge fit: route (\S+), 60 samples × 8 features → 5 targets; work buffers planned at most \S+ GiB of a 0\.001 GiB budget \(fixed (\S+) GiB \+ \S+ GiB per batch\), (\d+) target batch(?:es)? of (\d+)$/m.exec(dry);
    expect(m, dry).not.toBeNull();
    expect(dry).toMatch(/dry run: X and Y not read, no model written to .*dry\.safetensors/);
    expect(existsSync(f('dry.safetensors'))).toBe(false);
    // the fit: the same route and batches
    const ran = await run(...args);
    expect(ran).toContain(`route ${m![1]} on `);
    expect(ran).toContain(`; ${m![3]} target batch(es) of ${m![4]};`);
  });

  it('an overflowing fit fails and writes no model', async () => {
    await writeNpy(f('xbig.npy'), x.data.map((v) => v * 1e30), [60, 8]);
    await writeNpy(f('ybig.npy'), y.data.map((v) => v * 1e37), [60, 5]);
    await expect(run('ridge', 'fit', '--x', f('xbig.npy'), '--y', f('ybig.npy'), '--out', f('big.safetensors'))).rejects.toThrow(/overflowed float32/);
    expect(() => readFileSync(f('big.safetensors'))).toThrow();
  });

  it('predict refuses NaN in X (naming the file and position), a model with NaN coef or zero x_scale, and handles 0 rows', async () => {
    await run('ridge', 'fit', '--x', f('x.npy'), '--y', f('y.npy'), '--out', f('m2.safetensors'));
    const bad = Float32Array.from(x.data);
    bad[8 * 3 + 6] = NaN;
    await writeNpy(f('xnan.npy'), bad, [60, 8]);
    await expect(run('ridge', 'predict', '--model', f('m2.safetensors'), '--x', f('xnan.npy'), '--out', f('pn.npy'))).rejects.toThrow(
      /xnan\.npy\): element \[row 3, column 6\] \(flat index 30\) is NaN/,
    );
    const model = await RidgeModel.load(f('m2.safetensors'));
    model.coef.data[11] = NaN;
    await model.save(f('mnan.safetensors'));
    await expect(run('ridge', 'predict', '--model', f('mnan.safetensors'), '--x', f('x.npy'), '--out', f('pn.npy'))).rejects.toThrow(
      /mnan\.safetensors: tensor 'coef' holds NaN at index 11/,
    );
    const scaled = await RidgeModel.load(f('m2.safetensors'));
    scaled.xScale.fill(0);
    await scaled.save(f('mzero.safetensors'));
    await expect(run('ridge', 'predict', '--model', f('mzero.safetensors'), '--x', f('x.npy'), '--out', f('pn.npy'))).rejects.toThrow(
      /mzero\.safetensors: tensor 'x_scale' is 0 at index 0/,
    );
    await writeNpy(f('x0.npy'), new Float32Array(0), [0, 8]);
    const msg = await run('ridge', 'predict', '--model', f('m2.safetensors'), '--x', f('x0.npy'), '--out', f('p0.npy'));
    expect(msg).toMatch(/predicted 0×5/);
    const p0 = await readNpy(f('p0.npy'));
    expect(p0.shape).toEqual([0, 5]);
    expect(p0.data.length).toBe(0);
  });
});

describe('brainlatent ridge fit: Ctrl-C or SIGTERM', () => {
  // (SIGTERM: a cluster scheduler's time limit, `timeout`, `docker stop`; it used to end the process at once)
  it.each(['SIGINT', 'SIGTERM'] as const)('%s stops the fit, says so, and writes no model', async (sig) => {
    // a fit of seconds: 1200 × 2500 → 2000 targets, 25 alphas, per-fold
    await writeNpy(f('xbig.npy'), new Float32Array(1200 * 2500).map((_, i) => Math.sin(i * 0.37)), [1200, 2500]);
    await writeNpy(f('ybig.npy'), new Float32Array(1200 * 2000).map((_, i) => Math.cos(i * 0.11)), [1200, 2000]);
    const child = spawn(process.execPath, [
      distModule('cli/main'), 'ridge', 'fit', '--x', f('xbig.npy'), '--y', f('ybig.npy'), '--alphas', '1e-2:1e6:25', '--cv-method', 'per-fold', '--out', f(`${sig}.safetensors`),
    ], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let stderr = '';
    let sent = false;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (!sent && /ridge fit: +0%/.test(stderr)) {
        sent = true;
        child.kill(sig);
      }
    });
    const code = await new Promise<number | null>((done) => child.on('close', (c) => done(c)));
    expect(sent).toBe(true);
    expect(code).toBe(1);
    expect(stderr).toMatch(new RegExp(`brainlatent: CancelledError: ridge fit: interrupted \\(${sig}\\) after [\\d.]+ m?s; no model written to .*${sig}\\.safetensors`));
    expect(existsSync(f(`${sig}.safetensors`))).toBe(false);
    expect(readdirSync(tmp).filter((n) => n.includes(sig))).toEqual([]);
  }, 120_000);
});
