/** `brainlatent demo`: builds the demo world and runs the full pipeline on it. */
import { join, resolve } from 'node:path';

import { reconstruct, type ReconstructOptions, type ReconstructResult } from '../pipeline/reconstruct.js';
import type { ReconstructConfigInput } from '../pipeline/config.js';
import { buildDemoWorld, type DemoWorld, type DemoWorldOptions } from './world.js';

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

export interface DemoResult {
  world: DemoWorld;
  run: ReconstructResult;
  worldSeconds: number;
  runSeconds: number;
}

export async function runDemo(options: DemoOptions, control: Omit<ReconstructOptions, 'dryRun'> = {}): Promise<DemoResult> {
  const out = resolve(options.out);
  const t0 = performance.now();
  const world = await buildDemoWorld({ ...options, out: join(out, 'world') });
  const worldSeconds = (performance.now() - t0) / 1000;
  const base = world.config;
  const config: ReconstructConfigInput = {
    ...base,
    ...options.config,
    out: join(out, 'run'),
    nsd: base.nsd as ReconstructConfigInput['nsd'],
    model: base.model as ReconstructConfigInput['model'],
    img2img: { ...base.img2img, seeds: options.seeds ?? base.img2img?.seeds, steps: options.steps ?? base.img2img?.steps, ...options.config?.img2img },
  };
  const t1 = performance.now();
  const run = await reconstruct(config, { ...control, force: control.force ?? true });
  return { world, run, worldSeconds, runSeconds: (performance.now() - t1) / 1000 };
}
