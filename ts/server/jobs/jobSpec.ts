/**
 * A validated job body → a JobSpec a runner can run: every path the config's schema declares is resolved inside
 * the root (all refusals listed at once, like any other problem), then the config goes through the same
 * resolution as on the CLI (alpha grids parsed, cross-field checks), so the runner gets exactly what
 * `brainlatent reconstruct --config` would run.
 */
import { join } from 'node:path';

import type { TSchema } from '@sinclair/typebox';

import { checkOutputPath } from '../../cli/outputPath.js';
import { FlagProblems } from '../../cli/problems.js';
import { ManifestError, resolveManifest, type ResolvedBatch } from '../../batch/manifest.js';
import { resolveAlphaGrid } from '../../config/alphaGrid.js';
import { ConfigError, configPaths, EncodeConfigSchema, mapConfigPaths, ReconstructConfigSchema, resolveEncodeConfig } from '../../config/index.js';
import { RidgeFitConfigSchema, type RidgeFitConfig } from '../../config/ridgeFit.js';
import { DEMO_OUT_WHAT } from '../../demo/options.js';
import { resolveConfig } from '../../pipeline/config.js';
import { MAX_FOLDS } from '../../ridge/options.js';
import { PathOutsideRootError, type RootFolder } from '../rootPaths.js';
import { DemoJobSchema } from '../schemas.js';
import { RequestValidationError } from '../validation.js';
import type { DemoJobInput, JobInput } from './executeJob.js';
import { newJobId, type JobSpec } from './JobRunner.js';
import { batchPreflightProblems, encodePreflightProblems, reconstructPreflightProblems } from './jobPreflight.js';
import { ridgeFitInputProblems, ridgeFitProblems } from './ridgeFitJob.js';
import type { JobKind } from './types.js';

/** Where the plans and summaries of the batches behind single jobs go (hidden: not a run folder). */
export const BATCHES_DIR = join('.brainlatent', 'batches');

export type JobBody =
  | { kind: 'reconstruct'; config: Record<string, unknown>; force: boolean }
  | { kind: 'encode'; config: Record<string, unknown>; force: boolean }
  | { kind: 'batch'; manifest: Record<string, unknown> }
  | { kind: 'ridge-fit'; config: Record<string, unknown> }
  | ({ kind: 'demo' } & DemoJobInput);

/** A 400 listing the problems, when there are any. */
function refuse(problems: string[]): void {
  if (problems.length) throw new RequestValidationError('body', problems);
}

/**
 * Paths resolved inside the root, each refusal (a path outside it) kept in `problems` so that a request is refused
 * once for all of them; any other error is thrown.
 */
function pathsInside(root: RootFolder) {
  const problems: string[] = [];
  const resolve = async (p: string, field: string): Promise<string | undefined> => {
    try {
      return await root.resolve(p, field);
    } catch (e) {
      if (!(e instanceof PathOutsideRootError)) throw e;
      problems.push(e.message);
      return undefined;
    }
  };
  return { problems, resolve };
}

/** The config with every declared path resolved inside the root; throws a 400 listing every path refused. */
async function confineConfig<T>(root: RootFolder, schema: TSchema, config: T, source: string): Promise<T> {
  const resolved = new Map<string, string>();
  const inside = pathsInside(root);
  for (const p of configPaths(schema, config)) {
    const r = await inside.resolve(p.value, `${source}.${p.field}`);
    if (r !== undefined) resolved.set(p.field, r);
  }
  refuse(inside.problems);
  return mapConfigPaths(schema as never, config, ({ field, value }) => resolved.get(field) ?? value) as T;
}

/** The manifest's paths as written ('..' is refused before templates are expanded and paths resolved). */
async function confineManifest(root: RootFolder, m: Record<string, unknown>): Promise<void> {
  const inside = pathsInside(root);
  const check = async (p: unknown, field: string) => {
    if (typeof p === 'string') await inside.resolve(p, field);
  };
  const manifest = m as { out?: unknown; nsd?: { root?: unknown }; subjects?: unknown[]; analyses?: { kind?: string; config?: unknown }[] };
  await check(manifest.out, 'body.manifest.out');
  await check(manifest.nsd?.root, 'body.manifest.nsd.root');
  for (const [i, sub] of (manifest.subjects ?? []).entries()) await check((sub as { root?: unknown })?.root, `body.manifest.subjects[${i}].root`);
  for (const [i, a] of (manifest.analyses ?? []).entries()) {
    const schema = a?.kind === 'encode' ? EncodeConfigSchema : ReconstructConfigSchema;
    for (const p of configPaths(schema, a?.config ?? {})) await check(p.value, `body.manifest.analyses[${i}].config.${p.field}`);
  }
  refuse(inside.problems);
}

/** Every path of every expanded config of a batch, and its output folder, inside the root; throws a 400 listing each one outside. */
async function confineBatch(root: RootFolder, batch: ResolvedBatch): Promise<void> {
  const { problems, resolve: check } = pathsInside(root);
  await check(batch.out, 'body.manifest.out');
  for (const s of batch.subjects) {
    for (const a of s.analyses) {
      const where = `body.manifest (${s.name}/${a.name}) config`;
      for (const p of configPaths(a.kind === 'reconstruct' ? ReconstructConfigSchema : EncodeConfigSchema, a.config)) await check(p.value, `${where}.${p.field}`);
      if (a.kind === 'reconstruct' && (a.config as { model: { ortLibrary: string | null } }).model.ortLibrary) {
        problems.push(`${where}.model.ortLibrary: must be null in the service (its operator chooses ONNX Runtime with BRAINLATENT_ORT_LIB)`);
      }
    }
  }
  refuse([...new Set(problems)]);
}

/** A check of an output path's refusal (an InvalidArgumentError naming its field) as a 400's problems. */
async function outputProblems(check: () => Promise<void>): Promise<string[]> {
  const p = new FlagProblems();
  await p.takeAsync(check);
  return p.lines;
}

/** The library's resolver's result; its ConfigError or ManifestError becomes a 400 with its problems. */
function resolvedOr400<T>(resolve: () => T): T {
  try {
    return resolve();
  } catch (e) {
    if (e instanceof ConfigError || e instanceof ManifestError) throw new RequestValidationError('body', e.problems);
    throw e;
  }
}

/**
 * A job body the route's schema refused, with the problems its config's own checks find besides (an alpha grid
 * that does not parse, zscoreDdof without a z-score, …), so that a client sees every problem at once, as the CLI
 * and the library list them, not the schema's first and the rest on the next try. A ridge-fit's files are checked
 * too, as `ridge fit` lists a bad --folds with a missing --x (its checks need no resolved config).
 */
export async function withConfigProblems(refused: Error, body: unknown, root: RootFolder): Promise<Error> {
  if (!(refused instanceof RequestValidationError)) return refused;
  const b = (body ?? {}) as { kind?: unknown; config?: unknown };
  const config = (b.config ?? {}) as { alphas?: unknown };
  const more: string[] = [];
  try {
    if (b.kind === 'reconstruct') resolveConfig(b.config, 'body.config');
    else if (b.kind === 'encode') resolveEncodeConfig(b.config, 'body.config');
    else if (b.kind === 'ridge-fit') {
      if (typeof config.alphas === 'string') resolveAlphaGrid(config.alphas, 'body.config.alphas', more);
      more.push(...(await ridgeFitFileProblems(root, config)));
    }
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    more.push(...e.problems);
  }
  // (the schema's refusal may be of another part, the query string's when the body passed: each keeps its own)
  const bodyProblems = refused.parts.body ?? [];
  const all = [...new Set([...bodyProblems, ...more])];
  return all.length === bodyProblems.length ? refused : new RequestValidationError({ ...refused.parts, body: all });
}

/**
 * A ridge-fit config the schema refused: what its out and its inputs (those of them that are strings, confined to
 * the root) and its folds (when a valid count) would be refused for besides, by ridgeFitProblems' checks.
 */
async function ridgeFitFileProblems(root: RootFolder, config: Record<string, unknown>): Promise<string[]> {
  const inside = pathsInside(root);
  const path = async (field: string) => {
    const v = config[field];
    return typeof v === 'string' && v.trim() !== '' ? inside.resolve(v, `body.config.${field}`) : undefined;
  };
  const [out, x, y, groups] = [await path('out'), await path('x'), await path('y'), await path('groups')];
  const f = config.folds ?? 5;
  const folds = Number.isInteger(f) && (f as number) >= 2 && (f as number) <= MAX_FOLDS ? (f as number) : undefined;
  return [...inside.problems, ...(await ridgeFitInputProblems({ out, x, y, groups, folds }))];
}

export interface JobSpecOptions {
  /** Jobs may run on other machines (Redis workers): a data folder missing here is left to the job (jobPreflight.ts). */
  elsewhere?: boolean;
}

export async function jobSpecOf(body: JobBody, root: RootFolder, options: JobSpecOptions = {}): Promise<JobSpec> {
  // (the root goes with the job: its model files must lie in it wherever it runs, a worker elsewhere included; the
  // preflight's too, on its thread: not the process's roots, which are every service's of the process)
  const modelRoots = [root.path];
  const spec = (kind: JobKind, out: string, input: JobInput): JobSpec => ({ id: newJobId(kind), kind, out, outShown: root.relative(out), input, modelRoots });
  const batchesDir = join(root.path, BATCHES_DIR);
  switch (body.kind) {
    case 'reconstruct': {
      const config = await confineConfig(root, ReconstructConfigSchema, body.config, 'body.config');
      const model = config.model as { ortLibrary?: string | null } | undefined;
      if (model?.ortLibrary) {
        throw new RequestValidationError('body', ['body.config.model.ortLibrary: must be null in the service (its operator chooses ONNX Runtime with BRAINLATENT_ORT_LIB)']);
      }
      const resolved = resolvedOr400(() => resolveConfig(config, 'body.config'));
      // what the job's own preflight would refuse is refused now, before it is queued or writes anything
      refuse(await reconstructPreflightProblems(resolved, body.force, options.elsewhere ?? false, modelRoots));
      return spec('reconstruct', resolved.out, { kind: 'reconstruct', config: resolved, force: body.force, batchesDir });
    }
    case 'ridge-fit': {
      const config = await confineConfig(root, RidgeFitConfigSchema, body.config, 'body.config');
      const problems: string[] = [];
      const alphas = resolveAlphaGrid(config.alphas as string | number[], 'body.config.alphas', problems);
      refuse(problems);
      const resolved = { ...(config as unknown as RidgeFitConfig), alphas };
      // what `ridge fit` checks before it reads X and Y (the out folder, the inputs' headers, rows, folds, groups,
      // the budget) is refused now, not after the job has queued and read them, or fitted (an out that is a file)
      refuse(await ridgeFitProblems(resolved));
      return spec('ridge-fit', resolved.out, { kind: 'ridge-fit', config: resolved });
    }
    case 'demo': {
      const { kind: _kind, ...demo } = body;
      const out = await confineConfig(root, DemoJobSchema, body, 'body').then((b) => b.out);
      // as `demo --out`: a folder (an existing file was accepted, then the job failed on ENOTDIR)
      refuse(await outputProblems(() => checkOutputPath('body.out', out, 'folder', DEMO_OUT_WHAT)));
      return spec('demo', out, { kind: 'demo', demo: { ...demo, out } });
    }
    case 'encode': {
      const config = await confineConfig(root, EncodeConfigSchema, body.config, 'body.config');
      const resolved = resolvedOr400(() => resolveEncodeConfig(config, 'body.config'));
      // as a reconstruct job's: what encode's own preflight would refuse is refused now, before anything is queued or written
      refuse(await encodePreflightProblems(resolved, body.force, options.elsewhere ?? false, modelRoots));
      return spec('encode', resolved.out, { kind: 'encode', config: resolved, force: body.force, batchesDir });
    }
    case 'batch': {
      await confineManifest(root, body.manifest);
      const batch = resolvedOr400(() => resolveManifest(body.manifest, { source: 'body.manifest', baseDir: root.path }));
      await confineBatch(root, batch);
      // every subject × analysis's preflight, as `batch submit` checks them
      refuse(await batchPreflightProblems(batch, options.elsewhere ?? false, modelRoots));
      return spec('batch', batch.out, { kind: 'batch', batch });
    }
  }
}
