/**
 * `npm test` (scripts/test.mjs) says which phase it is in, and passes ctest's output on as it comes: it printed
 * nothing for over a minute, then the whole C++ suite's output in one block (reviewer R2). The real script runs in a
 * small checkout in a temporary folder whose tools (tsc, npm's typecheck script, the CLI, ctest, vitest) are
 * stand-ins. The ctest stand-in prints its first line, then waits until the test has seen that line in the
 * script's output (it creates a file then), so a buffered ctest is caught without measuring any time.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { packageRoot } from '../../ts/native/binding.js';

function write(file: string, text: string, mode?: number): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text, mode === undefined ? undefined : { mode });
}

/** A checkout with the real test, compile and stamp scripts and stand-in tools; returns its folder. */
function makeCheckout(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'bl-npm-test-'));
  for (const s of ['test.mjs', 'compile-ts.mjs', 'bundle-cli.mjs', 'build-stamp.mjs']) {
    mkdirSync(path.join(dir, 'scripts'), { recursive: true });
    copyFileSync(path.join(packageRoot, 'scripts', s), path.join(dir, 'scripts', s));
  }
  write(path.join(dir, 'package.json'), JSON.stringify({ name: 'fake', version: '0.0.0', bin: { fake: 'dist/cli/main.js' }, scripts: { typecheck: 'node -e 0' } }));
  write(path.join(dir, 'tsconfig.json'), '{}');
  write(path.join(dir, 'tsconfig.build.json'), '{ "extends": "./tsconfig.json" }');
  write(path.join(dir, 'ts', 'index.ts'), 'export const x = 1;\n');
  write(path.join(dir, 'build', 'Release', 'brainlatent.node'), '');
  const nm = path.join(dir, 'node_modules');
  write(path.join(nm, 'typescript', 'package.json'), JSON.stringify({ name: 'typescript', version: '5.9.3' }));
  write(
    path.join(nm, 'typescript', 'bin', 'tsc'),
    `const fs = require('fs'); fs.mkdirSync('dist/cli', { recursive: true });
fs.writeFileSync('dist/index.js', '');
fs.writeFileSync('dist/cli/main.js', 'process.exit(0);\\n');
fs.appendFileSync('tsc-runs', 'x');\n`,
  );
  // vitest: one passed test in the JSON report
  write(
    path.join(nm, '.bin', 'vitest'),
    `#!/usr/bin/env node
require('fs').writeFileSync('build/vitest.json', JSON.stringify({ numPassedTests: 1, numFailedTests: 0, numPendingTests: 0 }));
console.log('vitest stand-in ran');\n`,
    0o755,
  );
  write(path.join(nm, 'vitest', 'package.json'), JSON.stringify({ name: 'vitest', version: '3.2.4', bin: { vitest: '../.bin/vitest' } }));
  // ctest: the first line, then (once the test saw it) the rest; without a release in 60 s it says so and fails
  write(
    path.join(dir, 'fakebin', 'ctest'),
    `#!/usr/bin/env node
const fs = require('fs');
process.stdout.write('Test project (stand-in)\\n    Start 1: test_first\\n');
const wait = new Int32Array(new SharedArrayBuffer(4));
let released = false;
for (let i = 0; i < 600 && !released; i++) { released = fs.existsSync('ctest-go'); if (!released) Atomics.wait(wait, 0, 0, 100); }
if (!released) { process.stdout.write('ctest stand-in: nobody saw the first line\\n'); process.exit(1); }
process.stdout.write('1/1 Test #1: test_first .......   Passed    0.01 sec\\n\\n100% tests passed, 0 tests failed out of 1\\n');\n`,
    0o755,
  );
  return dir;
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('npm test (scripts/test.mjs)', () => {
  it("prints a line per phase, and ctest's lines as ctest prints them", async () => {
    const dir = makeCheckout();
    dirs.push(dir);
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^npm_/i.test(k)) env[k] = v;
    env.PATH = `${path.join(dir, 'fakebin')}${path.delimiter}${process.env.PATH ?? ''}`;
    const child = spawn(process.execPath, [path.join('scripts', 'test.mjs')], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let sawFirstLineWhileRunning = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (!sawFirstLineWhileRunning && out.includes('Start 1: test_first') && !out.includes('tests passed')) {
        sawFirstLineWhileRunning = true;
        writeFileSync(path.join(dir, 'ctest-go'), '');
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(out).not.toContain('nobody saw the first line');
    expect(sawFirstLineWhileRunning).toBe(true);
    expect(status).toBe(0);
    const starts = [...out.matchAll(/^npm test: \[(\d)\/5\] (\w+): /gm)].map((m) => `${m[1]} ${m[2]}`);
    expect(starts).toEqual(['1 compile', '2 typecheck', '3 fixtures', '4 ctest', '5 vitest']);
    expect([...out.matchAll(/^npm test: \[\d\/5\] (\w+) done \(/gm)].map((m) => m[1])).toEqual(['compile', 'typecheck', 'fixtures', 'ctest', 'vitest']);
    // ctest's lines come between its phase's start and end lines
    const ctestStart = out.indexOf('[4/5] ctest:');
    expect(out.indexOf('Start 1: test_first')).toBeGreaterThan(ctestStart);
    expect(out.indexOf('100% tests passed')).toBeLessThan(out.indexOf('[4/5] ctest done'));
    expect(out).toContain('vitest stand-in ran');
    expect(out.trimEnd().split('\n').at(-1)).toBe('tests: 2 passed, 0 failed, 0 skipped');
  }, 120_000);

  it('compiles ts/ only when dist/ is stale: once after a clone, not again until a source changes', async () => {
    const dir = makeCheckout();
    dirs.push(dir);
    writeFileSync(path.join(dir, 'ctest-go'), ''); // (the stand-in ctest goes on at once)
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^npm_/i.test(k)) env[k] = v;
    env.PATH = `${path.join(dir, 'fakebin')}${path.delimiter}${process.env.PATH ?? ''}`;
    const npmTest = async () => {
      const child = spawn(process.execPath, [path.join('scripts', 'test.mjs')], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
      const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(status, out).toBe(0);
      return { out, tscRuns: readFileSync(path.join(dir, 'tsc-runs'), 'utf8').length };
    };
    expect((await npmTest()).tscRuns).toBe(1);
    const again = await npmTest();
    expect(again.tscRuns).toBe(1);
    expect(again.out).toContain('npm test: dist/ is up to date with ts/ (build/stamp-dist.json)');
    write(path.join(dir, 'ts', 'index.ts'), 'export const x = 2;\n');
    expect((await npmTest()).tscRuns).toBe(2);
  }, 120_000);
});
