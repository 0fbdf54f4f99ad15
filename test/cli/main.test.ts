/**
 * The CLI entry (dist/cli/main.js, as `brainlatent` runs it): a command line loads only the command modules it needs
 * (`--version` none, `ridge fit` the ridge command's bundle alone, none of the service/batch/pipeline dependencies), help and
 * version still print in full, and a command that exits as soon as its work is done (ridge fit) has printed
 * everything and left a complete model, or an error naming the bad input file.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { afterAll, describe, expect, it } from 'vitest';

import { writeNpy } from '../../ts/io/npy.js';
import { RidgeModel } from '../../ts/ridge/RidgeModel.js';
import { distModule } from '../helpers/dist.js';
import { runCommand } from '../helpers/nodeChild.js';
import { planted } from '../helpers/random.js';

const cli = distModule('cli/main');
const tmp = mkdtempSync(join(tmpdir(), 'bl-cli-main-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const f = (name: string) => join(tmp, name);

const hook = pathToFileURL(join(import.meta.dirname, '..', 'helpers', 'loadedModules.mjs')).href;
const registerHook = `data:text/javascript,import{register}from'node:module';register(${JSON.stringify(hook)});`;
let runs = 0;

/** Runs `brainlatent …args`; returns its exit status, output and the modules it loaded (paths under the package). */
async function brainlatent(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string; loaded: string[] }> {
  const list = f(`loaded-${runs++}.txt`);
  const r = await runCommand(process.execPath, ['--import', registerHook, cli, ...args], {
    env: { ...process.env, BRAINLATENT_TEST_LOADED: list, NO_COLOR: '1' },
  });
  let urls = '';
  try {
    urls = readFileSync(list, 'utf8');
  } catch {
    // nothing loaded beyond the entry's built-ins
  }
  const root = pathToFileURL(process.cwd()).href + '/';
  const loaded = urls.split('\n').filter(Boolean).map((u) => (u.startsWith(root) ? u.slice(root.length) : u));
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, loaded };
}

const commandModules = (loaded: string[]) => loaded.filter((m) => m.startsWith('dist/cli/commands/')).sort();
const HEAVY = ['fastify', 'bullmq', 'ioredis', 'h5wasm', 'ajv', '@niivue', 'onnx-proto', 'nifti-reader-js', 'pngjs', 'onnxruntime'];
const heavyLoaded = (loaded: string[]) => loaded.filter((m) => HEAVY.some((p) => m.includes(`node_modules/${p}`)));

describe('brainlatent (the CLI entry)', () => {
  it('--version and -V print the version and load no command module', async () => {
    for (const flag of ['--version', '-V']) {
      const r = await brainlatent(flag);
      expect(r.status).toBe(0);
      expect(r.stdout).toBe('0.1.0\n');
      expect(r.loaded).toContain('dist/cli/main.js'); // the hook saw the entry: an empty list means it saw nothing
      expect(commandModules(r.loaded)).toEqual([]);
    }
  });

  it('ridge fit --help and help ridge print the full help and load only the ridge command', async () => {
    const fit = await brainlatent('ridge', 'fit', '--help');
    expect(fit.status).toBe(0);
    expect(fit.stdout).toMatch(/^Usage: brainlatent ridge fit \[options\]/);
    for (const opt of ['--x <file>', '--y <file>', '--alphas <grid>', '--groups <file>', '--cv-method <m>', '--memory <GiB>', '--out <file>']) {
      expect(fit.stdout).toContain(opt);
    }
    expect(fit.stdout).toMatch(/Example:\n {2}brainlatent ridge fit --x early_betas\.npy/);
    expect(commandModules(fit.loaded)).toEqual(['dist/cli/commands/ridge.bundle.js']);
    expect(heavyLoaded(fit.loaded)).toEqual([]);

    const help = await brainlatent('help', 'ridge');
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^Usage: brainlatent ridge \[options\] \[command\]/);
    expect(help.stdout).toMatch(/\n {2}fit \[options\] +fit RidgeCV/);
    expect(help.stdout).toMatch(/\n {2}predict \[options\] +predict with a saved ridge model/);
    expect(commandModules(help.loaded)).toEqual(['dist/cli/commands/ridge.bundle.js']);
  });

  it('the program help lists every command', async () => {
    const r = await brainlatent('--help');
    expect(r.status).toBe(0);
    const listed = [...r.stdout.matchAll(/^ {2}([a-z]+)\b/gm)].map((m) => m[1]);
    expect(listed).toEqual(['demo', 'reconstruct', 'evaluate', 'encode', 'batch', 'worker', 'ridge', 'nsd', 'cache', 'sd', 'synth', 'serve', 'bench', 'help']);
    // every command loaded as tsc wrote it (one copy of each module), not from the one-command bundles
    expect(commandModules(r.loaded)).toEqual(listed.slice(0, -1).map((c) => `dist/cli/commands/${c}.js`).sort());
  });

  it('ridge fit prints its summary and leaves a complete model; NaN in X is refused naming the file', async () => {
    const { x, y } = planted(40, 6, 3, 7);
    await writeNpy(f('x.npy'), x.data, [40, 6]);
    await writeNpy(f('y.npy'), y.data, [40, 3]);
    const r = await brainlatent('ridge', 'fit', '--x', f('x.npy'), '--y', f('y.npy'), '--alphas', '1,10,100', '--folds', '4', '--out', f('m.safetensors'));
    expect(r.stderr).not.toMatch(/brainlatent: /);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^X 40×6, Y 40×3; 3 alphas, 4 folds$/m);
    expect(r.stdout).toMatch(/mean CV r2 at the chosen alphas: 0\.\d+/);
    expect(r.stdout).toMatch(new RegExp(`fitted in .*; model written to ${f('m.safetensors').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} in `));
    expect(commandModules(r.loaded)).toEqual(['dist/cli/commands/ridge.bundle.js']);
    expect(heavyLoaded(r.loaded)).toEqual([]);
    const model = await RidgeModel.load(f('m.safetensors'));
    expect([model.nFeatures, model.nTargets]).toEqual([6, 3]);

    const bad = Float32Array.from(x.data);
    bad[6 * 5 + 2] = NaN;
    await writeNpy(f('xnan.npy'), bad, [40, 6]);
    const nan = await brainlatent('ridge', 'fit', '--x', f('xnan.npy'), '--y', f('y.npy'), '--out', f('nan.safetensors'));
    expect(nan.status).toBe(1);
    expect(nan.stderr).toContain(`brainlatent: NonFiniteError: X (${f('xnan.npy')}): element [row 5, column 2] (flat index 32) is NaN; finite numbers are required`);
    expect(() => readFileSync(f('nan.safetensors'))).toThrow();
  });

  it("batch and worker do not load h5wasm at start-up: its WebAssembly memory is reserved on the first HDF5 read (under ulimit -v ≤ ~12 GB they crashed before any job)", async () => {
    const { writeFileSync } = await import('node:fs');
    const manifest = f('plan.json');
    writeFileSync(manifest, JSON.stringify({ name: 't', out: 'runs', nsd: { root: 'nsd' }, subjects: [1], analyses: [{ name: 'recon', kind: 'reconstruct', config: { model: { dir: 'model' } } }] }));
    for (const args of [['batch', 'plan', manifest, '--no-preflight'], ['batch', 'run', '--help'], ['worker', '--help']]) {
      const r = await brainlatent(...args);
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      expect(r.loaded.filter((m) => m.includes('node_modules/h5wasm')), args.join(' ')).toEqual([]);
    }
  });

  it('bench ridge takes --repeats as a positive integer and refuses anything else before any work', async () => {
    expect((await brainlatent('bench', 'ridge', '--help')).stdout).toMatch(/--repeats <n>\s+fits per shape, each in a fresh process/);
    for (const bad of ['0', '1.5', 'x']) {
      const r = await brainlatent('bench', 'ridge', '--repeats', bad, '--shapes', 'medium', '--results', f('bench'));
      expect(r.status).toBe(1);
      const got = bad === 'x' ? "'x'" : bad;
      expect(r.stderr).toContain(`brainlatent: InvalidArgumentError: --repeats: expected an integer >= 1, got ${got}`);
      expect(() => readFileSync(f('bench/ridge.jsonl'))).toThrow();
    }
  });

  it('a reader that closes stdout early (| head -1): the command ends quietly with exit 0', async () => {
    // stdout's read end is closed before the child has started, so its first write gets EPIPE
    const child = spawn(process.execPath, [cli, 'sd', 'schedule', '--steps', '999', '--strength', '1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const status = await new Promise<number | null>((res) => child.on('close', (code) => res(code)));
    expect(stderr).toBe('');
    expect(status).toBe(0);
  });

  it('ridge fit whose reader closes stdout early (| grep -m1) still writes its model and exits 0', async () => {
    // It exited 0 at the first EPIPE, before its model's save had finished: no model.safetensors
    const { x, y } = planted(40, 6, 3, 11);
    await writeNpy(f('px.npy'), x.data, [40, 6]);
    await writeNpy(f('py.npy'), y.data, [40, 3]);
    const child = spawn(process.execPath, [cli, 'ridge', 'fit', '--x', f('px.npy'), '--y', f('py.npy'), '--alphas', '1,10,100', '--folds', '4', '--out', f('pm.safetensors')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const status = await new Promise<number | null>((res) => child.on('close', (code) => res(code)));
    expect(stderr).not.toMatch(/Error|brainlatent: /);
    expect(status).toBe(0);
    const model = await RidgeModel.load(f('pm.safetensors'));
    expect([model.nFeatures, model.nTargets]).toEqual([6, 3]);
  });
});
