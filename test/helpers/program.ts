/** The whole `brainlatent` command tree, registered in this process, for tests of every command's help. */
import { Command } from 'commander';

import { registerBatchCommand } from '../../ts/cli/commands/batch.js';
import { registerBenchCommand } from '../../ts/cli/commands/bench.js';
import { registerCacheCommand } from '../../ts/cli/commands/cache.js';
import { registerDemoCommand } from '../../ts/cli/commands/demo.js';
import { registerEncodeCommand } from '../../ts/cli/commands/encode.js';
import { registerEvaluateCommand } from '../../ts/cli/commands/evaluate.js';
import { registerNsdCommand } from '../../ts/cli/commands/nsd.js';
import { registerReconstructCommand } from '../../ts/cli/commands/reconstruct.js';
import { registerRidgeCommand } from '../../ts/cli/commands/ridge.js';
import { registerSdCommand } from '../../ts/cli/commands/sd.js';
import { registerServeCommand } from '../../ts/cli/commands/serve.js';
import { registerSynthCommand } from '../../ts/cli/commands/synth.js';
import { registerWorkerCommand } from '../../ts/cli/commands/worker.js';

/** The program as `brainlatent` registers it (ts/cli/main.ts's COMMANDS). */
export function wholeProgram(): Command {
  const program = new Command('brainlatent');
  for (const register of [
    registerDemoCommand, registerReconstructCommand, registerEvaluateCommand, registerEncodeCommand, registerBatchCommand, registerWorkerCommand, registerRidgeCommand,
    registerNsdCommand, registerCacheCommand, registerSdCommand, registerSynthCommand, registerServeCommand, registerBenchCommand,
  ]) register(program);
  return program;
}

/** Every command of the tree, with its full name ("ridge fit"). */
export function allCommands(c: Command, prefix = ''): { name: string; command: Command }[] {
  return c.commands.flatMap((sub) => {
    const name = `${prefix}${sub.name()}`;
    return [{ name, command: sub }, ...allCommands(sub, `${name} `)];
  });
}

/** A command of the tree by its full name. */
export function commandNamed(name: string): Command {
  const found = allCommands(wholeProgram()).find((c) => c.name === name);
  if (!found) throw new Error(`no command '${name}'`);
  return found.command;
}
