#!/usr/bin/env node
// `npm pack` / `npm publish` run this (the `prepack` script), and it says what it writes:
//   1. dist/: the TypeScript compiled afresh (the folder is emptied first, so no file whose source is
//      gone ships), unless dist/ is already that: compiled into an empty folder from ts/ as it is, nothing
//      changed or added since (its stamp, scripts/build-stamp.mjs isFreshBuild);
//   2. prebuilds/linux-x64/ (on Linux x64 with glibc): the engine linked against Debian's static
//      OpenBLAS (CMake target brainlatent_prebuilt, built in its own folder, build-prebuilt/, so that the
//      checkout's build/ keeps its options: its test hooks, its CUDA setting), stripped, named for node-gyp-build
//      (brainlatent.napi.glibc.node), with onnxruntime-node's libonnxruntime.so.1 beside it and the
//      licences of what the binary contains. The binary is checked: it must load in a fresh process,
//      report OpenBLAS, need no shared BLAS, LAPACK, Fortran or C++ runtime, no glibc symbol version above 2.34
//      (scripts/elf-needs.mjs), and have no test hooks (built with BRAINLATENT_TEST_HOOKS=OFF: no environment
//      variable of the tests is read).
// Neither folder is committed (.gitignore); `postpack` removes prebuilds/ again. build-prebuilt/ (git-ignored, not
// shipped) is kept: the next pack rebuilds only what changed.
// `node scripts/prepack.mjs --prebuild-only` does step 2 alone, `--dist-only` step 1.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { buildNative } from './build-native.mjs';
import { PARTS, isFreshBuild } from './build-stamp.mjs';
import { compileTypeScript } from './compile-ts.mjs';
import { VERSION_CEILINGS, parseVersionNeeds, tooNewVersions } from './elf-needs.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const MB = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MB`;
/** The prebuilt's build folder: never build/, whose options (test hooks ON) ctest and vitest rely on. */
export const PREBUILT_OUT = 'build-prebuilt';
/**
 * The licence files written beside the binaries in prebuilds/linux-x64/, by what they cover (THIRD-PARTY-NOTICES.md
 * points to each: test/package/package.test.ts).
 */
export const PREBUILT_NOTICES = { openblas: 'OPENBLAS-COPYRIGHT.txt', onnxruntime: 'ONNXRUNTIME-LICENSE.txt' };

function fail(message) {
  console.error(`\nprepack: ${message}\n`);
  process.exit(1);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', ...opts });
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} failed:\n${r.stdout ?? ''}${r.stderr ?? ''}`);
  return r.stdout ?? '';
}

function compileFreshDist() {
  // (a dist/ that a compile into an empty folder made of ts/ as it is, untouched since, is what this would write:
  // a fresh clone's install compiled it, as in CI)
  if (isFreshBuild(PARTS.dist)) {
    console.log(`prepack: dist/ is the compile of ts/ as it is into an empty dist/, unchanged since (${PARTS.dist.stamp}): not compiled again`);
    return;
  }
  if (!compileTypeScript({ fresh: true })) fail('tsc -p tsconfig.build.json failed');
  console.log('prepack: compiled ts/ into a fresh dist/');
}

function isGlibc() {
  return Boolean(process.report?.getReport?.().header?.glibcVersionRuntime);
}

function prebuild() {
  if (process.platform !== 'linux' || process.arch !== 'x64' || !isGlibc()) {
    console.log(`prepack: no prebuilt engine for ${process.platform}-${process.arch} (only linux-x64 with glibc is prebuilt); the package will build from source`);
    return;
  }
  // The shipped engine is CPU-only (no CUDA runtime on a user's machine is assumed); a machine with
  // the CUDA toolkit would otherwise configure the CUDA backend into the core the prebuilt links.
  // (Only build-prebuilt/'s cache says OFF: build/ keeps its own setting.)
  process.env.BRAINLATENT_CUDA = 'OFF';
  buildNative({ target: 'brainlatent_prebuilt', testHooks: false, out: PREBUILT_OUT });
  const built = path.join(root, PREBUILT_OUT, 'prebuilt', 'brainlatent.node');
  if (!existsSync(built)) fail(`${built} was not built (is libopenblas-pthread-dev installed? the CMake log says)`);

  const dir = path.join(root, 'prebuilds', 'linux-x64');
  rmSync(path.join(root, 'prebuilds'), { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const out = path.join(dir, 'brainlatent.napi.glibc.node');
  run('strip', ['--strip-unneeded', '-o', `${out}.tmp`, built]);
  renameSync(`${out}.tmp`, out);

  // What the binary may need from the system: glibc and libgcc_s, nothing else.
  const needed = [...run('readelf', ['-d', out], { env: { ...process.env, LC_ALL: 'C' } }).matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
  // (libstdc++ is linked in statically: the build machine's needs GLIBCXX_3.4.30, which RHEL 9's lacks)
  const allowed = /^(libc|libm|libgcc_s|ld-linux-x86-64|libpthread|libdl)\.so/;
  const extra = needed.filter((n) => !allowed.test(n));
  if (extra.length) fail(`${out} needs ${extra.join(', ')}; the prebuilt engine must need only glibc and libgcc_s (the C++ runtime linked in)`);
  checkSymbolVersions(out);

  // onnxruntime-node's library, which the engine loads at run time when onnxruntime-node is not installed.
  const ortPkg = path.dirname(require.resolve('onnxruntime-node/package.json'));
  const ortVersion = JSON.parse(readFileSync(path.join(ortPkg, 'package.json'), 'utf8')).version;
  copyFileSync(path.join(ortPkg, 'bin', 'napi-v6', 'linux', 'x64', 'libonnxruntime.so.1'), path.join(dir, 'libonnxruntime.so.1'));
  checkSymbolVersions(path.join(dir, 'libonnxruntime.so.1')); // (1.30.0: GLIBC_2.28, GLIBCXX_3.4.22 at most)

  const openblasCopyright = ['/usr/share/doc/libopenblas-pthread-dev/copyright', '/usr/share/doc/libopenblas0-pthread/copyright'].find(existsSync);
  if (!openblasCopyright) fail('the OpenBLAS copyright file (/usr/share/doc/libopenblas-pthread-dev/copyright) is missing');
  copyFileSync(openblasCopyright, path.join(dir, PREBUILT_NOTICES.openblas));
  copyFileSync(path.join(root, 'native', 'third_party', 'onnxruntime', 'LICENSE'), path.join(dir, PREBUILT_NOTICES.onnxruntime));
  const blas = spawnSync(process.execPath, ['-e', `console.log(require(${JSON.stringify(out)}).buildInfo().blas)`], { encoding: 'utf8' });
  if (blas.status !== 0 || !/^OpenBLAS/.test(blas.stdout)) fail(`${out} does not load or does not report OpenBLAS:\n${blas.stdout}${blas.stderr}`);
  checkNoTestHooks(out);
  writeFileSync(
    path.join(dir, 'README.md'),
    [
      '# Prebuilt engine for Linux x64 (glibc)',
      '',
      '- `brainlatent.napi.glibc.node`: the brainlatent engine and its Node-API addon (Node-API 8), with',
      `  ${blas.stdout.trim()} linked in statically from Debian's \`libopenblas-pthread-dev\``,
      `  (BLAS and LAPACK, BSD-3-Clause: \`${PREBUILT_NOTICES.openblas}\`), and GCC's C++ runtime (libstdc++, GPL-3.0 with`,
      '  the GCC Runtime Library Exception). It needs only glibc >= 2.34 and libgcc_s',
      `  (${needed.join(', ')}).`,
      `- \`libonnxruntime.so.1\`: ONNX Runtime ${ortVersion}, copied unchanged from the npm package onnxruntime-node`,
      `  ${ortVersion} (MIT: \`${PREBUILT_NOTICES.onnxruntime}\`); the engine loads it at run time when onnxruntime-node`,
      '  itself is not installed.',
      '',
      'Built by `npm pack` (scripts/prepack.mjs); a source build in `build/Release/` takes precedence. The package\'s',
      '`THIRD-PARTY-NOTICES.md` lists everything of others that it carries.',
      '',
    ].join('\n'),
  );
  console.log(`prepack: prebuilt engine ${path.relative(root, out)} (${MB(statSync(out).size)}, ${blas.stdout.trim()}) + libonnxruntime.so.1 ${ortVersion}`);
}

/**
 * The shipped engine must load where README says it does (glibc >= 2.34 with GCC 11's runtimes): no symbol version
 * above scripts/elf-needs.mjs's ceilings. The build machine (Debian 12: glibc 2.36, GCC 12) loads a binary that
 * needs GLIBCXX_3.4.30 or GLIBC_2.36 without complaint; RHEL 9 does not.
 */
function checkSymbolVersions(binary) {
  // (readelf's words are parsed: in the C locale, whatever the packer's)
  const needs = parseVersionNeeds(run('readelf', ['--version-info', '--wide', binary], { env: { ...process.env, LC_ALL: 'C' } }));
  if (!needs.some((n) => n.file.startsWith('libc.so'))) fail(`readelf --version-info ${binary} listed no glibc symbol versions: cannot check them`);
  const tooNew = tooNewVersions(needs);
  if (tooNew.length) {
    const limits = Object.entries(VERSION_CEILINGS).map(([k, v]) => `${k}_${v}`).join(', ');
    fail(`${binary} needs symbol versions newer than README promises (at most ${limits}): ${tooNew.join(', ')}. ` +
      'Link the runtime that provides them statically (CMakeLists.txt, brainlatent_prebuilt) or build on an older system; ' +
      '`objdump -T` names the symbols.');
  }
}

/**
 * The shipped engine must not have the engine's test hooks (BRAINLATENT_TEST_HOOKS: environment variables that flip
 * links and truncate files around a model's load): its buildInfo() says so, and none of their names is in the file.
 */
function checkNoTestHooks(binary) {
  const r = spawnSync(process.execPath, ['-e', `console.log(require(${JSON.stringify(binary)}).buildInfo().testHooks)`], { encoding: 'utf8' });
  if (r.status !== 0 || r.stdout.trim() !== 'false') fail(`${binary} was built with the engine's test hooks (buildInfo().testHooks: ${r.stdout.trim()}${r.stderr})`);
  const names = readFileSync(binary).toString('latin1').match(/BRAINLATENT_TEST_[A-Z_]+/g);
  if (names) fail(`${binary} names the engine's test hooks (${[...new Set(names)].join(', ')}): it must be built with BRAINLATENT_TEST_HOOKS=OFF`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (!process.argv.includes('--prebuild-only')) compileFreshDist();
  if (!process.argv.includes('--dist-only')) prebuild();
}
