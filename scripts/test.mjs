#!/usr/bin/env node
// `npm test`: compile the TypeScript, type-check it with the tests, write the tiny SD fixture models the C++ suite reads, run
// the C++ suite (ctest) and the TypeScript suite (vitest), then print one closing line with the
// combined counts ("tests: N passed, N failed, N skipped"). Each phase prints a line as it starts
// ("npm test: [2/5] typecheck …") and one with its time as it ends, and ctest's output is passed on as it
// comes (it was printed in one block after the whole C++ suite: a minute of silence).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

import { PARTS, staleReason } from './build-stamp.mjs';
import { compileTypeScript } from './compile-ts.mjs';

const run = (cmd, args, opts = {}) => spawnSync(cmd, args, { stdio: 'inherit', ...opts });
const fail = (msg) => {
  console.error(`\nnpm test: ${msg}`);
  process.exit(1);
};

const PHASES = 5;
let phaseNo = 0;
/** Runs one phase between a start line and an end line with its wall time (shown, never tested). */
async function phase(name, what, body) {
  phaseNo += 1;
  console.log(`npm test: [${phaseNo}/${PHASES}] ${name}: ${what}`);
  const t0 = performance.now();
  const result = await body();
  console.log(`npm test: [${phaseNo}/${PHASES}] ${name} done (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  return result;
}

/** Runs a command with its output passed on as it comes, and also collected; resolves with the status and both streams. */
function runStreamed(cmd, args) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => {
      stdout += d;
      process.stdout.write(d);
    });
    child.stderr.setEncoding('utf8').on('data', (d) => {
      stderr += d;
      process.stderr.write(d);
    });
    child.on('error', (e) => resolve({ status: null, stdout, stderr: `${stderr}${e.message}\n` }));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

if (!existsSync('build/Release/brainlatent.node')) fail('the native engine is not built; run `npm install` (or `npm run build`) first');
await phase('compile', 'ts/ into dist/ (when stale)', () => {
  // (the install script has just compiled it in a fresh clone: CI compiled twice, ~27 s on 2 cores)
  const stale = staleReason(PARTS.dist);
  if (!stale) {
    console.log('npm test: dist/ is up to date with ts/ (build/stamp-dist.json)');
    return;
  }
  if (!compileTypeScript()) fail('TypeScript compilation failed');
});
// The typecheck covers test/ too, and the module graph (no import cycles; one native-call layer).
await phase('typecheck', 'tsc over ts/ and test/, and the import rules (npm run typecheck)', () => {
  if (run('npm', ['run', '--silent', 'typecheck']).status !== 0) fail('the typecheck failed (npm run typecheck)');
});
await phase('fixtures', 'the tiny SD models the C++ suite reads, into build/sd-fixtures', () => {
  mkdirSync('build/sd-fixtures', { recursive: true });
  // (its error on stderr: what failed, not only that it did)
  if (run(process.execPath, ['dist/cli/main.js', 'sd', 'fixture', '--variant', 'all', '--out', 'build/sd-fixtures'], { stdio: ['ignore', 'ignore', 'inherit'] }).status !== 0) {
    fail('writing the SD fixture models failed');
  }
});

let passed = 0, failed = 0, skipped = 0;
// Two tests at a time on 2 cores: one at a time used ~1.4 of them (35 s against 27 s with two); at most four, as each
// test's BLAS and engine loops already take every core.
const ctestJobs = String(Math.max(1, Math.min(4, availableParallelism())));
const ctest = await phase('ctest', 'the C++ suite', () => runStreamed('ctest', ['--test-dir', 'build', '--output-on-failure', '-j', ctestJobs]));
const m = /(\d+)% tests passed, (\d+) tests failed out of (\d+)/.exec(ctest.stdout ?? '');
if (!m) fail('ctest printed no summary');
// Tests that exit 77 (a missing runtime or device) are listed by ctest as "(Skipped)": count them
// as skipped, not passed.
const ctestSkipped = (ctest.stdout?.match(/^\s*\d+ - \S+ \(Skipped\)$/gm) ?? []).length;
passed += Number(m[3]) - Number(m[2]) - ctestSkipped;
failed += Number(m[2]);
skipped += ctestSkipped;
if (ctest.status !== 0 && failed === 0) failed += 1;

const vitest = await phase('vitest', 'the TypeScript suite', () =>
  run('npx', ['--no-install', 'vitest', 'run', '--reporter=default', '--reporter=json', '--outputFile.json=build/vitest.json']),
);
if (existsSync('build/vitest.json')) {
  const r = JSON.parse(readFileSync('build/vitest.json', 'utf8'));
  passed += r.numPassedTests;
  failed += r.numFailedTests;
  skipped += r.numPendingTests + (r.numTodoTests ?? 0);
  if (vitest.status !== 0 && r.numFailedTests === 0) failed += 1; // a suite that failed to load
} else {
  failed += 1;
}
console.log(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 ? 1 : 0);
