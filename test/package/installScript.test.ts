/**
 * The install script (scripts/install.mjs) in a checkout rebuilds only what is missing or stale. npm runs it
 * on `npm install` there, and also on the first `npx brainlatent …` there (npx installs the checkout into
 * ~/.npm/_npx/ as a file: dependency), which rebuilt the engine and recompiled ts/ right after setup.
 * The real scripts run in a small checkout in a temporary folder whose build tools (cmake-js, tsc, cmake, c++)
 * are stand-ins that log each call and write the outputs, so the test sees which builds ran without a real one.
 */
import { appendFileSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { packageRoot } from '../../ts/native/binding.js';
import { commandOutput } from '../helpers/nodeChild.js';

const SCRIPTS = ['install.mjs', 'build-native.mjs', 'compile-ts.mjs', 'bundle-cli.mjs', 'build-stamp.mjs'];

function write(file: string, text: string, mode?: number): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text, mode === undefined ? undefined : { mode });
}

/** A checkout with the real build scripts and stand-in tools; returns its folder. */
function makeCheckout(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'bl-install-'));
  for (const s of SCRIPTS) {
    mkdirSync(path.join(dir, 'scripts'), { recursive: true });
    copyFileSync(path.join(packageRoot, 'scripts', s), path.join(dir, 'scripts', s));
  }
  write(path.join(dir, 'package.json'), JSON.stringify({ name: 'fake', version: '0.0.0', main: 'dist/index.js', bin: { fake: 'dist/cli/main.js' }, binary: { napi_versions: [8] } }));
  write(path.join(dir, 'tsconfig.json'), '{}');
  write(path.join(dir, 'tsconfig.build.json'), '{ "extends": "./tsconfig.json" }');
  write(path.join(dir, 'CMakeLists.txt'), 'project(fake)\n');
  write(path.join(dir, 'native', 'core', 'engine.cpp'), 'int engine() { return 1; }\n');
  write(path.join(dir, 'ts', 'index.ts'), 'export const x = 1;\n');
  // The stand-ins run with the checkout as their working folder (as the real ones do) and log to tools.log.
  const nm = path.join(dir, 'node_modules');
  write(path.join(nm, 'cmake-js', 'package.json'), JSON.stringify({ name: 'cmake-js', version: '8.0.0', bin: { 'cmake-js': 'bin/cmake-js' } }));
  write(
    path.join(nm, 'cmake-js', 'bin', 'cmake-js'),
    `const fs = require('fs'); const a = process.argv.slice(2); const t = a.indexOf('--target');
fs.appendFileSync('tools.log', 'cmake-js' + (t >= 0 ? ' --target ' + a[t + 1] : '') + '\\n');
fs.mkdirSync('build/Release', { recursive: true });
fs.writeFileSync('build/Release/brainlatent.node', 'built from ' + fs.readFileSync('native/core/engine.cpp', 'utf8'));\n`,
  );
  write(path.join(nm, 'node-addon-api', 'package.json'), JSON.stringify({ name: 'node-addon-api', version: '8.5.0' }));
  write(path.join(nm, 'typescript', 'package.json'), JSON.stringify({ name: 'typescript', version: '5.9.3' }));
  write(
    path.join(nm, 'typescript', 'bin', 'tsc'),
    `const fs = require('fs'); fs.appendFileSync('tools.log', 'tsc\\n');
fs.mkdirSync('dist/cli', { recursive: true });
fs.writeFileSync('dist/index.js', '// ' + fs.readFileSync('ts/index.ts', 'utf8'));
fs.writeFileSync('dist/cli/main.js', '#!/usr/bin/env node\\n');
fs.writeFileSync('dist/util.js', 'export const u = 1;\\n');\n`,
  );
  write(path.join(dir, 'fakebin', 'cmake'), '#!/bin/sh\nexit 0\n', 0o755);
  // the compilers print the version their .version file holds (none: nothing)
  for (const tool of ['c++', 'clang++']) write(path.join(dir, 'fakebin', tool), `#!/bin/sh\ncat "$0.version" 2>/dev/null\nexit 0\n`, 0o755);
  return dir;
}

/** Runs `node scripts/<script>` in the checkout; returns what it printed and the tools it ran. */
async function run(dir: string, script = 'install.mjs', extraEnv: Record<string, string> = {}): Promise<{ out: string; tools: string[] }> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^npm_/i.test(k) && k !== 'BRAINLATENT_CUDA' && k !== 'BRAINLATENT_BUILD_FROM_SOURCE' && k !== 'CXX') env[k] = v;
  env.PATH = `${path.join(dir, 'fakebin')}${path.delimiter}${process.env.PATH ?? ''}`;
  const log = path.join(dir, 'tools.log');
  const before = existsSync(log) ? readFileSync(log, 'utf8').length : 0;
  const out = await commandOutput(process.execPath, [path.join('scripts', script)], { cwd: dir, env: { ...env, ...extraEnv } });
  const tools = existsSync(log) ? readFileSync(log, 'utf8').slice(before).split('\n').filter(Boolean) : [];
  return { out, tools };
}

const dirs: string[] = [];
const checkout = () => {
  const d = makeCheckout();
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('the install script in a checkout', () => {
  it('builds the engine and dist/ in a fresh checkout, and a second install reuses both without building', async () => {
    const dir = checkout();
    const first = await run(dir);
    expect(first.tools).toEqual(['cmake-js', 'tsc']);
    expect(first.out).toContain('the engine is out of date (build/Release/brainlatent.node is missing)');
    expect(readFileSync(path.join(dir, 'build', 'Release', 'brainlatent.node'), 'utf8')).toBe('built from int engine() { return 1; }\n');

    const second = await run(dir); // what the first `npx brainlatent` after `npm install` runs
    expect(second.tools).toEqual([]);
    expect(second.out.trim()).toBe('brainlatent: reusing the engine (build/Release/brainlatent.node) and dist/, built from the current sources (npm run build rebuilds)');
  });

  it("reuses what `npm run build`'s scripts built", async () => {
    const dir = checkout();
    expect((await run(dir, 'build-native.mjs')).tools).toEqual(['cmake-js']);
    expect((await run(dir, 'compile-ts.mjs')).tools).toEqual(['tsc']);
    expect((await run(dir)).tools).toEqual([]);
  });

  it('rebuilds the engine alone after a native source changed, and compiles alone after a ts/ source changed', async () => {
    const dir = checkout();
    await run(dir);
    appendFileSync(path.join(dir, 'native', 'core', 'engine.cpp'), 'int two() { return 2; }\n');
    const native = await run(dir);
    expect(native.tools).toEqual(['cmake-js']);
    expect(native.out).toContain('the engine is out of date (its sources or build settings changed since the last build)');
    expect(native.out).toContain('reusing dist/');
    expect(readFileSync(path.join(dir, 'build', 'Release', 'brainlatent.node'), 'utf8')).toContain('int two()');

    write(path.join(dir, 'ts', 'cli', 'main.ts'), 'console.log(1);\n'); // a new file counts too
    const ts = await run(dir);
    expect(ts.tools).toEqual(['tsc']);
    expect(ts.out).toContain('reusing the engine');
    expect((await run(dir)).tools).toEqual([]);
  });

  it('rebuilds an output that is missing or was rewritten by something else, and rebuilds after a changed build setting', async () => {
    const dir = checkout();
    await run(dir);
    rmSync(path.join(dir, 'dist', 'cli', 'main.js'));
    expect((await run(dir)).tools).toEqual(['tsc']);
    writeFileSync(path.join(dir, 'build', 'Release', 'brainlatent.node'), 'another build');
    expect((await run(dir)).tools).toEqual(['cmake-js']);
    expect((await run(dir, 'install.mjs', { BRAINLATENT_CUDA: 'OFF' })).tools).toEqual(['cmake-js']); // passed to CMake
    write(path.join(dir, 'node_modules', 'typescript', 'package.json'), JSON.stringify({ name: 'typescript', version: '5.9.4' }));
    expect((await run(dir, 'install.mjs', { BRAINLATENT_CUDA: 'OFF' })).tools).toEqual(['tsc']);
  });

  // (before, neither: the engine's stamp had no compiler in it, and dist/'s only its entry points)
  it("rebuilds the engine after the compiler changed (CXX, or the same compiler's version), configuring CMake afresh", async () => {
    const dir = checkout();
    expect((await run(dir)).tools).toEqual(['cmake-js', 'tsc']);
    write(path.join(dir, 'build', 'CMakeCache.txt'), 'CMAKE_CXX_COMPILER:FILEPATH=/usr/bin/c++\n');
    const clang = await run(dir, 'install.mjs', { CXX: 'clang++' });
    expect(clang.tools).toEqual(['cmake-js']);
    expect(clang.out).toContain('the engine is out of date (its sources or build settings changed since the last build)');
    // CMake reads CXX only when it configures afresh: its cache, which holds the old compiler, is gone
    expect(existsSync(path.join(dir, 'build', 'CMakeCache.txt'))).toBe(false);
    expect((await run(dir, 'install.mjs', { CXX: 'clang++' })).tools).toEqual([]);
    expect((await run(dir)).tools).toEqual(['cmake-js']); // back to the default c++
    write(path.join(dir, 'build', 'CMakeCache.txt'), 'CMAKE_CXX_COMPILER:FILEPATH=/usr/bin/c++\n');
    writeFileSync(path.join(dir, 'fakebin', 'c++.version'), 'c++ (Debian 14.2.0-19) 14.2.0\nCopyright\n'); // an upgrade
    expect((await run(dir)).tools).toEqual(['cmake-js']);
    expect(existsSync(path.join(dir, 'build', 'CMakeCache.txt'))).toBe(false);
    expect(JSON.parse(readFileSync(path.join(dir, 'build', 'stamp-native.json'), 'utf8')).settings.compilers).toEqual({ cc: '', cxx: '', cxxVersion: 'c++ (Debian 14.2.0-19) 14.2.0' });
    expect((await run(dir)).tools).toEqual([]);
  });

  it('recompiles when any file of dist/ is missing or was rewritten, not only its entry points', async () => {
    const dir = checkout();
    await run(dir);
    rmSync(path.join(dir, 'dist', 'util.js'));
    const gone = await run(dir);
    expect(gone.tools).toEqual(['tsc']);
    expect(gone.out).toContain('dist/ is out of date (dist/util.js is missing since the last build); compiling ts/');
    expect((await run(dir)).tools).toEqual([]);
    writeFileSync(path.join(dir, 'dist', 'util.js'), 'export const u = 2; // edited\n');
    const edited = await run(dir);
    expect(edited.tools).toEqual(['tsc']);
    expect(edited.out).toContain('dist/util.js changed since the last build');
  });

  it('in an installed package (no tsconfig.json, no stamp module shipped) still builds from source each time it is asked', async () => {
    const dir = checkout();
    for (const f of ['tsconfig.json', 'scripts/compile-ts.mjs', 'scripts/build-stamp.mjs']) rmSync(path.join(dir, f));
    const env = { npm_config_build_from_source: 'true' };
    expect((await run(dir, 'install.mjs', env)).tools).toEqual(['cmake-js --target brainlatent_addon']);
    expect((await run(dir, 'install.mjs', env)).tools).toEqual(['cmake-js --target brainlatent_addon']);
    expect(existsSync(path.join(dir, 'build', 'stamp-native.json'))).toBe(false);
  });

  it("says why the prebuilt engine does not load before building from source (the loader's own message)", async () => {
    const dir = checkout();
    for (const f of ['tsconfig.json', 'scripts/compile-ts.mjs', 'scripts/build-stamp.mjs']) rmSync(path.join(dir, f));
    // the real node-gyp-build finds the prebuild; the file is no shared object (a stand-in for GLIBCXX_3.4.30 not found)
    const ngb = path.dirname(createRequire(import.meta.url).resolve('node-gyp-build/package.json'));
    cpSync(ngb, path.join(dir, 'node_modules', 'node-gyp-build'), { recursive: true });
    const prebuild = path.join(dir, 'prebuilds', `${process.platform}-${process.arch}`, 'brainlatent.napi.node');
    write(prebuild, 'not an ELF file');
    const r = await run(dir, 'install.mjs');
    expect(r.out).toContain(`no prebuilt engine loads on ${process.platform}-${process.arch}; building from source`);
    expect(r.out).toMatch(new RegExp(`the loader said: ${prebuild.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: (invalid ELF header|file too short)`));
    expect(r.out).not.toContain('    at '); // the message, not a stack
    expect(r.tools).toEqual(['cmake-js --target brainlatent_addon']);
  });

  it('builds from source on BRAINLATENT_BUILD_FROM_SOURCE=1 (npm 11 warns about --build-from-source as an unknown config), refuses other values', async () => {
    const dir = checkout();
    for (const f of ['tsconfig.json', 'scripts/compile-ts.mjs', 'scripts/build-stamp.mjs']) rmSync(path.join(dir, f));
    const asked = await run(dir, 'install.mjs', { BRAINLATENT_BUILD_FROM_SOURCE: '1' });
    expect(asked.tools).toEqual(['cmake-js --target brainlatent_addon']);
    expect(asked.out).toContain('brainlatent: building the engine from source (BRAINLATENT_BUILD_FROM_SOURCE=1)');
    expect((await run(dir, 'install.mjs', { npm_config_build_from_source: 'brainlatent' })).out).toContain('building the engine from source (--build-from-source)');
    // 0 wins over npm's flag; the fallback (no prebuild loads in this fake package) still builds, and says why
    const off = await run(dir, 'install.mjs', { BRAINLATENT_BUILD_FROM_SOURCE: '0', npm_config_build_from_source: 'true' });
    expect(off.out).not.toContain('building the engine from source (');
    expect(off.out).toContain('no prebuilt engine loads');
    await expect(run(dir, 'install.mjs', { BRAINLATENT_BUILD_FROM_SOURCE: 'yes' })).rejects.toThrow(/BRAINLATENT_BUILD_FROM_SOURCE must be 1 .* or 0, got 'yes'/);
  });
});
