#!/usr/bin/env node
// Builds the native engine and addon from source with cmake-js (CMakeLists.txt). Checks the toolchain
// first so that a missing piece stops with one clear message.
//   node scripts/build-native.mjs                      in a checkout: the addon and the ctest suite
//   node scripts/build-native.mjs --target <name>      one CMake target (brainlatent_addon, brainlatent_prebuilt)
// In an installed package (no tsconfig.json) only the addon is built: the tests do not ship, and neither do the
// engine's test hooks (BRAINLATENT_TEST_HOOKS, on in a checkout's build only: testHooksFor).
// cmake-js and node-addon-api are found through Node's module resolution, so the build works wherever
// the package manager put them (npm's hoisted layout, nested, pnpm's store). They are optional
// dependencies (only a source build needs them): after `npm install --omit=optional` the build stops
// first, with the install command at package.json's pins. package.json's
// "binary": {"napi_versions": [8]} makes cmake-js build against node-api-headers, with no download of
// Node's headers.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

function has(cmd, args = ['--version']) {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

function fail(message) {
  console.error(`\nbrainlatent: cannot build the native engine from source.\n${message}\n`);
  process.exit(1);
}

/** The source build's own npm packages (optional dependencies); stops with the install command when one is missing. */
const BUILD_PACKAGES = ['cmake-js', 'node-addon-api'];
function requireBuildPackages() {
  const missing = BUILD_PACKAGES.filter((p) => {
    try {
      require.resolve(`${p}/package.json`, { paths: [root] });
      return false;
    } catch {
      return true;
    }
  });
  if (!missing.length) return;
  const pins = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).optionalDependencies ?? {};
  fail(
    `${missing.join(' and ')}, which the source build needs, ${missing.length === 1 ? 'is' : 'are'} not installed ` +
      `(optional dependencies of brainlatent, left out by --omit=optional): npm install ${missing.map((p) => `${p}@${pins[p]}`).join(' ')}, then build again (npm rebuild brainlatent)`,
  );
}

/** The path of an installed package's bin script, found the way `import` would find the package. */
function packageBin(pkg, name) {
  const manifestPath = require.resolve(`${pkg}/package.json`, { paths: [root] });
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
  const bin = typeof manifest.bin === 'string' ? manifest.bin : manifest.bin?.[name];
  if (!bin) fail(`${manifestPath} declares no '${name}' executable.`);
  return path.join(path.dirname(manifestPath), bin);
}

/**
 * Whether a build has the engine's test hooks (native/core/CMakeLists.txt, BRAINLATENT_TEST_HOOKS: environment
 * variables read around a model's load that flip a link or truncate a file): a checkout's build serves its tests
 * (ctest, vitest); an installed package's source build and the prebuilt flavour that ships never have them.
 */
export function testHooksFor({ checkout, target }) {
  return checkout && target !== 'brainlatent_prebuilt';
}

/**
 * cmake-js passes --CD options only when it configures a fresh build folder; a configured one keeps its cache. An
 * option that must hold for this build (cmakeOptionsFor: the test hooks, never in the prebuilt; the CUDA switch) is
 * set in the cache first.
 */
function setCachedOption(out, name, value) {
  const cache = path.join(root, out, 'CMakeCache.txt');
  if (!existsSync(cache)) return;
  const was = new RegExp(`^${name}:[A-Z]+=(.*)$`, 'm').exec(readFileSync(cache, 'utf8'))?.[1];
  if (was === value) return;
  const r = spawnSync('cmake', [`-D${name}=${value}`, path.join(root, out)], { stdio: 'inherit', cwd: root });
  if (r.status !== 0) fail(`cmake -D${name}=${value} ${out} failed; the messages above say why.`);
}

/**
 * The CMake options a build must hold, each passed to a fresh build folder and set in a configured one's cache
 * (setCachedOption): the test hooks, and BRAINLATENT_CUDA when the environment names it — once passed only as
 * --CD, a build folder configured without CUDA stayed CPU-only when rebuilt with BRAINLATENT_CUDA=ON.
 */
export function cmakeOptionsFor({ env, testHooks }) {
  const options = [['BRAINLATENT_TEST_HOOKS', testHooks ? 'ON' : 'OFF']];
  if (env.BRAINLATENT_CUDA) options.unshift(['BRAINLATENT_CUDA', env.BRAINLATENT_CUDA]);
  return options;
}

/**
 * Builds `target` (all of a checkout's targets when none) in the build folder `out`, relative to the package root:
 * build/ unless told otherwise (npm pack's prebuilt has its own, PREBUILT_OUT, so that packing never changes the
 * options, such as the test hooks, of the checkout's build/ that ctest and vitest use).
 */
export function buildNative({ target, testHooks, out = 'build' } = {}) {
  if (!has('cmake')) fail('CMake (>= 3.18) is missing. Debian/Ubuntu: sudo apt-get install cmake');
  if (!has(process.env.CXX ?? 'c++')) fail('A C++17 compiler is missing. Debian/Ubuntu: sudo apt-get install g++');

  requireBuildPackages();
  const checkout = existsSync(path.join(root, 'tsconfig.json')); // the package ships no tsconfig.json
  const chosen = target ?? (checkout ? undefined : 'brainlatent_addon');
  const parallel = String(Math.max(1, os.availableParallelism?.() ?? os.cpus().length));
  const args = [packageBin('cmake-js', 'cmake-js'), 'compile', '--out', out, '-p', parallel];
  if (chosen) args.push('--target', chosen);
  const hooks = testHooks ?? testHooksFor({ checkout, target: chosen });
  for (const [name, value] of cmakeOptionsFor({ env: process.env, testHooks: hooks })) {
    args.push(`--CD${name}=${value}`);
    setCachedOption(out, name, value);
  }
  console.log(`brainlatent: building the native engine from source${chosen ? ` (target ${chosen})` : ''}${out === 'build' ? '' : ` in ${out}/`}`);
  const r = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: root });
  if (r.status !== 0) fail('The CMake build failed; the messages above say why.');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--target');
  const target = i > 0 ? process.argv[i + 1] : undefined;
  if (!target && existsSync(path.join(root, 'tsconfig.json'))) {
    // The checkout's full build (`npm run build`): stamped, so that the install script that
    // `npx brainlatent` runs reuses it (scripts/build-stamp.mjs, which the package does not ship).
    const { PARTS, stamped } = await import('./build-stamp.mjs');
    stamped(PARTS.native, () => buildNative());
  } else buildNative({ target });
}
