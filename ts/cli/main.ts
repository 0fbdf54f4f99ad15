#!/usr/bin/env node
/** The brainlatent CLI: registers one command module per job; each calls public library functions. */
import type { Command as CommandType } from 'commander';
import { existsSync, readFileSync, statSync } from 'node:fs';
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
import { refuseContradictions, refuseFlagsAsValues } from './optionWords.js';
import { guessUnknownCommands, namesUnknownSubcommand } from './commandGuesses.js';

// BRAINLATENT_DEBUG prints an error's stack: at lines of ts/, through the source maps (a command runs bundled).
if (process.env.BRAINLATENT_DEBUG) process.setSourceMapsEnabled(true);

// commander through require: its ESM wrapper costs the CommonJS export scan at every start-up.
const { Command } = createRequire(import.meta.url)('commander') as typeof import('commander');

type Register = (program: CommandType) => void;
// One module per command, loaded only when that command runs: the service, the batch layer and the
// pipelines pull in large dependency trees (Fastify, BullMQ, ajv, …) that `ridge fit` must not pay
// for at start-up. `--version` loads none, `help <command>` that command's alone; the program's own
// help and unknown commands load them all (in this order, the help's). Each maps to the function its
// module exports.
const COMMANDS: Record<string, string> = {
  demo: 'registerDemoCommand',
  reconstruct: 'registerReconstructCommand',
  evaluate: 'registerEvaluateCommand',
  encode: 'registerEncodeCommand',
  batch: 'registerBatchCommand',
  worker: 'registerWorkerCommand',
  ridge: 'registerRidgeCommand',
  nsd: 'registerNsdCommand',
  cache: 'registerCacheCommand',
  sd: 'registerSdCommand',
  synth: 'registerSynthCommand',
  serve: 'registerServeCommand',
  bench: 'registerBenchCommand',
};

/**
 * The bundle exists and holds the modules beside it: each module it was built from (listed beside it by the build,
 * <name>.bundle.inputs.json, with their sizes) is there with the same size, and, in a checkout (tsconfig.json beside
 * package.json), none is newer than the bundle. A `tsc` run rewrites modules and no bundle, and `tsc --watch` or
 * `--incremental` only the modules that changed, not the command's own; a package packed with `--ignore-scripts`
 * after such a run ships the older bundles, and there file times say nothing (npm gives each file the time it
 * extracted it, in the tarball's order: a bundle comes out a few ms before its modules), sizes do. (An edit that
 * keeps every module's size goes unseen there: hashing the modules would cost every start-up milliseconds.)
 */
function bundleIsCurrent(bundle: URL): boolean {
  const b = statSync(bundle, { throwIfNoEntry: false });
  if (b === undefined) return false;
  let inputs: unknown;
  try {
    inputs = JSON.parse(readFileSync(new URL(bundle.href.replace(/\.js$/, '.inputs.json')), 'utf8'));
  } catch {
    return false;
  }
  if (inputs === null || typeof inputs !== 'object' || Array.isArray(inputs)) return false;
  const modules = Object.entries(inputs);
  if (modules.length === 0) return false;
  const checkout = existsSync(new URL('../../tsconfig.json', import.meta.url));
  // (~50 stats, well under a millisecond)
  return modules.every(([f, size]) => {
    const m = statSync(new URL(f, bundle), { throwIfNoEntry: false });
    return m !== undefined && m.size === size && (!checkout || m.mtimeMs <= b.mtimeMs);
  });
}

/**
 * A command's register function. One command alone runs from its bundle where the build made one
 * (commands/<name>.bundle.js, scripts/bundle-cli.mjs): one file loads in a third of the time of its
 * ~50 modules. Several load as tsc wrote them, so that they share one copy of each module; so does
 * every command with BRAINLATENT_UNBUNDLED=1 (the tests compare the two).
 */
async function loadCommand(name: string, alone: boolean): Promise<Register> {
  const module = new URL(`./commands/${name}.js`, import.meta.url), bundle = new URL(`./commands/${name}.bundle.js`, import.meta.url);
  const bundled = alone && process.env.BRAINLATENT_UNBUNDLED !== '1' && bundleIsCurrent(bundle);
  const mod = (await import(bundled ? bundle.href : module.href)) as Record<string, unknown>;
  const register = mod[COMMANDS[name]];
  if (typeof register !== 'function') throw new Error(`the module of command '${name}' exports no ${COMMANDS[name]}()`);
  return register as Register;
}

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
for (const name of names) (await loadCommand(name, names.length === 1))(program);
// an unknown subcommand of a group (`sd extract`) may be another group's or a top-level command (guessSubcommands):
// the others are loaded for the guess, on this error's path alone
if (names.length === 1 && namesUnknownSubcommand(program, args)) {
  for (const name of Object.keys(COMMANDS)) if (name !== names[0]) (await loadCommand(name, false))(program);
}
describeHelpCommand(program);
pointGroupErrorsToTheirHelp(program);
guessUnknownCommands(program);
checkRequiredOptionsLast(program);
refuseFlagsAsValues(program);
refuseContradictions(program);
exitAfterFinishedCommands(program);
ignoreClosedStdout(program);

program.parseAsync(unknownCommandArgs(program, args), { from: 'user' }).catch((err: unknown) => {
  const msg = err instanceof Error ? err.message : String(err);
  const kind = err instanceof BrainlatentError ? err.name : 'error';
  process.stderr.write(`brainlatent: ${kind}: ${msg}\n`);
  if (process.env.BRAINLATENT_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
