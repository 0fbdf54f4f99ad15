/**
 * CLI-wide checks of the words given to options, applied in main.ts after the commands are registered: a flag is
 * never taken as the value of the option before it.
 */
import type { Command, Option, ParseOptionsResult } from 'commander';

const HELP_FLAGS = new Set(['--help', '-h']);

/** The option is `word` (commander's Option.is, which its typings leave out). */
const names = (o: Option, word: string) => o.long === word || o.short === word;

/** `value` as a message names it when it looks like a flag rather than a value, or null when it is a value. */
function flagLike(cmd: Command, value: string): string | null {
  if (HELP_FLAGS.has(value) || cmd.options.some((o) => names(o, value))) return `the flag ${value}`;
  if (value === '--') return "'--', the end of the options";
  // (any `--word`, not only this command's flags: `--out --dry-rn` would write to a file '--dry-rn'; a single dash is
  // left alone, so that `--seed -1` reaches the numeric check that refuses it in its own words)
  if (value.startsWith('--')) return `'${value}', which reads as a flag`;
  return null;
}

/**
 * Before parsing: an option that takes a value, followed by a flag (`--out --dry-run`), is refused at once, naming
 * both. Commander takes any next word as the value: `ridge fit … --out --dry-run` fitted and wrote
 * './--dry-run.safetensors' with exit 0, `nsd extract … --out --no-cache` extracted into './--no-cache' with the cache
 * on, and `ridge fit --x --y Y.npy` said only "too many arguments". The check runs on each command's own words
 * before commander reads them (the excess-arguments error comes after), so it precedes any other error and all work.
 * A value that does start with a dash is given as `--out=--dry-run`: that form is read as one word and not checked.
 */
export function refuseFlagsAsValues(program: Command): void {
  const walk = (cmd: Command) => {
    if (cmd.options.some((o) => o.required)) {
      const parse = cmd.parseOptions.bind(cmd);
      cmd.parseOptions = (argv: string[]): ParseOptionsResult => {
        checkValues(cmd, argv);
        return parse(argv);
      };
    }
    cmd.commands.forEach(walk);
  };
  walk(program);
}

function checkValues(cmd: Command, argv: string[]): void {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') return;
    // (only an option whose value is required takes the next word whatever it is; commander gives an optional
    // value only a word without a leading dash)
    const option = cmd.options.find((o) => names(o, arg));
    if (!option?.required || i + 1 === argv.length) continue;
    const value = argv[++i];
    const shown = flagLike(cmd, value);
    if (shown) {
      cmd.error(`error: ${arg}: expected a value, got ${shown} (to give ${arg} a value that starts with a dash, write ${arg}=${value})`, {
        code: 'commander.optionMissingArgument',
      });
    }
  }
}
