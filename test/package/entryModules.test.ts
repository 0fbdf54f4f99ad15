/**
 * What `import('brainlatent')` (dist/index.js) loads, seen from a consumer's process: none of the packages that only
 * some features need (ajv, TypeBox, onnx-proto with protobufjs, pngjs, nifti-reader-js, h5wasm, Fastify, BullMQ,
 * the chart libraries): they load on first use (ts/lazyPackages.ts, ts/config/typeBuilder.ts). A service that only
 * fits ridge models paid for all of them at start-up: 536 modules (429 ES, 110 CommonJS) before, 223 of ours after
 * (2026-12-06).
 * And what `import('brainlatent/ridge')` (dist/ridge/index.js) loads: the ridge engine alone, for a service that
 * embeds only the solvers: 38 modules of ours (2026-12-06), where the main entry loaded 228; its classes are the main
 * entry's own objects.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { afterAll, describe, expect, it } from 'vitest';

import { distModule } from '../helpers/dist.js';
import { runCommand } from '../helpers/nodeChild.js';

const entry = pathToFileURL(distModule('index')).href;
const ridgeEntry = pathToFileURL(distModule('ridge/index')).href;
const hook = pathToFileURL(path.join(import.meta.dirname, '..', 'helpers', 'loadedModules.mjs')).href;
const registerHook = `data:text/javascript,import{register}from'node:module';register(${JSON.stringify(hook)});`;
const tmp = mkdtempSync(path.join(tmpdir(), 'bl-entry-modules-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Modules the entry may load at most (223 on 2026-12-06, all of them ours; 536 before the heavy packages were made lazy). */
const MAX_ENTRY_MODULES = 260;

/** Modules brainlatent/ridge may load at most (38 on 2026-12-06: the solvers, the models, the errors, Matrix, the engine's loader). */
const MAX_RIDGE_ENTRY_MODULES = 45;

/** Packages that must not load with the entry. */
const HEAVY = ['@sinclair/typebox', 'ajv', 'onnx-proto', 'protobufjs', 'pngjs', 'nifti-reader-js', 'fflate', 'h5wasm', 'fastify', 'bullmq', 'ioredis', 'vega', 'vega-lite', 'prom-client', 'onnxruntime-node', 'commander'];

// The consumer: imports the entry, fits a small ridge model, then asks for a config validator (ajv loads then).
// Between the steps it lists the CommonJS files loaded (require.cache) and marks the ES module list the hook writes.
const consumer = `
import Module from 'node:module';
import { appendFileSync } from 'node:fs';
const list = process.env.BRAINLATENT_TEST_LOADED;
const cjs = () => Object.keys(Module._cache);
const steps = {};
const m = await import(${JSON.stringify(entry)});
steps.import = cjs();
appendFileSync(list, '--fit\\n');
const n = 40, p = 3, t = 2;
const x = { data: new Float32Array(n * p).map((_, i) => Math.sin(i)), rows: n, cols: p };
const y = { data: new Float32Array(n * t).map((_, i) => Math.cos(i * 0.7)), rows: n, cols: t };
const model = await new m.RidgeCV({ alphas: [1, 10, 100], folds: 4 }).fit(x, y);
steps.fit = cjs();
appendFileSync(list, '--validator\\n');
m.validatorFor(m.EncodeConfigSchema);
steps.validator = cjs();
console.log(JSON.stringify({ steps, alphas: [...model.bestAlphas] }));
`;

/** The package a loaded file belongs to (its node_modules folder name), or null for the package's own. */
function packageOf(file: string): string | null {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(file);
  return m ? m[1] : null;
}

describe("the main entry's cost (dist/index.js)", () => {
  it('loads no package, and at most MAX_ENTRY_MODULES modules of its own; a ridge fit loads none either, and ajv loads on first use', async () => {
    const list = path.join(tmp, 'loaded.txt');
    const r = await runCommand(process.execPath, ['--import', registerHook, '--input-type=module', '-e', consumer], {
      cwd: tmp,
      env: { ...process.env, BRAINLATENT_TEST_LOADED: list },
    });
    expect(r.status, r.stderr).toBe(0);
    const { steps, alphas } = JSON.parse(r.stdout) as { steps: Record<'import' | 'fit' | 'validator', string[]>; alphas: number[] };
    expect(alphas).toHaveLength(2);
    // the ES modules each step loaded (the hook's list, split at the consumer's marks), with the CommonJS files
    const [esImport, esFit, esValidator] = readFileSync(list, 'utf8')
      .split(/^--\w+\n/m)
      .map((part) => part.split('\n').filter((u) => u.startsWith('file:')).map((u) => decodeURIComponent(new URL(u).pathname)));
    const atImport = new Set([...esImport, ...steps.import]);
    const packages = (files: Iterable<string>) => [...new Set([...files].map(packageOf).filter((p) => p !== null))].sort();

    console.info(`import('brainlatent'): ${atImport.size} modules (${esImport.length} ES, ${steps.import.length} CommonJS), packages: ${packages(atImport).join(', ') || 'none'}`);
    expect(packages(atImport), 'packages loaded by importing the entry').toEqual([]);
    expect(HEAVY.filter((p) => [...atImport].some((f) => f.includes(`/node_modules/${p}/`)))).toEqual([]);
    expect(atImport.size).toBeGreaterThan(50); // (the hook saw the entry's modules)
    expect(atImport.size).toBeLessThanOrEqual(MAX_ENTRY_MODULES);

    // fitting loads the engine's addon and no package
    expect(packages([...esFit, ...steps.fit])).toEqual([]);
    expect(steps.fit.some((f) => f.endsWith('.node'))).toBe(true);
    // a validator loads ajv then, and only then
    expect(packages([...esValidator, ...steps.validator])).toContain('ajv');
  });
});

// The consumer of brainlatent/ridge: imports it, fits RidgeCV and BandedRidgeCV models, then imports the main entry and
// compares each name's object with the main entry's.
const ridgeConsumer = `
import Module from 'node:module';
import { appendFileSync } from 'node:fs';
const list = process.env.BRAINLATENT_TEST_LOADED;
const r = await import(${JSON.stringify(ridgeEntry)});
const cjs = Object.keys(Module._cache);
const n = 40, p = 3, t = 2;
const x = { data: new Float32Array(n * p).map((_, i) => Math.sin(i)), rows: n, cols: p };
const y = { data: new Float32Array(n * t).map((_, i) => Math.cos(i * 0.7)), rows: n, cols: t };
const ridge = await new r.RidgeCV({ alphas: [1, 10, 100], folds: 4 }).fit(x, y);
const a = { data: x.data.slice(0, n * 2), rows: n, cols: 2 };
const b = { data: x.data.slice(n * 2), rows: n, cols: 1 };
const banded = await new r.BandedRidgeCV({ alphas: [1, 10], nIter: 3, folds: 4 }).fit({ a, b }, y);
let refused = '';
try { new r.RidgeCV({ alphas: [-1] }); } catch (e) { refused = e.constructor.name; }
appendFileSync(list, '--main\\n');
const m = await import(${JSON.stringify(entry)});
const names = Object.keys(r);
console.log(JSON.stringify({
  cjs, names,
  notMains: names.filter((k) => r[k] !== m[k]),
  ridge: ridge instanceof m.RidgeModel, banded: banded instanceof m.BandedRidgeModel, bands: banded.nBands ?? null,
  refused, refusedIsMains: refused !== '' && typeof m[refused] === 'function',
}));
`;

describe("brainlatent/ridge's cost (dist/ridge/index.js)", () => {
  it('loads no package and at most MAX_RIDGE_ENTRY_MODULES modules, none of the pipeline; fits both solvers; every name is the main entry\'s object', async () => {
    const list = path.join(tmp, 'ridge-loaded.txt');
    const r = await runCommand(process.execPath, ['--import', registerHook, '--input-type=module', '-e', ridgeConsumer], {
      cwd: tmp,
      env: { ...process.env, BRAINLATENT_TEST_LOADED: list },
    });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { cjs: string[]; names: string[]; notMains: string[]; ridge: boolean; banded: boolean; bands: number; refused: string; refusedIsMains: boolean };
    const [esRidge] = readFileSync(list, 'utf8')
      .split(/^--\w+\n/m)
      .map((part) => part.split('\n').filter((u) => u.startsWith('file:')).map((u) => decodeURIComponent(new URL(u).pathname)));
    const loaded = new Set([...esRidge, ...out.cjs.filter((f) => !f.endsWith('.node'))]);
    const ours = [...loaded].map((f) => path.relative(path.resolve('dist'), f));
    console.info(`import('brainlatent/ridge'): ${loaded.size} modules; then fits RidgeCV and BandedRidgeCV`);
    expect([...loaded].map(packageOf).filter((p) => p !== null)).toEqual([]);
    expect(ours).toContain('ridge/index.js');
    expect(ours).toContain('ridge/BandedRidgeCV.js');
    // the main entry's own modules stay out: no I/O readers, no SD, no pipeline, no service
    expect(ours.filter((f) => /^(index|sd|nsd|io\/npy|io\/nifti|encoding|pipeline|synth|eval|demo|batch|server|cli|charts|report)\b/.test(f))).toEqual([]);
    expect(loaded.size).toBeGreaterThan(20); // (the hook saw the entry's modules)
    expect(loaded.size).toBeLessThanOrEqual(MAX_RIDGE_ENTRY_MODULES);

    // what an embedder needs is there, and each name is the main entry's object: a model fitted through one entry is an
    // instance of the other's class, and an error thrown through one is caught by the other's
    for (const name of ['RidgeCV', 'RidgeModel', 'BandedRidgeCV', 'BandedRidgeModel', 'CancelledError', 'InvalidArgumentError', 'ShapeError', 'OutOfMemoryError', 'BrainlatentError', 'DEFAULT_ALPHAS', 'setThreads', 'buildInfo']) {
      expect(out.names).toContain(name);
    }
    expect(out.notMains).toEqual([]);
    expect([out.ridge, out.banded, out.bands]).toEqual([true, true, 2]);
    expect([out.refused, out.refusedIsMains]).toEqual(['InvalidArgumentError', true]);
  });
});
