#!/usr/bin/env node
// Compiles ts/ into dist/ (tsconfig.build.json) and makes the package's bin files executable. tsc
// writes new files without the execute bit: after `npm pack` (whose prepack empties dist/) or a
// first build, `npx brainlatent` in a checkout failed with "brainlatent: Permission denied" unless
// npm happened to fix the bin's mode itself. Then bundles the CLI's commands (scripts/bundle-cli.mjs). Used by
// the install, prepack and test scripts and by `npm run build:ts`. Options: --fresh empties dist/ first. Each
// compile stamps dist/ (scripts/build-stamp.mjs), saying whether it compiled into an empty dist/.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { removeCommandBundles } from './bundle-cli.mjs';
import { PARTS, stamped } from './build-stamp.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Compiles the TypeScript; false when tsc failed (it has printed why). Stamps dist/ (scripts/build-stamp.mjs)
 * so that the install script `npx brainlatent` runs in a checkout reuses it.
 */
export function compileTypeScript({ fresh = false } = {}) {
  const dist = path.join(root, 'dist');
  // (into an empty dist/: every file there afterwards is this compile's, which the stamp records for npm pack)
  const intoEmpty = fresh || !existsSync(dist) || readdirSync(dist).length === 0;
  return stamped(PARTS.dist, () => {
    if (fresh) rmSync(dist, { recursive: true, force: true });
    // The command bundles of the last build go first: tsc writes its output even when it fails, and a bundle left
    // beside a newer module would run the old code (main.js also skips a bundle older than its module).
    removeCommandBundles(dist);
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
    if (r.status !== 0) return false;
    // Each CLI command into one file beside its module (scripts/bundle-cli.mjs): the command starts ~40 ms sooner.
    const b = spawnSync(process.execPath, [path.join(root, 'scripts', 'bundle-cli.mjs')], { cwd: root, stdio: 'inherit' });
    if (b.status !== 0) return false;
    markBinsExecutable();
    return true;
  }, root, { fresh: intoEmpty });
}

/** chmod 755 every file that the "bin" of `dir`'s package.json names and that exists; returns those files. */
export function markBinsExecutable(dir = root) {
  const { bin } = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const files = (typeof bin === 'string' ? [bin] : Object.values(bin ?? {})).map((f) => path.join(dir, f)).filter((f) => existsSync(f));
  for (const file of files) chmodSync(file, 0o755);
  return files;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (!compileTypeScript({ fresh: process.argv.includes('--fresh') })) process.exit(1);
}
