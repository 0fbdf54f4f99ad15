/**
 * What a consumer's TypeScript project sees of the typings (dist/**.d.ts) under the settings README's "TypeScript"
 * section names: a small consumer of `brainlatent` and `brainlatent/ridge`, compiled with the checkout's TypeScript,
 * `strict` and no skipLibCheck, in a project of its own (scripts/consumer-check.mjs compiles test/package/consumer.ts,
 * the server entry included, in an installed package in CI; this runs without packing).
 * - NodeNext, Node16, bundler and node10 resolution with @types/node: compile (node10 finds `brainlatent/ridge` through
 *   typesVersions: it reads no `exports`).
 * - @types/node installed but left out of `types` (`"types": []`): compiles, through the entry typings'
 *   `/// <reference types="node" />` (without it: 20 errors, Buffer, NodeJS and node:fs/promises not found).
 * - lib ES2020 without DOM: compiles (errors.d.ts named lib es2022's ErrorOptions, and sd/referenceLoop.d.ts
 *   onnxruntime-common's InferenceSession, whose declarations need lib DOM's ImageData and WebGLTexture: 9 errors).
 * - no @types/node at all: fails, and says which package is missing (TS2688, "Cannot find type definition file for
 *   'node'").
 */
import { copyFileSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { distModule } from '../helpers/dist.js';
import { runCommand } from '../helpers/nodeChild.js';
import { tempDir } from '../helpers/tempDir.js';

const root = path.resolve('.');
// (the checkout's node_modules is a link in a worktree: the packages themselves are linked)
const modules = path.join(root, 'node_modules');

// Every entry point's types, the errors' `cause`, an AbortSignal, `await using` and a banded fit through the ridge entry.
const CONSUMER = `
import { Diffusion, RidgeCV, CancelledError, DEFAULT_ALPHAS, buildInfo, readMatrixNpy, type Matrix, type RidgeModel, type BuildInfo } from 'brainlatent';
import { BandedRidgeCV, RidgeCV as RidgeOnly, BrainlatentError, type BandedRidgeModel, type FeatureSpaces, type RidgeProgress } from 'brainlatent/ridge';

export async function fit(x: Matrix, y: Matrix, signal?: AbortSignal): Promise<Matrix | undefined> {
  const progress: RidgeProgress[] = [];
  try {
    const model: RidgeModel = await new RidgeCV({ alphas: [...DEFAULT_ALPHAS], folds: 5 }).fit(x, y, { signal, onProgress: (p) => progress.push(p) });
    await model.save('model.safetensors');
    return model.predict(x);
  } catch (e) {
    if (e instanceof CancelledError) return undefined;
    throw new BrainlatentError('fit failed', 'FitFailed', { cause: e });
  }
}
export async function banded(spaces: FeatureSpaces, y: Matrix): Promise<[BandedRidgeModel, RidgeModel]> {
  const model = await new BandedRidgeCV({ nIter: 10 }).fit(spaces, y);
  const plain: RidgeModel = await new RidgeOnly().fit({ data: new Float32Array(4), rows: 2, cols: 2 }, y);
  return [model, plain];
}
export async function textRows(dir: string): Promise<number> {
  await using sd = await Diffusion.load(dir, { intraOpThreads: 1 });
  return (await sd.encodeText(['a photo of the cat'])).data.length;
}
export const engine: BuildInfo = buildInfo();
export const read = async (file: string): Promise<Matrix> => readMatrixNpy(file, 'x');
`;

/** A consumer project: package.json (an ES module package), consumer.ts, the installed package and what its typings import. */
function project(dir: string, withNodeTypes: boolean): string {
  mkdirSync(path.join(dir, 'node_modules', 'brainlatent'), { recursive: true });
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  writeFileSync(path.join(dir, 'consumer.ts'), CONSUMER);
  // the package as installed: its package.json and dist/ (a link; preserveSymlinks keeps the paths under the project,
  // so nothing resolves through the checkout's own node_modules)
  copyFileSync(path.join(root, 'package.json'), path.join(dir, 'node_modules', 'brainlatent', 'package.json'));
  symlinkSync(path.join(root, 'dist'), path.join(dir, 'node_modules', 'brainlatent', 'dist'));
  const linked = ['@sinclair/typebox', 'ajv', 'fast-uri', 'fast-deep-equal', 'json-schema-traverse', 'require-from-string', 'onnxruntime-common'];
  if (withNodeTypes) linked.push('@types/node', 'undici-types');
  for (const name of linked) {
    mkdirSync(path.dirname(path.join(dir, 'node_modules', name)), { recursive: true });
    symlinkSync(path.join(modules, name), path.join(dir, 'node_modules', name));
  }
  return path.join(dir, 'consumer.ts');
}

/** The diagnostics of compiling each consumer file with its settings (test/helpers/compileConsumer.mjs). */
async function compile(jobs: { file: string; settings: Record<string, unknown> }[]): Promise<string[][]> {
  const r = await runCommand(process.execPath, [path.join(root, 'test', 'helpers', 'compileConsumer.mjs')], { input: JSON.stringify(jobs), hangLimitMs: 300_000 });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as string[][];
}

describe("the typings in a consumer's TypeScript project (strict, no skipLibCheck)", () => {
  let withNode = '';
  let withoutNode = '';
  beforeAll(() => {
    distModule('index');
    distModule('ridge/index');
    withNode = project(tempDir('bl-typings-node-'), true);
    withoutNode = project(tempDir('bl-typings-bare-'), false);
  });

  const settings: [string, Record<string, unknown>][] = [
    ['NodeNext', { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', types: ['node'] }],
    ['Node16', { module: 'Node16', moduleResolution: 'Node16', target: 'ES2022', types: ['node'] }],
    ['bundler', { module: 'Preserve', moduleResolution: 'Bundler', target: 'ES2022', types: ['node'] }],
    // (node10 reads no `exports`: the subpaths' typings through package.json's typesVersions)
    ['node10', { module: 'CommonJS', moduleResolution: 'Node10', target: 'ES2022', types: ['node'] }],
    ['@types/node installed, `types: []`', { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', types: [] }],
    ['lib ES2020, no DOM', { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2020', lib: ['ES2020'], types: ['node'] }],
  ];

  it(`compiles with ${settings.map(([name]) => name).join('; ')}; without @types/node, fails naming the package it needs`, async () => {
    // (a node_modules/@types/node above the temporary folders would be found: the last check needs none there)
    const above = path.dirname(path.dirname(withoutNode)).split(path.sep).map((_, i, parts) => parts.slice(0, i + 1).join(path.sep) || path.sep);
    expect(above.filter((d) => existsSync(path.join(d, 'node_modules', '@types', 'node')))).toEqual([]);
    const bare = { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', types: [] };
    const results = await compile([...settings.map(([, s]) => ({ file: withNode, settings: s })), { file: withoutNode, settings: bare }]);
    const withoutTypes = results.pop()!;
    expect(Object.fromEntries(settings.map(([name], i) => [name, results[i]]))).toEqual(Object.fromEntries(settings.map(([name]) => [name, []])));
    expect(withoutTypes).toContain("node_modules/brainlatent/dist/index.d.ts(1) TS2688: Cannot find type definition file for 'node'.");
    expect(withoutTypes).toContain("node_modules/brainlatent/dist/ridge/index.d.ts(1) TS2688: Cannot find type definition file for 'node'.");
  }, 300_000);
});
