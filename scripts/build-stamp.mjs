#!/usr/bin/env node
// Build stamps of a checkout: what the engine (build/Release/brainlatent.node) and dist/ were last built
// from. npm runs the package's install script whenever it installs the checkout, and `npx brainlatent …`
// in a checkout installs it (as a file: dependency in ~/.npm/_npx/) before its first run, so without
// these the first npx call after `npm install` rebuilt the engine and recompiled ts/ (minutes on 2 cores).
// The build scripts write a stamp after each successful build; the install script rebuilds a part only
// when its stamp is missing, its inputs' hash differs, or its outputs are gone or were rewritten since.
// Checkout only: the package does not ship this file (package.json "files"), and an installed package
// has no stamps (build/ does not ship either), so a consumer's install is unchanged.
//   node scripts/build-stamp.mjs     prints, per part, "up to date" or why it would be rebuilt
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const scriptRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Every file under `dir` (relative to root, '/'-separated, sorted); none when it does not exist. */
function filesUnder(root, dir) {
  const abs = path.join(root, dir);
  if (!existsSync(abs)) return [];
  const out = [];
  for (const e of readdirSync(abs, { withFileTypes: true })) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) out.push(...filesUnder(root, rel));
    else if (e.isFile()) out.push(rel);
  }
  return out.sort();
}

/** The version of an installed package, as the build would find it from root; 'missing' when not installed. */
function installedVersion(root, pkg) {
  try {
    const manifest = createRequire(path.join(root, 'package.json')).resolve(`${pkg}/package.json`);
    return JSON.parse(readFileSync(manifest, 'utf8')).version;
  } catch {
    return 'missing';
  }
}

const manifest = (root) => JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));

/**
 * The C and C++ compilers CMake would take (CC, CXX; their defaults otherwise) and the first line of the C++
 * compiler's `--version`, which changes with an upgrade of the same path: an engine built by another compiler
 * is rebuilt.
 */
function compilers() {
  const cxx = process.env.CXX ?? '';
  const r = spawnSync(cxx || 'c++', ['--version'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] });
  const version = r.status === 0 ? (r.stdout.split('\n')[0] ?? '').trim() : 'unavailable';
  return { cc: process.env.CC ?? '', cxx, cxxVersion: version };
}

/**
 * The two parts a checkout builds. inputs: the files the part is built from; settings: whatever else
 * changes the result (tool versions, options); outputs: files that must exist after the build.
 */
export const PARTS = {
  native: {
    name: 'the engine',
    stamp: 'build/stamp-native.json',
    inputs: (root) => ['CMakeLists.txt', ...filesUnder(root, 'native')],
    settings: (root) => ({
      platform: `${process.platform}-${process.arch}`,
      binary: manifest(root).binary ?? null, // cmake-js reads napi_versions from package.json
      cmakeJs: installedVersion(root, 'cmake-js'),
      nodeAddonApi: installedVersion(root, 'node-addon-api'),
      cuda: process.env.BRAINLATENT_CUDA ?? '', // passed to CMake by scripts/build-native.mjs
      compilers: compilers(),
    }),
    outputs: () => ['build/Release/brainlatent.node'],
    /**
     * Before a rebuild: CMake reads CC and CXX only when it first configures build/, and keeps the compilers in
     * its cache after that, so a changed compiler clears the cache (the build then configures afresh with it).
     */
    prepare: (root, before, now) => {
      if (!before || JSON.stringify(before.compilers) === JSON.stringify(now.compilers)) return;
      rmSync(path.join(root, 'build', 'CMakeCache.txt'), { force: true });
      rmSync(path.join(root, 'build', 'CMakeFiles'), { recursive: true, force: true });
    },
  },
  dist: {
    name: 'dist/',
    stamp: 'build/stamp-dist.json',
    inputs: (root) => ['tsconfig.json', 'tsconfig.build.json', 'scripts/bundle-cli.mjs', ...filesUnder(root, 'ts')],
    // (the CLI's command bundles: scripts/bundle-cli.mjs)
    settings: (root) => ({ typescript: installedVersion(root, 'typescript'), esbuild: installedVersion(root, 'esbuild') }),
    outputs: (root) => {
      const { main, bin } = manifest(root);
      const bins = typeof bin === 'string' ? [bin] : Object.values(bin ?? {});
      return [...new Set([main, ...bins].filter(Boolean).map((f) => path.posix.normalize(f)))];
    },
    // every file the compile left in dist/ is recorded: one deleted or rewritten since (a module, not only the
    // entry points) makes dist/ stale
    recorded: (root) => filesUnder(root, 'dist'),
  },
};

/** A hash of a part's inputs (names and contents) and settings. */
export function inputsHash(part, root = scriptRoot) {
  const h = createHash('sha256');
  h.update(JSON.stringify(part.settings(root)));
  for (const rel of part.inputs(root)) {
    const abs = path.join(root, rel);
    h.update(`\0${rel}\0`);
    h.update(existsSync(abs) ? readFileSync(abs) : '(missing)');
  }
  return h.digest('hex');
}

/** Size and modification time of each output (and each recorded file); undefined when an output is missing. */
function outputStats(part, root) {
  const stats = {};
  for (const rel of new Set([...part.outputs(root), ...(part.recorded?.(root) ?? [])])) {
    const abs = path.join(root, rel);
    if (!existsSync(abs)) return undefined;
    const s = statSync(abs);
    stats[rel] = { size: s.size, mtimeMs: s.mtimeMs };
  }
  return stats;
}

/**
 * Why a part must be rebuilt, in a few words; undefined when its stamp matches `hash` (by default the
 * inputs as they are now) and its outputs are the ones that build wrote.
 */
export function staleReason(part, root = scriptRoot, hash = inputsHash(part, root)) {
  const missing = part.outputs(root).filter((rel) => !existsSync(path.join(root, rel)));
  if (missing.length) return `${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing`;
  const stampFile = path.join(root, part.stamp);
  if (!existsSync(stampFile)) return `no build stamp (${part.stamp})`;
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(stampFile, 'utf8'));
  } catch {
    return `${part.stamp} is unreadable`;
  }
  if (stamp.inputs !== hash) return `its sources or build settings changed since the last build`;
  // every file the stamp vouches for (the outputs, and for dist/ each file the compile wrote), as it was written
  const listed = Object.keys(stamp.outputs ?? {});
  const gone = listed.filter((rel) => !existsSync(path.join(root, rel)));
  if (gone.length) return `${few(gone)} ${gone.length === 1 ? 'is' : 'are'} missing since the last build`;
  const changed = [...new Set([...part.outputs(root), ...listed])].filter((rel) => {
    const s = statSync(path.join(root, rel));
    return JSON.stringify({ size: s.size, mtimeMs: s.mtimeMs }) !== JSON.stringify(stamp.outputs?.[rel]);
  });
  if (changed.length) return `${few(changed)} changed since the last build`;
  return undefined;
}

/** A list of files for a message: the first three, and how many more. */
const few = (files) => (files.length <= 3 ? files.join(', ') : `${files.slice(0, 3).join(', ')} and ${files.length - 3} more`);

/** The stamp of `part`, or undefined when there is none or it cannot be read. */
function readStamp(part, root) {
  try {
    return JSON.parse(readFileSync(path.join(root, part.stamp), 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Records that `part` was just built from inputs with `hash` (computed before the build began). `fresh`: the build
 * wrote into an empty (or absent) folder, so every recorded file is its output (isFreshBuild).
 */
export function writeStamp(part, hash, root = scriptRoot, settings = part.settings(root), fresh = false) {
  const outputs = outputStats(part, root);
  if (!outputs) return; // the build made no output: nothing to vouch for
  const file = path.join(root, part.stamp);
  mkdirSync(path.dirname(file), { recursive: true });
  // (the settings as well as their hash: what the next build compares its compilers with)
  writeFileSync(`${file}.tmp`, `${JSON.stringify({ inputs: hash, settings, fresh, outputs }, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
}

/**
 * Runs `build` (which returns false, or exits, on failure) and stamps `part` when it succeeded. The
 * hash is taken before the build, so a source edited while it runs leaves the part stale. `fresh`: the build
 * starts from an empty folder (writeStamp).
 */
export function stamped(part, build, root = scriptRoot, { fresh = false } = {}) {
  const settings = part.settings(root);
  const hash = inputsHash(part, root);
  part.prepare?.(root, readStamp(part, root)?.settings, settings);
  const ok = build();
  if (ok !== false) writeStamp(part, hash, root, settings, fresh);
  return ok;
}

/**
 * Whether a part's folder is exactly what a build into an empty folder made of the inputs as they are now: its
 * stamp is current (staleReason), says the build was fresh, and lists every file now there (nothing added since).
 * `npm pack` then ships dist/ as it is instead of compiling ts/ again into an emptied dist/ (scripts/prepack.mjs).
 */
export function isFreshBuild(part, root = scriptRoot) {
  if (!part.recorded || staleReason(part, root) !== undefined) return false;
  const stamp = readStamp(part, root);
  if (stamp?.fresh !== true) return false;
  const listed = new Set(Object.keys(stamp.outputs ?? {}));
  return part.recorded(root).every((rel) => listed.has(rel));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const part of Object.values(PARTS)) console.log(`${part.name}: ${staleReason(part) ?? 'up to date'}`);
}
