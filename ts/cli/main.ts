#!/usr/bin/env node
/** The brainlatent CLI: registers one command module per job; each calls public library functions. */
import type { Command as CommandType } from 'commander';
import { createRequire } from 'node:module';

import { BrainlatentError } from '../errors.js';
import {
  checkRequiredOptionsLast,
  configureProgram,
  describeHelpCommand,
  exitAfterFinishedCommands,
  ignoreClosedStdout,
  helpArgs,
  pointGroupErrorsToTheirHelp,
  unknownCommandArgs,
} from './setup.js';

// commander through require: its ESM wrapper costs the CommonJS export scan at every start-up.
const { Command } = createRequire(import.meta.url)('commander') as typeof import('commander');

type Register = (program: CommandType) => void;
// One module per command, loaded only when that command runs: the service, the batch layer and the
// pipelines pull in large dependency trees (Fastify, BullMQ, ajv, …) that `ridge fit` must not pay
// for at start-up. `--version` loads none, `help <command>` that command's alone; the program's own
// help and unknown commands load them all (in this order, the help's).
const COMMANDS: Record<string, () => Promise<Register>> = {
  demo: async () => (await import('./commands/demo.js')).registerDemoCommand,
  reconstruct: async () => (await import('./commands/reconstruct.js')).registerReconstructCommand,
  encode: async () => (await import('./commands/encode.js')).registerEncodeCommand,
  batch: async () => (await import('./commands/batch.js')).registerBatchCommand,
  worker: async () => (await import('./commands/worker.js')).registerWorkerCommand,
  ridge: async () => (await import('./commands/ridge.js')).registerRidgeCommand,
  nsd: async () => (await import('./commands/nsd.js')).registerNsdCommand,
  cache: async () => (await import('./commands/cache.js')).registerCacheCommand,
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

/** The command modules this command line needs. */
function commandsFor(args: string[]): string[] {
  const known = (name: string | undefined) => name !== undefined && Object.hasOwn(COMMANDS, name);
  const [first, second] = args;
  if (first === '--version' || first === '-V') return [];
  if (known(first)) return [first];
  if (first === 'help' && known(second)) return [second];
  return Object.keys(COMMANDS);
}

const args = helpArgs(process.argv.slice(2));
const names = commandsFor(args);
for (const name of names) (await COMMANDS[name]())(program);
describeHelpCommand(program);
pointGroupErrorsToTheirHelp(program);
checkRequiredOptionsLast(program);
exitAfterFinishedCommands(program);
ignoreClosedStdout(program);

program.parseAsync(unknownCommandArgs(program, args), { from: 'user' }).catch((err: unknown) => {
  const msg = err instanceof Error ? err.message : String(err);
  const kind = err instanceof BrainlatentError ? err.name : 'error';
  process.stderr.write(`brainlatent: ${kind}: ${msg}\n`);
  if (process.env.BRAINLATENT_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
