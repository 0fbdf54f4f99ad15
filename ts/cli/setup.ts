/**
 * CLI-wide commander settings, applied in main.ts: errors as one line prefixed "brainlatent:", a hint to --help
 * instead of the whole help after an error, and required options checked after unknown options.
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
