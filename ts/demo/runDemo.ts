/** `brainlatent demo`: builds (or reuses) the demo world and runs the full pipeline on it. */
import { join, resolve } from 'node:path';

import { resolveConfig, type ReconstructConfigInput } from '../pipeline/config.js';
import { reconstruct, type ReconstructOptions, type ReconstructResult } from '../pipeline/reconstruct.js';
import { runFolderConflict } from '../pipeline/runFolder.js';
import { buildDemoWorld, type DemoWorld, type DemoWorldOptions, type DemoWorldProgress } from './world.js';

export interface DemoOptions extends Omit<DemoWorldOptions, 'out'> {
  /** Folder for the world (world/) and the run (run/). */
  out: string;
  /** Samples per image (default 5, as Takagi & Nishimoto). */
  seeds?: number;
  /** DDIM steps (default 50). */
  steps?: number;
  /** Overrides of the pipeline config. */
  config?: Partial<Omit<ReconstructConfigInput, 'out' | 'nsd' | 'model'>>;
}

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
    img2img: { ...base.img2img, seeds: options.seeds ?? base.img2img?.seeds, steps: options.steps ?? base.img2img?.steps, ...options.config?.img2img },
  };
}

/**
 * Builds the world unless an identical one is in `out`/world (same parameters, same code), then runs the
 * pipeline in `out`/run. With a reused world the run resumes (finished stages are skipped); a rebuilt world,
 * other settings, or `force` redo every stage. `dryRun` plans the run and estimates each stage (the world is built first).
 */
export async function runDemo(options: DemoOptions, control: DemoControl = {}): Promise<DemoResult> {
  const out = resolve(options.out);
  const t0 = performance.now();
  const world = await buildDemoWorld({ ...options, out: join(out, 'world') }, { force: control.force, onProgress: control.onWorldProgress });
  const worldSeconds = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  const config = demoRunConfig(options, world);
  // the demo owns its run folder: a run of other settings there is replaced rather than refused
  const stale = !world.reused || (await runFolderConflict(resolveConfig(config))) !== null;
  const run = await reconstruct(config, { ...control, force: control.force || (stale && !control.dryRun) });
  return { world, run, worldSeconds, runSeconds: (performance.now() - t1) / 1000 };
}
