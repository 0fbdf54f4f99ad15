/**
 * The command a newcomer meant by an unknown top-level word: `brainlatent fit` is `ridge fit`, `brainlatent decode` is
 * `reconstruct` (commander's edit distance offered `encode`, the opposite job).
 */
import type { Command } from 'commander';

/**
 * The field's words for this tool's jobs, each mapped to the command that does it (as typed after `brainlatent`).
 * Only words that name one job; a word that is already a subcommand's name (fit, extract, img2img, …) is found in the
 * command tree instead.
 */
export const FIELD_WORDS: Readonly<Record<string, readonly string[]>> = {
  // decoding: brain activity → stimulus, here the reconstruction (commander offered `encode`)
  decode: ['reconstruct'],
  decoding: ['reconstruct'],
  reconstruction: ['reconstruct'],
  // the analysis name of reconstructions in batch manifests and docs
  recon: ['reconstruct'],
  // training a model on X and Y: the ridge fit
  train: ['ridge fit'],
  // "encoding model": encode (the tree also has the benchmark `bench encoding`)
  encoding: ['encode'],
  benchmark: ['bench'],
};

/** Every command below a top-level group, by its path from the program (`ridge fit`), under its name and aliases. */
function subcommandPaths(program: Command): Map<string, string[]> {
  const byWord = new Map<string, string[]>();
  const walk = (cmd: Command, path: string) => {
    for (const sub of cmd.commands) {
      const subPath = `${path} ${sub.name()}`;
      for (const word of [sub.name(), ...sub.aliases()]) byWord.set(word, [...(byWord.get(word) ?? []), subPath]);
      walk(sub, subPath);
    }
  };
  for (const group of program.commands) walk(group, group.name());
  return byWord;
}

/**
 * The commands (paths after the program's name) meant by `word`, which is no top-level command: the field's word
 * first, then every subcommand of that name in the program's tree (`info`: `nsd info` and `sd info`); empty when
 * neither knows it.
 */
export function guessCommands(program: Command, word: string): string[] {
  const found = [...(Object.hasOwn(FIELD_WORDS, word) ? FIELD_WORDS[word] : []), ...(subcommandPaths(program).get(word) ?? [])];
  // (only paths that exist: a map entry outlives no command)
  const exists = (path: string) => {
    let cmd: Command | undefined = program;
    for (const name of path.split(' ')) cmd = cmd?.commands.find((c) => c.name() === name);
    return cmd !== undefined;
  };
  return [...new Set(found)].filter(exists);
}

/**
 * After registering commands: an unknown top-level command that is a field's word or a subcommand's name is
 * answered with the full command (`brainlatent fit` → "(Did you mean brainlatent ridge fit?)"); any other keeps
 * commander's edit-distance suggestion (`reconstuct` → reconstruct). Same error, code and exit status as commander's.
 */
export function guessUnknownCommands(program: Command): void {
  // (unknownCommand is commander's own, left out of its typings)
  const cmd = program as Command & { unknownCommand(): void };
  const commanders = cmd.unknownCommand.bind(program);
  cmd.unknownCommand = () => {
    const word = program.args[0];
    const meant = guessCommands(program, word).map((path) => `${program.name()} ${path}`);
    if (meant.length === 0) return commanders();
    const suggestion = meant.length === 1 ? meant[0] : `one of ${meant.join(', ')}`;
    program.error(`error: unknown command '${word}'\n(Did you mean ${suggestion}?)`, { code: 'commander.unknownCommand' });
  };
}
