/**
 * CLI-wide checks of the words given to options, applied in main.ts after the commands are registered: a flag is
 * never taken as the value of the option before it, and a `--no-X` never silently loses to an `--X` on the same line.
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

/**
 * After registering commands: `--no-X` and `--X` on one command line are refused, naming both, instead of the last
 * one winning (`nsd extract … --no-cache --cache cX` wrote a cache entry to cX, `--cache cY --no-cache` wrote none).
 * Commander's own `.conflicts()` cannot tell them apart: both set the same value. Checked before the action, after
 * commander's own errors (an unknown option, --help), from the options commander read.
 */
export function refuseContradictions(program: Command): void {
  const given = new WeakMap<Command, { option: Option; value?: string }[]>();
  const walk = (cmd: Command) => {
    for (const option of cmd.options) {
      const paired = cmd.options.some((o) => o !== option && o.negate !== option.negate && o.attributeName() === option.attributeName());
      if (!paired) continue;
      cmd.on(`option:${option.name()}`, (value?: string) => {
        const list = given.get(cmd) ?? [];
        list.push({ option, value: typeof value === 'string' ? value : undefined });
        given.set(cmd, list);
      });
    }
    cmd.commands.forEach(walk);
  };
  walk(program);
  program.hook('preAction', (_root, action) => {
    const words = given.get(action) ?? [];
    for (const a of words) {
      const b = words.find((w) => w.option.negate !== a.option.negate && w.option.attributeName() === a.option.attributeName());
      if (!b) continue;
      const shown = (w: typeof a) => (w.value === undefined ? w.option.long! : `${w.option.long!} ${w.value}`);
      action.error(`error: ${shown(a)} and ${shown(b)} contradict each other: give one of them`, { code: 'commander.conflictingOption' });
    }
  });
}
