/** `brainlatent demo`: builds (or reuses) the demo world and runs the full pipeline on it. */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import { checkControl } from '../callbackOptions.js';
import { writeJsonAtomic } from '../io/atomicWrite.js';
import { configHash, resolveConfig, type ReconstructConfigInput } from '../pipeline/config.js';
import { reconstruct, type ReconstructOptions, type ReconstructResult } from '../pipeline/reconstruct.js';
import { newerRecipeStages, runFolderConflict } from '../pipeline/runFolder.js';
import type { Img2imgRule } from '../sd/samplingOptions.js';
import { checkDemoOptions } from './options.js';
import { buildDemoWorld, plannedDemoWorld, type DemoWorld, type DemoWorldOptions, type DemoWorldProgress } from './world.js';
import { readWorldManifest } from './worldManifest.js';

export interface DemoOptions extends Omit<DemoWorldOptions, 'out'> {
  /** Folder for the world (world/) and the run (run/). */
  out: string;
  /** Samples per image (default 5, as Takagi & Nishimoto). */
  seeds?: number;
  /** DDIM steps (default 50). */
  steps?: number;
  /** img2img noise rule (img2img.rule; default the pipeline's, 'compvis'): 'diffusers' for few steps. */
  rule?: Img2imgRule;
  /** Overrides of the pipeline config. */
  config?: Partial<Omit<ReconstructConfigInput, 'out' | 'nsd' | 'model'>>;
}

/** runDemo's second argument: the reconstruction's options (progress, signal, …) and the world build's progress. */
export interface DemoControl extends ReconstructOptions {
  /** Progress of the world build (not called when the world is reused, except once with phase 'reused'). */
  onWorldProgress?: (p: DemoWorldProgress) => void;
}

export interface DemoResult {
  world: DemoWorld;
  run: ReconstructResult;
  worldSeconds: number;
  runSeconds: number;
}

/** The pipeline config of a demo run in `out`/run over `world`. */
export function demoRunConfig(options: DemoOptions, world: DemoWorld): ReconstructConfigInput {
  const base = world.config;
  return {
    ...base,
    ...options.config,
    out: join(resolve(options.out), 'run'),
    nsd: base.nsd as ReconstructConfigInput['nsd'],
    model: base.model as ReconstructConfigInput['model'],
    img2img: { ...base.img2img, seeds: options.seeds ?? base.img2img?.seeds, steps: options.steps ?? base.img2img?.steps, ...(options.rule ? { rule: options.rule } : {}), ...options.config?.img2img },
  };
}

/**
 * Builds the world unless an identical one is in `out`/world (same parameters, same code), then runs the
 * pipeline in `out`/run. With a reused world the run resumes (finished stages are skipped); a rebuilt world,
 * other settings, or `force` redo every stage. `dryRun` plans the run and estimates each stage (the world is built
 * first where none is current; with `force` the current one is kept, and the plan redoes every stage).
 */
export async function runDemo(options: DemoOptions, control: DemoControl = {}): Promise<DemoResult> {
  // every option is checked before anything is built or written, the run's config (with `config`'s overrides) too
  const strength = options.config?.img2img?.strength;
  checkDemoOptions(options, typeof strength === 'number' && strength > 0 && strength <= 1 ? strength : undefined);
  checkControl(control, 'runDemo', ['onProgress', 'onWarning', 'onWorldProgress']);
  resolveConfig(demoRunConfig(options, plannedDemoWorld({ ...options, out: join(resolve(options.out), 'world') })), 'demo config');
  const out = resolve(options.out);
  const t0 = performance.now();
  // A dry run builds a world only where none is current (its probes need one): with `force` it keeps the current
  // one (the run would rebuild it) rather than delete and rebuild it, work a dry run is there to avoid.
  const world = await buildDemoWorld(
    { ...options, out: join(out, 'world') },
    { force: control.force && !control.dryRun, onProgress: control.onWorldProgress, signal: control.signal },
  );
  const worldSeconds = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  const config = demoRunConfig(options, world);
  const stale = await demoRunStaleReason(out, world, config);
  // (a dry run plans what the run would do: with a rebuilt world, every stage; it writes nothing either way)
  const run = await reconstruct(config, { ...control, force: control.force || stale !== null });
  // the plan's clearing line names --force, which the demo implied here, not the user
  if (run.plan && stale && !control.force) run.plan = impliedForcePlan(run.plan, stale);
  const built = await readWorldManifest(join(out, 'world'));
  if (!control.dryRun && built) {
    const stamp = join(config.out, RUN_STAMP);
    await writeJsonAtomic(stamp, { key: built.key, createdAt: built.createdAt });
  }
  return { world, run, worldSeconds, runSeconds: (performance.now() - t1) / 1000 };
}

/** In the run folder: the build of the world (its key and creation time) the run was made from. */
const RUN_STAMP = 'demo-world.json';

/**
 * Whether the demo's run folder must be redone rather than resumed: the world was rebuilt, the run was made
 * from another build of it (or says nothing of one), or the folder holds a run of other settings.
 */
export async function demoRunStale(out: string, world: DemoWorld, config: ReconstructConfigInput): Promise<boolean> {
  return (await demoRunStaleReason(out, world, config)) !== null;
}

/** Why the demo's run folder is redone rather than resumed (demoRunStale), in words; null when it resumes. */
export async function demoRunStaleReason(out: string, world: DemoWorld, config: ReconstructConfigInput): Promise<string | null> {
  if (!world.reused) return 'the world was built anew';
  const built = await readWorldManifest(join(resolve(out), 'world'));
  const madeFrom = await readRunStamp(join(resolve(config.out), RUN_STAMP));
  if (!built || madeFrom?.key !== built.key || madeFrom.createdAt !== built.createdAt) return 'the run was made from another build of the world';
  const resolved = resolveConfig(config);
  if ((await runFolderConflict(resolved)) === null) return null;
  // (a run of this version's settings whose stages a newer brainlatent made: its own folder, redone, said so)
  const newer = await newerRecipeStages(resolved.out, configHash(resolved));
  return newer.length ? `the run was made by a newer brainlatent (${newer.map((s) => `${s.stage}${s.by ? `, ${s.by}` : ''}`).join('; ')})` : "the run's settings changed";
}

/**
 * A dry run's plan with its clearing line said as the demo's: "--force: first removes …" → "the run's settings
 * changed, so the run starts over (no --force needed): it first removes …".
 */
export function impliedForcePlan(plan: string[], why: string): string[] {
  return plan.map((l) => l.replace(/^--force: first removes/, `${why}, so the run starts over (no --force needed): it first removes`));
}

/** Which build of the world a demo run was made from, or null. */
async function readRunStamp(path: string): Promise<{ key: string; createdAt: string } | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as { key: string; createdAt: string };
  } catch {
    return null;
  }
}
