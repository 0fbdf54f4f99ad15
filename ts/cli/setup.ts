/**
 * CLI-wide commander settings, applied in main.ts: errors as one line prefixed "brainlatent:", a hint to --help
 * instead of the whole help after an error, required options checked after unknown options, and commands that
 * exit as soon as their work is done.
 */
import type { Command, Option } from 'commander';

/** Before registering commands (subcommands inherit these settings when created). */
export function configureProgram(program: Command): void {
  program
    .configureOutput({ outputError: (text, write) => write(`brainlatent: ${text}`) })
    .showHelpAfterError('(add --help for usage)');
}

/**
 * After registering commands. Commander checks required options before it reports unknown ones, so a mistyped
 * `--xx` came out as "required option '--x' not specified"; here required options are checked in a preAction hook,
 * which runs after commander has reported unknown options, and the error names the missing option alone.
 */
export function checkRequiredOptionsLast(program: Command): void {
  const required = new Map<Command, Option[]>();
  const walk = (cmd: Command) => {
    const opts = cmd.options.filter((o) => o.mandatory);
    for (const o of opts) o.mandatory = false;
    if (opts.length) required.set(cmd, opts);
    cmd.commands.forEach(walk);
  };
  walk(program);
  program.hook('preAction', (_root, action) => {
    for (let c: Command | null = action; c; c = c.parent) {
      for (const o of required.get(c) ?? []) {
        if (c.getOptionValue(o.attributeName()) === undefined) {
          c.error(`error: required option '${o.flags}' not specified`, { code: 'commander.missingMandatoryOptionValue' });
        }
      }
    }
  });
}

const exitsWhenDone = new WeakSet<Command>();

/**
 * Marks a command whose work is over, its outputs durable, when its action resolves: it leaves no server, worker,
 * timer or unawaited write behind. Not for commands that keep running after their action returns (serve).
 */
export function exitWhenDone(cmd: Command): Command {
  exitsWhenDone.add(cmd);
  return cmd;
}

/**
 * In main.ts: once the action of a command marked by `exitWhenDone` has resolved, the process exits at once (stdout
 * and stderr are synchronous on POSIX: nothing printed is lost) rather than after Node tears down the heap and the
 * engine (~10 ms of `ridge fit`).
 */
export function exitAfterFinishedCommands(program: Command): void {
  program.hook('postAction', (_root, action) => {
    if (exitsWhenDone.has(action)) process.exit();
  });
}
