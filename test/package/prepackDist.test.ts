/**
 * `npm pack` compiles ts/ into an emptied dist/ (scripts/prepack.mjs), so that no module whose source is gone
 * ships; in CI that was a second compile of the same sources (~27 s on 2 cores) right after the fresh clone's install
 * had compiled them into an empty dist/. Now prepack keeps a dist/ that is exactly such a compile of ts/ as it is:
 * stamped as compiled into an empty folder, every file as written, none added. The real scripts run in a small
 * checkout whose tsc is a stand-in that counts its runs.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { packageRoot } from '../../ts/native/binding.js';
import { commandOutput } from '../helpers/nodeChild.js';

function write(file: string, text: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
}

/** A checkout with the real prepack, compile and stamp scripts and a stand-in tsc; returns its folder. */
function makeCheckout(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'bl-prepack-dist-'));
  for (const s of ['prepack.mjs', 'build-native.mjs', 'elf-needs.mjs', 'compile-ts.mjs', 'bundle-cli.mjs', 'build-stamp.mjs'])
    write(path.join(dir, 'scripts', s), readFileSync(path.join(packageRoot, 'scripts', s), 'utf8'));
  write(path.join(dir, 'package.json'), JSON.stringify({ name: 'fake', version: '0.0.0', main: 'dist/index.js', bin: { fake: 'dist/cli/main.js' } }));
  write(path.join(dir, 'tsconfig.json'), '{}');
  write(path.join(dir, 'tsconfig.build.json'), '{ "extends": "./tsconfig.json" }');
  write(path.join(dir, 'ts', 'index.ts'), 'export const x = 1;\n');
  const nm = path.join(dir, 'node_modules');
  write(path.join(nm, 'typescript', 'package.json'), JSON.stringify({ name: 'typescript', version: '5.9.3' }));
  write(
    path.join(nm, 'typescript', 'bin', 'tsc'),
    `const fs = require('fs'); fs.mkdirSync('dist/cli', { recursive: true });
fs.writeFileSync('dist/index.js', fs.readFileSync('ts/index.ts'));
fs.writeFileSync('dist/cli/main.js', 'process.exit(0);\\n');
fs.appendFileSync('tsc-runs', 'x');\n`,
  );
  return dir;
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const node = (dir: string, ...args: string[]) => commandOutput(process.execPath, args, { cwd: dir });

describe("npm pack's dist/ (scripts/prepack.mjs)", () => {
  it('keeps a dist/ compiled into an empty folder from ts/ as it is; compiles afresh after anything else', async () => {
    const dir = makeCheckout();
    dirs.push(dir);
    const tscRuns = () => (existsSync(path.join(dir, 'tsc-runs')) ? readFileSync(path.join(dir, 'tsc-runs'), 'utf8').length : 0);
    const pack = () => node(dir, path.join('scripts', 'prepack.mjs'), '--dist-only');
    const kept = "prepack: dist/ is the compile of ts/ as it is into an empty dist/, unchanged since (build/stamp-dist.json): not compiled again";

    // a clone: no dist/ yet; the install's compile goes into an empty folder, and pack keeps it
    await node(dir, path.join('scripts', 'compile-ts.mjs'));
    expect(tscRuns()).toBe(1);
    expect(JSON.parse(readFileSync(path.join(dir, 'build', 'stamp-dist.json'), 'utf8')).fresh).toBe(true);
    expect(await pack()).toContain(kept);
    expect(tscRuns()).toBe(1);

    // a file in dist/ that no compile wrote (a module whose source was deleted, or anything else): compiled afresh,
    // and the file is gone
    write(path.join(dir, 'dist', 'gone.js'), 'old\n');
    expect(await pack()).toContain('prepack: compiled ts/ into a fresh dist/');
    expect(tscRuns()).toBe(2);
    expect(existsSync(path.join(dir, 'dist', 'gone.js'))).toBe(false);
    expect(await pack()).toContain(kept); // (that compile was into an emptied dist/)
    expect(tscRuns()).toBe(2);

    // a module rewritten since the compile
    const later = new Date(Date.now() + 60_000);
    utimesSync(path.join(dir, 'dist', 'index.js'), later, later);
    expect(await pack()).toContain('prepack: compiled ts/ into a fresh dist/');
    expect(tscRuns()).toBe(3);

    // a source edited: dist/ is stale
    write(path.join(dir, 'ts', 'index.ts'), 'export const x = 2;\n');
    expect(await pack()).toContain('prepack: compiled ts/ into a fresh dist/');
    expect(readFileSync(path.join(dir, 'dist', 'index.js'), 'utf8')).toBe('export const x = 2;\n');
    expect(tscRuns()).toBe(4);

    // a compile over an existing dist/ (npm test's, `npm run build:ts`) may leave files of deleted sources: not kept
    write(path.join(dir, 'ts', 'index.ts'), 'export const x = 3;\n');
    await node(dir, path.join('scripts', 'compile-ts.mjs'));
    expect(JSON.parse(readFileSync(path.join(dir, 'build', 'stamp-dist.json'), 'utf8')).fresh).toBe(false);
    expect(tscRuns()).toBe(5);
    expect(await pack()).toContain('prepack: compiled ts/ into a fresh dist/');
    expect(tscRuns()).toBe(6);
  }, 120_000);
});
