#!/usr/bin/env node
/** The brainlatent CLI: registers one command module per job; each calls public library functions. */
import { Command } from 'commander';

import { BrainlatentError } from '../errors.js';
import { registerBatchCommand } from './commands/batch.js';
import { registerBenchCommand } from './commands/bench.js';
import { registerDemoCommand } from './commands/demo.js';
import { registerEncodeCommand } from './commands/encode.js';
import { registerNsdCommand } from './commands/nsd.js';
import { registerReconstructCommand } from './commands/reconstruct.js';
import { registerRidgeCommand } from './commands/ridge.js';
import { registerSdCommand } from './commands/sd.js';
import { registerServeCommand } from './commands/serve.js';
import { registerSynthCommand } from './commands/synth.js';
import { registerWorkerCommand } from './commands/worker.js';
import { checkRequiredOptionsLast, configureProgram } from './setup.js';

const program = new Command();
program
  .name('brainlatent')
  .description(
    'Reconstruct seen images from fMRI with a latent diffusion model (Takagi & Nishimoto 2023) and fit voxel-wise encoding models.',
  )
  .version('0.1.0');
configureProgram(program);

registerDemoCommand(program);
registerReconstructCommand(program);
registerEncodeCommand(program);
registerBatchCommand(program);
registerWorkerCommand(program);
registerRidgeCommand(program);
registerNsdCommand(program);
registerSdCommand(program);
registerSynthCommand(program);
registerServeCommand(program);
registerBenchCommand(program);
checkRequiredOptionsLast(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  const msg = err instanceof Error ? err.message : String(err);
  const kind = err instanceof BrainlatentError ? err.name : 'error';
  process.stderr.write(`brainlatent: ${kind}: ${msg}\n`);
  if (process.env.BRAINLATENT_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
