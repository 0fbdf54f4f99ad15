#!/usr/bin/env node
// Bundles each CLI command module of dist/cli/commands/ (tsc's output) into one file beside it, <name>.bundle.js,
// with esbuild. Node 20 loads an ES module graph a level at a time, ~0.4–0.8 ms per module: `ridge fit`'s 52
// modules took 55 ms to load, its bundle 15 ms, time every run of the command paid before it started.
// dist/cli/main.js imports a command's bundle when the command line runs that one command, and the modules as tsc
// wrote them when it loads every command (the program's help, an unknown command): eleven bundles, each with its
// own copy of what they share, took 1.2 s to load against 0.9 s. Only the command modules are bundled; the library
// (dist/index.js and the rest) and the files run as their own processes or threads (workers) stay as tsc wrote them.
//   - Packages stay external (imported from node_modules at run time, as before).
//   - The modules that main.js loads too (errors.js, cli/setup.js: found from main.js, modulesOfMain) stay external,
//     imported from their own files, so that the process has one copy of each: main's `instanceof
//     BrainlatentError` holds for a command's errors.
//   - `import.meta.url` in a bundled module is the URL of that module's own file in dist/, as unbundled
//     (`new URL(<its path from the bundle>, import.meta.url).href`): the paths it resolves (package.json, worker
//     files, the addon) are unchanged. Any other `import.meta` property fails the bundle.
// Run by scripts/compile-ts.mjs after tsc; `node scripts/bundle-cli.mjs [dist]` bundles the dist/ there is.
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** A command module's bundle: what main.js looks for (ts/cli/main.ts, loadCommand). */
const bundleOf = (entry) => `${entry.slice(0, -'.js'.length)}.bundle.js`;
/** Beside each bundle, the dist/ modules it holds (relative to it, JSON): main.js's age rule in a checkout reads them. */
const inputsOf = (entry) => `${entry.slice(0, -'.js'.length)}.bundle.inputs.json`;

const toPosix = (p) => p.split(path.sep).join('/');
const relativeSpecifier = (fromDir, file) => {
  const rel = toPosix(path.relative(fromDir, file));
  return rel.startsWith('.') ? rel : `./${rel}`;
};

/**
 * esbuild plugin: the `shared` modules (main.js's) external, at their path from the bundle; import.meta.url per
 * original file. With `staticOnly`, dynamic imports stay external too (the probe of what the entry loads at start-up
 * unbundled).
 */
function distModules(shared, entry, staticOnly = false) {
  const outDir = path.dirname(entry);
  return {
    name: 'brainlatent-dist-modules',
    setup(build) {
      build.onResolve({ filter: /^\./ }, (args) => {
        if (staticOnly && args.kind === 'dynamic-import') return { path: args.path, external: true };
        const file = path.resolve(args.resolveDir, args.path);
        return shared.includes(file) ? { path: relativeSpecifier(outDir, file), external: true } : undefined;
      });
      build.onLoad({ filter: /\.js$/ }, (args) => {
        const source = readFileSync(args.path, 'utf8');
        if (!source.includes('import.meta')) return { contents: source, loader: 'js' };
        const other = /import\.meta(?!\.url\b)/.exec(source);
        if (other) throw new Error(`${args.path}: import.meta other than import.meta.url cannot be bundled (at ${other.index})`);
        if (args.path === entry) return { contents: source, loader: 'js' };
        const url = `new URL(${JSON.stringify(relativeSpecifier(outDir, args.path))}, import.meta.url).href`;
        return { contents: source.replaceAll('import.meta.url', url), loader: 'js' };
      });
    },
  };
}

/**
 * The modules of dist/ that dist/cli/main.js loads statically (errors.js, cli/setup.js), which the bundles import from
 * their files: found from main.js itself, so that a new import of main's cannot be missed.
 */
async function modulesOfMain(esbuild, dist) {
  const main = path.join(dist, 'cli', 'main.js');
  if (!existsSync(main)) return [];
  const r = await esbuild.build({
    entryPoints: [main],
    bundle: true,
    write: false,
    metafile: true,
    format: 'esm',
    platform: 'node',
    packages: 'external',
    // (main.js imports its commands by computed paths: esbuild leaves those alone, and says so)
    logLevel: 'silent',
  });
  return Object.keys(r.metafile.inputs)
    .map((f) => path.resolve(f))
    .filter((f) => f !== main && f.startsWith(dist + path.sep));
}

const isBundleFile = (f) => /\.bundle[.-]/.test(f);

/** Removes the command bundles of `dist` (and any temporaries of a bundling that did not finish). */
export function removeCommandBundles(dist) {
  const commandsDir = path.join(dist, 'cli', 'commands');
  if (!existsSync(commandsDir)) return;
  for (const f of readdirSync(commandsDir)) if (isBundleFile(f)) rmSync(path.join(commandsDir, f), { force: true });
}

/** The packages (not node: builtins) that a bundle imports when it loads, from esbuild's metafile. */
function packagesLoaded(metafile) {
  const out = new Set();
  for (const o of Object.values(metafile.outputs))
    for (const i of o.imports ?? []) if (i.external && i.kind === 'import-statement' && !i.path.startsWith('.') && !i.path.startsWith('node:')) out.add(i.path);
  return out;
}

/**
 * Bundles the command modules; returns those bundled and those left as tsc wrote them. A bundle holds the modules
 * that its command imports lazily (`await import(…)`) too, so that each stays one copy, and an ES module bundle
 * imports the packages of all of them when it loads: a command whose bundle would load a package at start-up that
 * it loads only lazily unbundled is left unbundled (`bench` was, when the modules it imports lazily imported
 * onnx-proto, nifti-reader-js, TypeBox and ajv statically: its --help took 0.37 s bundled, 0.18 s unbundled).
 */
export async function bundleCommands(dist = path.join(root, 'dist')) {
  const commandsDir = path.join(dist, 'cli', 'commands');
  // (a dist/ without commands, e.g. the install script test's stand-in compile: nothing to bundle)
  if (!existsSync(commandsDir)) return { bundled: [], unbundled: [] };
  // (bundles of an earlier build, and their temporaries: a command left unbundled now has none; gone before
  // anything here can fail, so that no bundle outlives the modules it was made from)
  removeCommandBundles(dist);
  const esbuild = createRequire(import.meta.url)('esbuild');
  const shared = await modulesOfMain(esbuild, dist);
  const entries = readdirSync(commandsDir)
    .filter((f) => f.endsWith('.js'))
    .map((f) => path.join(commandsDir, f));
  const options = (entry, staticOnly) => ({
    entryPoints: [entry],
    // (its final name: the map's paths and the bundle's sourceMappingURL follow from it; nothing is
    // written by esbuild, each file goes in through a temporary below)
    outfile: bundleOf(entry),
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    // (esbuild reads tsc's maps of its inputs: the bundle's map points at ts/, which the package ships)
    sourcemap: 'linked',
    sourcesContent: false,
    metafile: true,
    write: false,
    logLevel: 'warning',
    plugins: [distModules(shared, entry, staticOnly)],
  });
  const bundled = [], unbundled = [], outputs = [];
  for (const entry of entries) {
    const whole = await esbuild.build(options(entry, false));
    const atStart = packagesLoaded((await esbuild.build(options(entry, true))).metafile);
    const extra = [...packagesLoaded(whole.metafile)].filter((p) => !atStart.has(p));
    if (extra.length > 0) {
      unbundled.push({ entry, extra });
      continue;
    }
    bundled.push(entry);
    outputs.push(...whole.outputFiles);
    // The dist/ modules it holds and their sizes, for main.js's rules: in a checkout, no module newer than the bundle
    // (tsc --watch and --incremental re-emit only the modules that changed, not the command's own, which alone would
    // leave an old bundle looking current); anywhere, each module of the size it had here (a package packed with
    // --ignore-scripts after a bare tsc holds this build's bundles beside newer modules, and npm's file times say
    // nothing).
    const inputs = Object.fromEntries(
      Object.keys(whole.metafile.inputs)
        .map((f) => path.resolve(f))
        .filter((f) => f.startsWith(dist + path.sep) && f.endsWith('.js'))
        .sort()
        .map((f) => [path.relative(commandsDir, f).split(path.sep).join('/'), statSync(f).size]),
    );
    outputs.push({ path: inputsOf(entry), contents: Buffer.from(`${JSON.stringify(inputs)}\n`) });
  }
  // Each file to a temporary, then renamed into place: a bundle is there whole or not at all.
  for (const o of outputs) {
    const tmp = `${o.path}.tmp-${process.pid}`;
    try {
      // (the map names its bundle, which esbuild's leaves out)
      const map = o.path.endsWith('.map') ? JSON.stringify({ ...JSON.parse(o.text), file: path.basename(o.path, '.map') }) : undefined;
      writeFileSync(tmp, map ?? o.contents);
      renameSync(tmp, o.path);
    } finally {
      rmSync(tmp, { force: true });
    }
  }
  return { bundled, unbundled };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  bundleCommands(process.argv[2] ? path.resolve(process.argv[2]) : undefined).then(({ bundled, unbundled }) => {
    const name = (f) => path.basename(f, '.js');
    if (bundled.length) console.log(`bundle-cli: bundled ${bundled.map(name).join(', ')}`);
    for (const u of unbundled) console.log(`bundle-cli: left ${name(u.entry)} unbundled (its bundle would load ${u.extra.join(', ')} at start-up)`);
  }).catch((e) => {
    process.stderr.write(`bundle-cli: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
