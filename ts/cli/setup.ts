/**
 * CLI-wide commander settings, applied in main.ts: errors as one line prefixed "brainlatent:", a hint to --help
 * instead of the whole help after an error, extra words refused, required options checked after unknown options, and commands that
 * exit as soon as their work is done.
 */
import type { Command, Option } from 'commander';

/** Before registering commands (subcommands inherit these settings when created). */
export function configureProgram(program: Command): void {
  program
    .configureOutput({ outputError: (text, write) => write(`brainlatent: ${text}`) })
    .showHelpAfterError('(add --help for usage)')
    // words no command takes are an error, not dropped: `--alphas 1 10 100` fitted alpha 1 alone, `--sessions 1 2`
    // extracted session 1, `--out my model` wrote to 'my'
    .allowExcessArguments(false);
}

/**
 * After registering commands. Commander checks required options before it reports unknown ones, so a mistyped
 * `--xx` came out as "required option '--x' not specified"; here required options are checked in a preAction hook,
 * which runs after commander has reported unknown options, and the error names the missing options alone: all of
 * them at once (commander named the first, and `ridge fit` with none took four runs to learn its three). Each is
 * marked "(required)" in the help, which commander's help does not say (`encode --config` looked optional).
 */
export function checkRequiredOptionsLast(program: Command): void {
  const required = new Map<Command, Option[]>();
  const walk = (cmd: Command) => {
    const opts = cmd.options.filter((o) => o.mandatory);
    for (const o of opts) {
      o.mandatory = false;
      o.description = o.description ? `${o.description} (required)` : 'required';
    }
    if (opts.length) required.set(cmd, opts);
    cmd.commands.forEach(walk);
  };
  walk(program);
  program.hook('preAction', (_root, action) => {
    const missing: string[] = [];
    for (let c: Command | null = action; c; c = c.parent) {
      for (const o of required.get(c) ?? []) if (c.getOptionValue(o.attributeName()) === undefined) missing.push(o.flags);
    }
    if (missing.length === 0) return;
    const message =
      missing.length === 1
        ? `error: required option '${missing[0]}' not specified`
        : `error: required options not specified:\n${missing.map((f) => `  ${f}`).join('\n')}`;
    action.error(message, { code: 'commander.missingMandatoryOptionValue' });
  });
}

/**
 * Before registering commands: `help <command> [<subcommand>]` becomes `<command> [<subcommand>] --help`, so that
 * `help ridge fit` prints fit's help as `ridge fit --help` does (commander's help command reads one name alone and
 * printed the ridge group's help).
 */
export function helpArgs(args: string[]): string[] {
  const [first, ...rest] = args;
  if (first !== 'help' || rest.length === 0 || rest[0].startsWith('-')) return args;
  return [...rest, '--help'];
}

/** After registering commands (so the groups keep their own `help [command]`): the program's help command as helpArgs reads it. */
export function describeHelpCommand(program: Command): void {
  program.helpCommand('help [command...]', 'display help for a command (help ridge fit)');
}

const HELP_FLAGS = new Set(['--help', '-h']);

/**
 * After registering commands: an unknown command name with --help (`report --help`, `ridge fitt -h`) is reported
 * as unknown, with commander's "Did you mean" when it has one, and exits 1. Commander looks at --help before it
 * looks for the command, and printed the parent's help with exit 0; here the help flag is dropped from such a
 * command line, so commander goes on to its unknown-command error.
 */
export function unknownCommandArgs(program: Command, args: string[]): string[] {
  let cmd = program;
  for (const arg of args) {
    if (arg.startsWith('-') || cmd.commands.length === 0) break;
    const sub = cmd.commands.find((c) => c.name() === arg || c.aliases().includes(arg));
    if (!sub) {
      // 'ridge help fit': commander's own help command on a group
      if (arg === 'help') break;
      return args.filter((a) => !HELP_FLAGS.has(a));
    }
    cmd = sub;
  }
  return args;
}

/**
 * After registering commands: an error of the program or of a command group (an unknown command, mostly) points to
 * that group's help, which lists its commands, instead of "(add --help for usage)", which made no sense after
 * `report --help`.
 */
export function pointGroupErrorsToTheirHelp(program: Command): void {
  const walk = (cmd: Command, path: string) => {
    if (cmd.commands.length === 0) return;
    cmd.showHelpAfterError(`(see '${path} --help')`);
    for (const sub of cmd.commands) walk(sub, `${path} ${sub.name()}`);
  };
  walk(program, program.name());
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

const endsWhenStdoutCloses = new WeakSet<Command>();

/**
 * Marks a command that only shows something as it goes (`batch watch`): once its reader has closed stdout
 * (`| head -3`) it has nothing left to do, and it exits 0 at once rather than running on unseen.
 */
export function endWhenStdoutCloses(cmd: Command): Command {
  endsWhenStdoutCloses.add(cmd);
  return cmd;
}

/**
 * In main.ts, for every command: a reader that closes stdout early (`brainlatent sd schedule | head -1`) does not end
 * a command that has work to finish. Its later output goes nowhere, and the command finishes its work (a `ridge fit`
 * piped to `grep -m1` still writes its model; exiting at the first EPIPE left none, with exit 0) and exits with its
 * own status, instead of Node's unhandled 'error' event (a stack trace and exit 1). A command marked by
 * `endWhenStdoutCloses` exits 0 there. Other stdout errors are still thrown.
 */
export function ignoreClosedStdout(program: Command): void {
  let running: Command | undefined;
  program.hook('preAction', (_root, action) => {
    running = action;
  });
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    if (running && endsWhenStdoutCloses.has(running)) process.exit(0);
    // (the stream is destroyed after its error: a later write would raise ERR_STREAM_DESTROYED)
    process.stdout.write = ((_chunk: unknown, encoding?: unknown, done?: unknown): boolean => {
      const callback = typeof encoding === 'function' ? encoding : done;
      if (typeof callback === 'function') queueMicrotask(() => (callback as () => void)());
      return true;
    }) as typeof process.stdout.write;
  });
}
