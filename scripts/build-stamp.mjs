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
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
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
    }),
    outputs: () => ['build/Release/brainlatent.node'],
  },
  dist: {
    name: 'dist/',
    stamp: 'build/stamp-dist.json',
    inputs: (root) => ['tsconfig.json', 'tsconfig.build.json', ...filesUnder(root, 'ts')],
    settings: (root) => ({ typescript: installedVersion(root, 'typescript') }),
    outputs: (root) => {
      const { main, bin } = manifest(root);
      const bins = typeof bin === 'string' ? [bin] : Object.values(bin ?? {});
      return [...new Set([main, ...bins].filter(Boolean).map((f) => path.posix.normalize(f)))];
    },
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

/** Size and modification time of each output; undefined when one is missing. */
function outputStats(part, root) {
  const stats = {};
  for (const rel of part.outputs(root)) {
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
  const now = outputStats(part, root);
  const changed = Object.keys(now).filter((rel) => JSON.stringify(now[rel]) !== JSON.stringify(stamp.outputs?.[rel]));
  if (changed.length) return `${changed.join(', ')} changed since the last build`;
  return undefined;
}

/** Records that `part` was just built from inputs with `hash` (computed before the build began). */
export function writeStamp(part, hash, root = scriptRoot) {
  const outputs = outputStats(part, root);
  if (!outputs) return; // the build made no output: nothing to vouch for
  const file = path.join(root, part.stamp);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(`${file}.tmp`, `${JSON.stringify({ inputs: hash, outputs }, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
}

/**
 * Runs `build` (which returns false, or exits, on failure) and stamps `part` when it succeeded. The
 * hash is taken before the build, so a source edited while it runs leaves the part stale.
 */
export function stamped(part, build, root = scriptRoot) {
  const hash = inputsHash(part, root);
  const ok = build();
  if (ok !== false) writeStamp(part, hash, root);
  return ok;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const part of Object.values(PARTS)) console.log(`${part.name}: ${staleReason(part) ?? 'up to date'}`);
}
