/**
 * The CLI's command bundles (scripts/bundle-cli.mjs, loaded by ts/cli/main.ts for a single command): the bundler's
 * rules on a small dist/ of its own, and on the real dist/ each command's help the same from its bundle as from its
 * modules.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { afterEach, describe, expect, it } from 'vitest';

import { packageRoot } from '../../ts/native/binding.js';
import { commandOutput, runCommand } from '../helpers/nodeChild.js';

interface BundleResult {
  bundled: string[];
  unbundled: { entry: string; extra: string[] }[];
}
// A dist/ module and the package's own modules it imports statically, followed (so a stand-in dist/ holds
// what main.js needs however its imports change), as paths under dist/.
function staticImports(entry: string): string[] {
  const seen = new Set<string>();
  const visit = (f: string): void => {
    if (seen.has(f)) return;
    seen.add(f);
    const text = readFileSync(path.join(packageRoot, 'dist', f), 'utf8');
    for (const m of text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s*['"](\.{1,2}\/[^'"]+)['"]/gm)) {
      if (/^\s*import\s+type\s/.test(m[0])) continue;
      visit(path.posix.normalize(path.posix.join(path.posix.dirname(f), m[1]!)));
    }
  };
  visit(entry);
  return [...seen];
}
const bundler = (): Promise<{ bundleCommands: (dist: string) => Promise<BundleResult> }> =>
  import(pathToFileURL(path.join(packageRoot, 'scripts', 'bundle-cli.mjs')).href) as never;

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A dist/ of `files` (path → source) in a temporary folder; returns the dist folder. */
function fakeDist(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'bl-bundle-'));
  dirs.push(dir);
  const dist = path.join(dir, 'dist');
  writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}');
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dist, f)), { recursive: true });
    writeFileSync(path.join(dist, f), text);
  }
  return dist;
}

const BASE = {
  // (what the bundles share with main.js is found from main.js's imports)
  'cli/main.js': "import './setup.js';\nimport '../errors.js';\n",
  'errors.js': 'export class BrainlatentError extends Error {}\n',
  'cli/setup.js': 'export const setup = 1;\n',
  'lib/where.js':
    "import { BrainlatentError } from '../errors.js';\n" +
    "export const where = () => new URL('../data.txt', import.meta.url).href;\n" +
    "export const fail = () => new BrainlatentError('from lib');\n",
  'lib/lazy.js': 'export const lazy = 42;\n',
  'lib/withPackage.js': "import 'some-package';\nexport const p = 1;\n",
};

describe('scripts/bundle-cli.mjs', () => {
  it('bundles a command beside its module: import.meta.url of each module as unbundled, the modules main.js shares external', async () => {
    const dist = fakeDist({
      ...BASE,
      'cli/commands/good.js':
        "import { where, fail } from '../../lib/where.js';\nimport { setup } from '../setup.js';\n" +
        "export const run = async () => ({ where: where(), err: fail(), setup, lazy: (await import('../../lib/lazy.js')).lazy });\n",
    });
    const { bundleCommands } = await bundler();
    const r = await bundleCommands(dist);
    expect(r.bundled.map((f) => path.basename(f))).toEqual(['good.js']);
    const bundle = path.join(dist, 'cli', 'commands', 'good.bundle.js');
    const text = readFileSync(bundle, 'utf8');
    // the lazy module inside the bundle; errors.js and setup.js imported from their files
    expect(text).toContain('lazy = 42');
    expect(text).toContain('from "../../errors.js"');
    expect(text).toContain('from "../setup.js"');
    expect(text).not.toContain('class BrainlatentError');
    expect(JSON.parse(readFileSync(`${bundle}.map`, 'utf8')).file).toBe('good.bundle.js');

    const viaBundle = (await import(pathToFileURL(bundle).href)) as { run: () => Promise<{ where: string; err: unknown; setup: number; lazy: number }> };
    const viaModule = (await import(pathToFileURL(path.join(dist, 'cli', 'commands', 'good.js')).href)) as typeof viaBundle;
    const errors = (await import(pathToFileURL(path.join(dist, 'errors.js')).href)) as { BrainlatentError: new () => Error };
    const [b, m] = [await viaBundle.run(), await viaModule.run()];
    expect(b.where).toBe(pathToFileURL(path.join(dist, 'data.txt')).href);
    expect(b.where).toBe(m.where);
    expect(b.err).toBeInstanceOf(errors.BrainlatentError);
    expect([b.setup, b.lazy]).toEqual([1, 42]);
    // a second run replaces the bundle and leaves no temporaries
    await bundleCommands(dist);
    expect(readFileSync(bundle, 'utf8')).toBe(text);
    expect(readdir(dist).filter((f) => f.includes('tmp'))).toEqual([]);
    expect(readdir(dist).sort()).toEqual(['good.bundle.inputs.json', 'good.bundle.js', 'good.bundle.js.map', 'good.js']);
    // beside it, the dist/ modules it holds and their sizes (main.js's rules), not those it imports from their files
    const inputs = JSON.parse(readFileSync(path.join(dist, 'cli', 'commands', 'good.bundle.inputs.json'), 'utf8')) as Record<string, number>;
    const sizeOf = (f: string) => statSync(path.join(dist, 'cli', 'commands', f)).size;
    expect(inputs).toEqual(Object.fromEntries(['../../lib/lazy.js', '../../lib/where.js', 'good.js'].map((f) => [f, sizeOf(f)])));
  });

  it('leaves unbundled a command whose bundle would load at start-up a package it loads only lazily, and removes its old bundle', async () => {
    const dist = fakeDist({
      ...BASE,
      'cli/commands/lazy.js': "export const run = async () => (await import('../../lib/withPackage.js')).p;\n",
      'cli/commands/eager.js': "import { p } from '../../lib/withPackage.js';\nexport const run = () => p;\n",
      'cli/commands/lazy.bundle.js': '// from an earlier build\n',
    });
    const { bundleCommands } = await bundler();
    const r = await bundleCommands(dist);
    expect(r.bundled.map((f) => path.basename(f))).toEqual(['eager.js']);
    expect(r.unbundled.map((u) => [path.basename(u.entry), u.extra])).toEqual([['lazy.js', ['some-package']]]);
    expect(existsSync(path.join(dist, 'cli', 'commands', 'lazy.bundle.js'))).toBe(false);
    expect(existsSync(path.join(dist, 'cli', 'commands', 'eager.bundle.js'))).toBe(true);
  });

  it('removeCommandBundles (compile-ts runs it before tsc) leaves no bundle or temporary of an earlier build', async () => {
    const dist = fakeDist({ ...BASE, 'cli/commands/a.js': '', 'cli/commands/a.bundle.js': '', 'cli/commands/a.bundle.js.map': '', 'cli/commands/a.bundle-tmp.js': '' });
    const { removeCommandBundles } = (await bundler()) as unknown as { removeCommandBundles: (dist: string) => void };
    removeCommandBundles(dist);
    expect(readdir(dist)).toEqual(['a.js']);
  });

  it('refuses import.meta other than import.meta.url, naming the file', async () => {
    const dist = fakeDist({
      ...BASE,
      'lib/dirname.js': 'export const d = import.meta.dirname;\n',
      'cli/commands/meta.js': "export { d } from '../../lib/dirname.js';\n",
    });
    const { bundleCommands } = await bundler();
    await expect(bundleCommands(dist)).rejects.toThrow(/lib\/dirname\.js: import\.meta other than import\.meta\.url cannot be bundled/);
    expect(readdir(dist).filter((f) => f.includes('bundle'))).toEqual([]);
  });
});

/** The files of a fake dist/'s commands folder. */
function readdir(dist: string): string[] {
  const dir = path.join(dist, 'cli', 'commands');
  return existsSync(dir) ? readdirSync(dir) : [];
}

describe('the CLI from its bundles (dist/)', () => {
  // (bench too, since the packages its lazily imported modules need load on first use: ts/lazyPackages.ts)
  const commands = ['batch', 'bench', 'cache', 'demo', 'encode', 'evaluate', 'nsd', 'reconstruct', 'ridge', 'sd', 'serve', 'synth', 'worker'];
  const hook = pathToFileURL(path.join(import.meta.dirname, '..', 'helpers', 'loadedModules.mjs')).href;
  const registerHook = `data:text/javascript,import{register}from'node:module';register(${JSON.stringify(hook)});`;
  /** `node main.js …args` with the loader hook: its output, and the command modules it loaded (file names). */
  async function run(main: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ stdout: string; commands: string[] }> {
    const list = path.join(mkdtempSync(path.join(tmpdir(), 'bl-bundle-loaded-')), 'loaded.txt');
    dirs.push(path.dirname(list));
    const r = await runCommand(process.execPath, ['--import', registerHook, main, ...args], { env: { ...process.env, ...env, BRAINLATENT_TEST_LOADED: list } });
    expect(r.status, r.stderr).toBe(0);
    const loaded = existsSync(list) ? readFileSync(list, 'utf8').split('\n').filter((u) => u.includes('/cli/commands/')) : [];
    return { stdout: r.stdout, commands: loaded.map((u) => path.basename(new URL(u).pathname)).sort() };
  }

  it('has a bundle for each command, and each prints the same help from its bundle as from its modules', async () => {
    const dir = path.join(packageRoot, 'dist', 'cli', 'commands');
    for (const c of commands) expect(existsSync(path.join(dir, `${c}.bundle.js`)), c).toBe(true);
    const main = path.join(packageRoot, 'dist', 'cli', 'main.js');
    for (const c of commands) {
      const bundled = await run(main, [c, '--help']);
      const modules = await run(main, [c, '--help'], { BRAINLATENT_UNBUNDLED: '1' });
      // (unbundled, demo and encode load reconstruct's module too, worker batch's)
      expect(bundled.commands).toEqual([`${c}.bundle.js`]);
      expect(modules.commands).toContain(`${c}.js`);
      expect(modules.commands.filter((m) => m.includes('.bundle'))).toEqual([]);
      expect(bundled.stdout.length).toBeGreaterThan(100);
      expect(bundled.stdout, c).toBe(modules.stdout);
    }
  });

  it('main.js runs a command from its module where a module the bundle holds changed size, or, in a checkout, is newer than the bundle (a tsc run since); from the bundle otherwise', async () => {
    // dist/cli/main.js and what it imports, beside a stand-in ridge command as a module and as a bundle
    const dist = fakeDist({});
    for (const f of staticImports('cli/main.js')) {
      mkdirSync(path.dirname(path.join(dist, f)), { recursive: true });
      copyFileSync(path.join(packageRoot, 'dist', f), path.join(dist, f));
    }
    symlinkSync(path.join(packageRoot, 'node_modules'), path.join(dist, '..', 'node_modules'));
    const stand = (what: string) => `export function registerRidgeCommand(program) { program.command('ridge').description('${what}'); }\n`;
    const commandsDir = path.join(dist, 'cli', 'commands');
    mkdirSync(commandsDir, { recursive: true });
    writeFileSync(path.join(commandsDir, 'ridge.js'), stand('from the module'));
    writeFileSync(path.join(commandsDir, 'ridge.bundle.js'), stand('from the bundle'));
    const main = path.join(dist, 'cli', 'main.js');
    const at = (file: string, seconds: number) => utimesSync(path.join(commandsDir, file), seconds, seconds);
    // the modules it holds and their sizes, as the build lists them beside it
    mkdirSync(path.join(dist, 'lib'), { recursive: true });
    writeFileSync(path.join(dist, 'lib', 'dep.js'), '');
    const list = () => Object.fromEntries(['../../lib/dep.js', 'ridge.js'].map((f) => [f, statSync(path.join(commandsDir, f)).size]));
    const inputsJson = path.join(commandsDir, 'ridge.bundle.inputs.json');
    // an installed package (no tsconfig.json): npm extracts the bundle before its module, so it is a little older
    at('ridge.js', 1_000_010);
    at('ridge.bundle.js', 1_000_000);
    writeFileSync(inputsJson, JSON.stringify(list()));
    expect((await run(main, ['ridge', '--help'])).stdout).toContain('from the bundle');
    // a checkout: a bundle older than its module is the last build's, and tsc has run since
    writeFileSync(path.join(dist, '..', 'tsconfig.json'), '{}');
    expect((await run(main, ['ridge', '--help'])).stdout).toContain('from the module');
    // ... and no older than any module it holds: tsc --watch and --incremental re-emit only the modules that
    // changed, here one the command imports (the bundle ran before)
    at('ridge.bundle.js', 1_000_010);
    rmSync(inputsJson);
    expect((await run(main, ['ridge', '--help'])).stdout).toContain('from the module'); // (no list: not trusted)
    writeFileSync(inputsJson, JSON.stringify(list()));
    utimesSync(path.join(dist, 'lib', 'dep.js'), 1_000_005, 1_000_005);
    expect((await run(main, ['ridge', '--help'])).stdout).toContain('from the bundle');
    utimesSync(path.join(dist, 'lib', 'dep.js'), 1_000_020, 1_000_020);
    expect((await run(main, ['ridge', '--help'])).stdout).toContain('from the module');
    // a module it held that is gone: the bundle is not this build's
    rmSync(path.join(dist, 'lib', 'dep.js'));
    expect((await run(main, ['ridge', '--help'])).stdout).toContain('from the module');
    // an installed package: file times say nothing, sizes do (a package packed with --ignore-scripts after a bare
    // tsc holds older bundles beside newer modules)
    rmSync(path.join(dist, '..', 'tsconfig.json'));
    writeFileSync(path.join(dist, 'lib', 'dep.js'), '');
    writeFileSync(inputsJson, JSON.stringify(list()));
    utimesSync(path.join(dist, 'lib', 'dep.js'), 1_000_020, 1_000_020);
    expect((await run(main, ['ridge', '--help'])).stdout).toContain('from the bundle');
    writeFileSync(path.join(dist, 'lib', 'dep.js'), 'export const changed = 1;\n');
    expect((await run(main, ['ridge', '--help'])).stdout).toContain('from the module');
    // ... and without the list, the bundle is not trusted either
    rmSync(inputsJson);
    expect((await run(main, ['ridge', '--help'])).stdout).toContain('from the module');
  });
});
