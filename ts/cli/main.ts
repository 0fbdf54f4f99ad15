#!/usr/bin/env node
/** The brainlatent CLI: registers one command module per job; each calls public library functions. */
import { Command } from 'commander';

import { BrainlatentError } from '../errors.js';
import { checkRequiredOptionsLast, configureProgram } from './setup.js';

type Register = (program: Command) => void;
// One module per command, loaded only when that command runs: the service, the batch layer and the
// pipelines pull in large dependency trees (Fastify, BullMQ, ajv, …) that `ridge fit` must not pay
// for at start-up. Help, version and unknown commands load them all (in this order, the help's).
const COMMANDS: Record<string, () => Promise<Register>> = {
  demo: async () => (await import('./commands/demo.js')).registerDemoCommand,
  reconstruct: async () => (await import('./commands/reconstruct.js')).registerReconstructCommand,
  encode: async () => (await import('./commands/encode.js')).registerEncodeCommand,
  batch: async () => (await import('./commands/batch.js')).registerBatchCommand,
  worker: async () => (await import('./commands/worker.js')).registerWorkerCommand,
  ridge: async () => (await import('./commands/ridge.js')).registerRidgeCommand,
  nsd: async () => (await import('./commands/nsd.js')).registerNsdCommand,
  sd: async () => (await import('./commands/sd.js')).registerSdCommand,
  synth: async () => (await import('./commands/synth.js')).registerSynthCommand,
  serve: async () => (await import('./commands/serve.js')).registerServeCommand,
  bench: async () => (await import('./commands/bench.js')).registerBenchCommand,
};

const program = new Command();
program
  .name('brainlatent')
  .description(
    'Reconstruct seen images from fMRI with a latent diffusion model (Takagi & Nishimoto 2023) and fit voxel-wise encoding models.',
  )
  .version('0.1.0');
configureProgram(program);

const wanted = process.argv[2];
const names = wanted !== undefined && Object.hasOwn(COMMANDS, wanted) ? [wanted] : Object.keys(COMMANDS);
for (const name of names) (await COMMANDS[name]())(program);
checkRequiredOptionsLast(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  const msg = err instanceof Error ? err.message : String(err);
  const kind = err instanceof BrainlatentError ? err.name : 'error';
  process.stderr.write(`brainlatent: ${kind}: ${msg}\n`);
  if (process.env.BRAINLATENT_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
