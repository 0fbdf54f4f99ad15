#!/usr/bin/env node
// Installs the packed package into a fresh consumer project, as a user would, and checks it works there.
//   node scripts/consumer-check.mjs [--pack-dir DIR] [--tarball FILE] [--build-from-source]
//                                   [--compare RESULTS.json] [--results OUT.json] [--npm-ci] [--pnpm VERSION] [--slim] [--keep]
//   node scripts/consumer-check.mjs --pack-only [--pack-dir DIR]
//   node scripts/consumer-check.mjs --compare-results REFERENCE.json RESULTS.json...
// - Packs the checkout (`npm pack`: prepack compiles dist/ and the prebuilt engine) unless --tarball.
// - Creates a project in a temporary folder, with a clean npm user config (no nodedir, nothing of this
//   machine's) and no npm_* variables from the caller, and installs the tarball with npm's default
//   (hoisted) layout. Without --build-from-source the install runs with no C/C++ compiler, CMake, make
//   or ninja on PATH, so the package must work from its prebuilt engine (npm 11 runs the install script,
//   not covered by allowScripts, with a warning: it finds the prebuild loads and keeps it). With
//   --build-from-source the project approves brainlatent's install script (allowScripts) and installs with
//   BRAINLATENT_BUILD_FROM_SOURCE=1 (npm's --build-from-source draws npm 11's 'Unknown cli config' warning),
//   which compiles the engine.
// - Runs test/package/consumer.mjs there (RidgeCV fit/predict against a float64 solve, cancelling a fit,
//   img2img on a generated fixture model, a tiny reconstruction), `npx brainlatent --help`, and
//   `tsc --noEmit --strict` (no skipLibCheck) on test/package/consumer.ts.
// - --compare checks the img2img latents and chosen alphas against another run's results (a prebuilt
//   engine against a source build); --compare-results does the same afterwards for checks that ran at once (CI),
//   each results file against the first; --pack-only packs and stops (CI packs once for all its checks); --npm-ci
//   reinstalls from the consumer's lockfile with `npm ci`; --pnpm VERSION installs with that pnpm (fetched with npm
//   into the temporary folder) instead of npm.
// - --slim installs with --omit=optional (no service, Redis queue, chart or source-build packages) and runs
//   test/package/slimConsumer.mjs instead (a ridge fit; the Redis batch layer and the report charts throw
//   MissingDependencyError with the pinned install command; the smallest `brainlatent demo` and an `encode` on
//   its world finish and write their reports with a note and the install line in place of each chart and of the
//   viewer), `npx brainlatent --help`, checks that `brainlatent serve` and `brainlatent batch status --redis`
//   exit 1 with that one line, and compiles consumer.ts as above (no skipLibCheck: the typings name no optional
//   package).
// Prints the install time, and the packages and size of the consumer's node_modules.
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const value = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const fromSource = flag('--build-from-source');
const pnpm = value('--pnpm');
if (pnpm && fromSource) {
  console.error('consumer check: --pnpm checks the prebuilt engine; it does not go with --build-from-source');
  process.exit(2);
}
const slim = flag('--slim');
if (slim && (fromSource || pnpm)) {
  console.error('consumer check: --slim checks an npm install of the prebuilt engine; it does not go with --build-from-source or --pnpm');
  process.exit(2);
}
const compareAt = args.indexOf('--compare-results');
const packOnly = flag('--pack-only');
if (packOnly && value('--tarball')) {
  console.error('consumer check: --pack-only packs the checkout; it does not go with --tarball');
  process.exit(2);
}
const label = compareAt >= 0 ? 'results compared' : packOnly ? 'pack' : fromSource ? 'source build' : pnpm ? `prebuilt, pnpm ${pnpm}` : slim ? 'prebuilt, --omit=optional' : 'prebuilt';

function fail(message) {
  console.error(`\nconsumer check (${label}): FAILED: ${message}\n`);
  process.exit(1);
}

/** Fails unless `results` (a consumer script's results) match `ref`'s: the img2img latents within 1e-4, the same alphas. */
function checkSameResults(results, ref, refName) {
  const a = results.img2img.latents;
  const b = ref.img2img.latents;
  const diff = Math.max(...a.map((v, i) => Math.abs(v - b[i])));
  if (!(diff < 1e-4)) fail(`img2img latents differ from ${refName} by ${diff}`);
  if (JSON.stringify(results.ridge.bestAlphas) !== JSON.stringify(ref.ridge.bestAlphas)) fail(`RidgeCV chose other alphas than ${refName}`);
  return diff;
}

function timed(what, cmd, cmdArgs, opts) {
  const t0 = performance.now();
  const r = spawnSync(cmd, cmdArgs, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) fail(`${what} (${cmd} ${cmdArgs.join(' ')}) exited ${r.status ?? r.signal}:\n${r.stdout ?? ''}${r.stderr ?? ''}`);
  return { seconds, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

/** Bytes under a folder (apparent sizes, symlinks not followed), as `du -sb` counts. */
function folderBytes(dir) {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += folderBytes(p);
    else total += lstatSync(p).size;
  }
  return total;
}

/** How many packages a node_modules holds (every folder with a package.json, nested ones included; not .bin). */
function packageCount(dir) {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (!e.isDirectory() || e.name.startsWith('.')) continue;
    const p = path.join(dir, e.name);
    if (e.name.startsWith('@')) n += packageCount(p);
    else if (existsSync(path.join(p, 'package.json'))) {
      n += 1;
      if (existsSync(path.join(p, 'node_modules'))) n += packageCount(path.join(p, 'node_modules'));
    }
  }
  return n;
}

/** A PATH folder with every command of this PATH except compilers and build tools. */
function pathWithoutCompilers(dir) {
  const blocked = /^(cc|c\+\+|c89|c99|gcc|g\+\+|cpp|clang|clang\+\+|clang-\d+|clang\+\+-\d+|cmake|ctest|cpack|ccmake|make|gmake|ninja|nvcc|ld|ld\.bfd|ld\.gold|.*-gcc(-\d+)?|.*-g\+\+(-\d+)?|.*-c\+\+|.*-ld)$/;
  mkdirSync(dir, { recursive: true });
  const seen = new Set();
  for (const folder of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!folder || !existsSync(folder)) continue;
    for (const name of readdirSync(folder)) {
      if (seen.has(name) || blocked.test(name)) continue;
      seen.add(name);
      symlinkSync(path.join(folder, name), path.join(dir, name));
    }
  }
  return dir;
}

/** The caller's environment without npm's own variables (a lifecycle script's npm_config_* would leak this machine's config) or a source-build request. */
function cleanEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== 'BRAINLATENT_BUILD_FROM_SOURCE') env[k] = v;
  return { ...env, ...extra };
}

// --compare-results: checks that ran at once (CI), each results file against the first (as --compare does).
if (compareAt >= 0) {
  const [refFile, ...files] = args.slice(compareAt + 1);
  if (!refFile || files.length === 0) {
    console.error('consumer check: --compare-results takes a reference results file, then one or more to compare with it');
    process.exit(2);
  }
  const ref = JSON.parse(readFileSync(refFile, 'utf8'));
  for (const file of files) {
    const results = JSON.parse(readFileSync(file, 'utf8'));
    const diff = checkSameResults(results, ref, refFile);
    console.log(`consumer check: ${path.basename(file)} (${results.engine.origin}) has the results of ${path.basename(refFile)} (${ref.engine.origin}): img2img latents within ${diff.toExponential(1)}, same alphas`);
  }
  process.exit(0);
}

// 1. The tarball.
let tarball = value('--tarball');
if (!tarball) {
  const packDir = path.resolve(value('--pack-dir') ?? path.join(root, 'build', 'package'));
  mkdirSync(packDir, { recursive: true });
  const packed = timed('npm pack', 'npm', ['pack', '--pack-destination', packDir], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
  tarball = path.join(packDir, `${pkg.name}-${pkg.version}.tgz`);
  if (!existsSync(tarball)) fail(`npm pack wrote no ${tarball}`);
  console.log(`packed ${tarball}: ${(lstatSync(tarball).size / 2 ** 20).toFixed(1)} MB (${packed.seconds.toFixed(1)} s)`);
  if (packOnly) process.exit(0);
}
tarball = path.resolve(tarball);
if (!existsSync(tarball)) fail(`no tarball at ${tarball}`);

// 2. A fresh consumer project.
const work = mkdtempSync(path.join(os.tmpdir(), 'bl-consumer-project-'));
const project = path.join(work, 'app');
mkdirSync(project);
const manifest = { name: 'bl-consumer', version: '1.0.0', private: true, type: 'module' };
if (fromSource) manifest.allowScripts = { brainlatent: true };
writeFileSync(path.join(project, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
const userconfig = path.join(work, 'npmrc');
writeFileSync(userconfig, '');
const env = cleanEnv({
  npm_config_userconfig: userconfig,
  npm_config_audit: 'false',
  npm_config_fund: 'false',
  npm_config_update_notifier: 'false',
  ...(fromSource ? {} : { PATH: pathWithoutCompilers(path.join(work, 'bin')) }),
});
if (!fromSource) {
  const probe = spawnSync('sh', ['-c', 'command -v cc || command -v c++ || command -v g++ || command -v gcc || command -v cmake || command -v make'], { env, encoding: 'utf8' });
  if (probe.status === 0) fail(`the PATH without compilers still has ${probe.stdout.trim()}`);
}

// 3. Install: npm's default layout, or pnpm's (a symlinked store; pnpm 10 runs no dependency's install
// script unless approved, so the prebuilt engine must load as shipped).
let install;
if (pnpm) {
  const tool = path.join(work, 'pnpm-tool');
  mkdirSync(tool);
  writeFileSync(path.join(tool, 'package.json'), '{"private":true}');
  timed('npm install pnpm', 'npm', ['install', `pnpm@${pnpm}`, '--no-audit', '--no-fund'], { cwd: tool, env });
  install = timed('pnpm add', process.execPath, [path.join(tool, 'node_modules', 'pnpm', 'bin', 'pnpm.cjs'), 'add', tarball], { cwd: project, env });
} else {
  // A warm npm cache, as the issue's target says: --prefer-offline uses the cached metadata without
  // revalidating it (on a machine with no network, npm would otherwise wait on each failed request).
  const installArgs = ['install', tarball, '--no-audit', '--no-fund', '--prefer-offline'];
  if (fromSource) installArgs.push('--foreground-scripts');
  if (slim) installArgs.push('--omit=optional');
  install = timed('npm install', 'npm', installArgs, { cwd: project, env: fromSource ? { ...env, BRAINLATENT_BUILD_FROM_SOURCE: '1' } : env });
  if (/Unknown cli config/.test(install.out)) fail(`npm warned about an unknown config:\n${install.out}`);
}
const pkgDir = path.join(project, 'node_modules', 'brainlatent');
const built = existsSync(path.join(pkgDir, 'build', 'Release', 'brainlatent.node'));
if (fromSource && !built) fail(`--build-from-source left no ${path.join(pkgDir, 'build', 'Release', 'brainlatent.node')}:\n${install.out}`);
if (!fromSource && built) fail('the prebuilt install compiled the engine');
if (!fromSource && existsSync(path.join(project, 'node_modules', 'onnxruntime-node'))) fail('onnxruntime-node (an optional peer) was installed');
const optionalPins = JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).optionalDependencies ?? {};
if (slim) {
  const present = Object.keys(optionalPins).filter((name) => existsSync(path.join(project, 'node_modules', name)));
  if (present.length) fail(`--omit=optional installed optional dependencies: ${present.join(', ')}`);
}
const bytes = folderBytes(path.join(project, 'node_modules'));
const pkgBytes = folderBytes(pkgDir);
const packages = pnpm ? undefined : packageCount(path.join(project, 'node_modules'));
console.log(
  `installed (${label}, ${pnpm ? 'pnpm layout' : 'npm default layout'}, ${fromSource ? 'compilers on PATH' : 'no compiler on PATH'}): ` +
    `${install.seconds.toFixed(1)} s; node_modules ${packages !== undefined ? `${packages} packages, ` : ''}${(bytes / 2 ** 20).toFixed(1)} MB, of which brainlatent ${(pkgBytes / 2 ** 20).toFixed(1)} MB`,
);
for (const line of install.out.split('\n')) if (/brainlatent:|install-scripts/.test(line)) console.log(`  npm: ${line.trim()}`);

/**
 * `tsc --noEmit --strict` with no skipLibCheck on test/package/consumer.ts (both entry points): the public typings
 * hold up in a strict consumer project, a slim one too (they name no optional package's types).
 */
function checkTypings() {
  copyFileSync(path.join(root, 'test', 'package', 'consumer.ts'), path.join(project, 'consumer.ts'));
  // A Node project's usual set-up: @types/node in its own node_modules (the checkout's pinned copy and its
  // undici-types, copied, so nothing is fetched) and `"types": ["node"]`, with the project's own type roots:
  // whatever else the install put in node_modules/@types (@types/long, through protobufjs) is not included, as in a
  // user's project (the typings once needed it: onnx-proto's `Long`).
  for (const dep of ['@types/node', 'undici-types']) {
    const to = path.join(project, 'node_modules', dep);
    if (!existsSync(to)) cpSync(path.join(root, 'node_modules', dep), to, { recursive: true, dereference: true });
  }
  writeFileSync(
    path.join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: false,
        types: ['node'],
      },
      files: ['consumer.ts'],
    }),
  );
  const tsc = spawnSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: project, env, encoding: 'utf8' });
  if (tsc.status !== 0) fail(`tsc --noEmit --strict (no skipLibCheck) on consumer.ts:\n${tsc.stdout}${tsc.stderr}`);
  console.log('  typings: consumer.ts compiles with tsc --strict, no skipLibCheck');
}

// 4s. Slim: the library without the optional packages, and the one-line refusals of what needs them.
if (slim) {
  copyFileSync(path.join(root, 'test', 'package', 'slimConsumer.mjs'), path.join(project, 'slimConsumer.mjs'));
  const script = timed('the slim consumer script', process.execPath, ['slimConsumer.mjs'], { cwd: project, env });
  process.stdout.write(script.out.replace(/^/gm, '  '));
  const help = timed('npx brainlatent --help', 'npx', ['--no-install', 'brainlatent', '--help'], { cwd: project, env });
  if (!/reconstruct/.test(help.out)) fail(`npx brainlatent --help printed no command list:\n${help.out}`);
  const installLine = (...names) => `npm install ${names.map((n) => `${n}@${optionalPins[n]}`).join(' ')}`;
  mkdirSync(path.join(project, 'served'));
  for (const [args, line] of [
    [['serve', '--port', '0', '--root', 'served'], installLine('@fastify/swagger', 'prom-client')],
    [['batch', 'status', '--redis', 'redis://127.0.0.1:1'], installLine('bullmq', 'ioredis')],
  ]) {
    const r = spawnSync('npx', ['--no-install', 'brainlatent', ...args], { cwd: project, env, encoding: 'utf8', timeout: 60_000 });
    const lines = `${r.stderr ?? ''}`.trim().split('\n');
    if (r.status !== 1 || lines.length !== 1 || !/^brainlatent: MissingDependencyError: /.test(lines[0]) || !lines[0].endsWith(`: ${line}`)) {
      fail(`brainlatent ${args.join(' ')}: expected exit 1 and one line ending '${line}', got ${r.status ?? r.signal}:\n${r.stdout ?? ''}${r.stderr ?? ''}`);
    }
    console.log(`  brainlatent ${args[0]}: ${lines[0]}`);
  }
  checkTypings();
  console.log(`consumer check (${label}): ok — install ${install.seconds.toFixed(1)} s, node_modules ${packages} packages, ${(bytes / 2 ** 20).toFixed(1)} MB`);
  if (flag('--keep')) console.log(`  kept ${project}`);
  else rmSync(work, { recursive: true, force: true });
  process.exit(0);
}

// 4. The consumer script, the CLI and the strict typings.
copyFileSync(path.join(root, 'test', 'package', 'consumer.mjs'), path.join(project, 'consumer.mjs'));
const resultsFile = path.resolve(value('--results') ?? path.join(work, 'results.json'));
const script = timed('the consumer script', process.execPath, ['consumer.mjs', resultsFile], { cwd: project, env });
process.stdout.write(script.out.replace(/^/gm, '  '));
const results = JSON.parse(readFileSync(resultsFile, 'utf8'));
const expectedOrigin = fromSource ? 'source' : 'prebuilt';
if (results.engine.origin !== expectedOrigin) fail(`the engine loaded is ${results.engine.origin} (${results.engine.addon}), expected ${expectedOrigin}`);
if (!/^OpenBLAS/.test(results.engine.blas)) fail(`the engine reports BLAS '${results.engine.blas}'`);
// (where the system has ISA-L, the installed engine must load it: the prebuilt one dlopens it as the source build does)
if (existsSync('/usr/lib/x86_64-linux-gnu/libisal.so.2') && !results.engine.gunzip?.available) {
  fail(`libisal.so.2 is installed but the engine cannot use it: ${results.engine.gunzip?.reason}`);
}

const help = timed('npx brainlatent --help', 'npx', ['--no-install', 'brainlatent', '--help'], { cwd: project, env });
if (!/reconstruct/.test(help.out)) fail(`npx brainlatent --help printed no command list:\n${help.out}`);
const benchHelp = timed('npx brainlatent bench --help', 'npx', ['--no-install', 'brainlatent', 'bench', 'ridge', '--help'], { cwd: project, env });
if (!/--results/.test(benchHelp.out)) fail('brainlatent bench ridge --help has no --results option');
// A single command runs from its bundle (scripts/bundle-cli.mjs): the installed CLI's `ridge fit --help` loads
// ridge.bundle.js (the tests' loader hook records what it loads), not the command's modules.
const loadedList = path.join(work, 'loaded.txt');
const hookUrl = pathToFileURL(path.join(root, 'test', 'helpers', 'loadedModules.mjs')).href;
const fitHelp = timed('brainlatent ridge fit --help', process.execPath, [
  '--import', `data:text/javascript,import{register}from'node:module';register(${JSON.stringify(hookUrl)});`,
  path.join(pkgDir, 'dist', 'cli', 'main.js'), 'ridge', 'fit', '--help',
], { cwd: project, env: { ...env, BRAINLATENT_TEST_LOADED: loadedList } });
if (!/Usage: brainlatent ridge fit/.test(fitHelp.out)) fail(`brainlatent ridge fit --help printed:\n${fitHelp.out}`);
const commandsLoaded = readFileSync(loadedList, 'utf8').split('\n').filter((u) => u.includes('/cli/commands/')).map((u) => path.basename(u));
if (commandsLoaded.join() !== 'ridge.bundle.js') fail(`the installed ridge fit loaded ${commandsLoaded.join(', ') || 'no command file'}, expected its bundle ridge.bundle.js`);

checkTypings();

// 5. The same results as another build, where asked.
const other = value('--compare');
if (other) {
  const ref = JSON.parse(readFileSync(other, 'utf8'));
  const diff = checkSameResults(results, ref, other);
  console.log(`  same results as ${path.basename(other)} (${ref.engine.origin}): img2img latents within ${diff.toExponential(1)}, same alphas`);
}

// 6. npm ci from the consumer's lockfile.
if (flag('--npm-ci')) {
  rmSync(path.join(project, 'node_modules'), { recursive: true, force: true });
  const ci = timed('npm ci', 'npm', ['ci', '--no-audit', '--no-fund'], { cwd: project, env });
  const smoke = timed('import after npm ci', process.execPath, ['--input-type=module', '-e', "import('brainlatent').then((m) => console.log(m.buildInfo().origin))"], { cwd: project, env });
  if (smoke.out.trim() !== expectedOrigin) fail(`after npm ci the engine is ${smoke.out.trim()}`);
  console.log(`  npm ci: ${ci.seconds.toFixed(1)} s, engine ${smoke.out.trim()}`);
}

console.log(`consumer check (${label}): ok — install ${install.seconds.toFixed(1)} s, node_modules ${(bytes / 2 ** 20).toFixed(1)} MB, script ${script.seconds.toFixed(1)} s`);
if (flag('--keep')) console.log(`  kept ${project}`);
else rmSync(work, { recursive: true, force: true });
