#!/usr/bin/env node
// The package's `install` script. Nothing here is needed for the prebuilt engine to work: the package loads
// prebuilds/<platform>-<arch>/ by itself (ts/native/binding.ts), so a package manager that skips the script
// (pnpm 10, `--ignore-scripts`, npm 11 after `npm install-scripts deny brainlatent`) loses nothing. npm 11 still
// runs a dependency's install script that allowScripts does not cover, with a warning listing it (an error only
// under --strict-allow-scripts).
// When the script runs, it
//   - builds from source in a checkout (a folder with tsconfig.json, which the package does not ship), then compiles the
//     TypeScript into dist/: the developer's build. Each part is rebuilt only when missing or stale
//     (scripts/build-stamp.mjs), so the install that the first `npx brainlatent` in a checkout runs
//     reuses what `npm install` or `npm run build` built;
//   - builds from source when asked: BRAINLATENT_BUILD_FROM_SOURCE=1, or npm's `--build-from-source` (or
//     =brainlatent), which npm 11 passes on but warns about as an unknown CLI config;
//   - otherwise keeps the prebuilt engine if it loads here, and builds from source if it does not
//     (another platform, an older glibc).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { buildNative } from './build-native.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Why a source build was asked for, or undefined: BRAINLATENT_BUILD_FROM_SOURCE=1 (what the README gives: npm 11
 * warns that --build-from-source is an unknown CLI config, to stop working in its next major), or npm's
 * --build-from-source (npm_config_build_from_source: true, or a list naming brainlatent).
 */
function buildFromSourceRequested() {
  const own = process.env.BRAINLATENT_BUILD_FROM_SOURCE;
  if (own !== undefined && own !== '') {
    if (own === '1' || own === 'true') return 'BRAINLATENT_BUILD_FROM_SOURCE=1';
    if (own !== '0' && own !== 'false') {
      console.error(`brainlatent: BRAINLATENT_BUILD_FROM_SOURCE must be 1 (build the engine from source) or 0, got '${own}'`);
      process.exit(1);
    }
    return undefined;
  }
  const v = process.env.npm_config_build_from_source;
  if (!v || v === 'false') return undefined;
  return v === 'true' || v.split(',').map((s) => s.trim()).includes('brainlatent') ? '--build-from-source' : undefined;
}

/**
 * Loads the prebuild in a child process, so a binary that crashes on load cannot take this script down: { file } when
 * it loads, else { error }, the loader's message (e.g. "version `GLIBCXX_3.4.30' not found"), for the admin who is
 * otherwise only told to install CMake.
 */
function prebuildLoads() {
  const probe =
    `try { const p = require('node-gyp-build').resolve(${JSON.stringify(root)}); require(p).buildInfo(); console.log(p); }` +
    ' catch (e) { process.stderr.write(String(e && e.message || e)); process.exit(1); }';
  const r = spawnSync(process.execPath, ['-e', probe], { cwd: root, encoding: 'utf8', env: { ...process.env, PREBUILDS_ONLY: '1' } });
  if (r.status === 0) return { file: r.stdout.trim() };
  const said = (r.stderr ?? '').trim().split('\n').filter(Boolean).slice(0, 3).join('\n    ');
  return { error: said || (r.signal ? `the loading process was killed by ${r.signal}` : `the loading process exited with status ${r.status}`) };
}

const sourceBuildReason = buildFromSourceRequested();

if (existsSync(path.join(root, 'tsconfig.json'))) {
  // The checkout (`npm install` / `npm ci` there, and the first `npx brainlatent` there, which installs
  // the checkout into ~/.npm/_npx/): the engine from source, then the TypeScript, each only when its
  // build stamp says it is missing or stale. (Imported here: the package ships install.mjs and
  // build-native.mjs only.)
  const { PARTS, staleReason, stamped } = await import('./build-stamp.mjs');
  const { compileTypeScript, markBinsExecutable } = await import('./compile-ts.mjs');
  const nativeStale = staleReason(PARTS.native);
  const distStale = staleReason(PARTS.dist);
  if (nativeStale) {
    console.log(`brainlatent: the engine is out of date (${nativeStale})`);
    stamped(PARTS.native, () => buildNative());
  }
  if (distStale) {
    console.log(`brainlatent: dist/ is out of date (${distStale}); compiling ts/`);
    if (!compileTypeScript()) process.exit(1);
  } else markBinsExecutable();
  const reused = [!nativeStale && `the engine (${PARTS.native.outputs(root)[0]})`, !distStale && 'dist/'].filter(Boolean);
  if (reused.length) console.log(`brainlatent: reusing ${reused.join(' and ')}, built from the current sources (npm run build rebuilds)`);
} else if (sourceBuildReason) {
  console.log(`brainlatent: building the engine from source (${sourceBuildReason}): a few minutes`);
  buildNative();
} else {
  const prebuilt = prebuildLoads();
  if (prebuilt.file) console.log(`brainlatent: using the prebuilt engine ${path.relative(root, prebuilt.file)}`);
  else {
    console.log(`brainlatent: no prebuilt engine loads on ${process.platform}-${process.arch}; building from source`);
    console.log(`  the loader said: ${prebuilt.error}`);
    buildNative();
  }
}
