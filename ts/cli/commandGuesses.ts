/**
 * The command a newcomer meant by an unknown word: at the top level `brainlatent fit` is `ridge fit`, `brainlatent
 * decode` is `reconstruct` (commander's edit distance offered `encode`, the opposite job); in a group `brainlatent ridge
 * fitt` is `ridge fit` and `brainlatent sd extract` is `nsd extract` (commander offered nothing for a command of another
 * group).
 */
import type { Command } from 'commander';

import { editDistance } from '../config/problems.js';

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

/** A command's path below the program: `ridge`, `ridge fit`. */
function pathOf(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/**
 * The subcommands of `group` nearest to `word` as commander measures a typo (fewest edits, at most 2, and alike in
 * more than 40% of the longer word's letters; every one at that distance), by their paths (`ridge fit`), and that
 * distance; hidden commands are left out, as commander's help leaves them.
 */
function nearSubcommands(group: Command, word: string): { paths: string[]; edits: number } {
  let best = 3;
  let near: string[] = [];
  for (const sub of group.createHelp().visibleCommands(group)) {
    for (const name of [sub.name(), ...sub.aliases()]) {
      if (name.length <= 1) continue;
      const d = editDistance(word, name);
      if ((Math.max(word.length, name.length) - d) / Math.max(word.length, name.length) <= 0.4 || d > best) continue;
      if (d < best) near = [];
      best = d;
      near.push(`${pathOf(group)} ${sub.name()}`);
    }
  }
  return { paths: [...new Set(near)].sort((a, b) => a.localeCompare(b)), edits: best };
}

/**
 * The commands (paths after the program's name) meant by `word`, an unknown subcommand of `group`: the group's own
 * subcommands a typo away (`ridge fitt`: `ridge fit`), and the command of that very name elsewhere: another group's
 * subcommand (`sd extract`: `nsd extract`), a top-level command (`sd reconstruct`: `reconstruct`), or the field's
 * word (`ridge train`: `ridge fit`). A command named exactly outweighs a two-edit typo (`cache fit` is `ridge fit`,
 * not `cache list`); a one-edit typo is named with it. Empty when none.
 */
export function guessSubcommands(program: Command, group: Command, word: string): string[] {
  const own = pathOf(group);
  const topLevel = program.commands.some((c) => c !== group && (c.name() === word || c.aliases().includes(word))) ? [word] : [];
  const elsewhere = [...topLevel, ...guessCommands(program, word)].filter((path) => path !== own);
  const near = nearSubcommands(group, word);
  const typos = elsewhere.length === 0 || near.edits <= 1 ? near.paths : [];
  return [...new Set([...typos, ...elsewhere])];
}

/**
 * The arguments name an unknown subcommand of a group (`sd extract`): the guess for it looks at every command, so
 * main.ts loads them all (it loads the named group's alone otherwise). Walks the words before the first option, as
 * commander finds the command; `help` is a group's own help command.
 */
export function namesUnknownSubcommand(program: Command, args: readonly string[]): boolean {
  let cmd = program;
  for (const [i, arg] of args.entries()) {
    if (arg.startsWith('-') || cmd.commands.length === 0) return false;
    const sub = cmd.commands.find((c) => c.name() === arg || c.aliases().includes(arg));
    if (!sub) return i > 0 && arg !== 'help';
    cmd = sub;
  }
  return false;
}

/** "brainlatent ridge fit", or "one of brainlatent nsd info, brainlatent sd info". */
function suggestionOf(program: Command, paths: readonly string[]): string {
  const meant = paths.map((path) => `${program.name()} ${path}`);
  return meant.length === 1 ? meant[0] : `one of ${meant.join(', ')}`;
}

/**
 * After registering commands: an unknown top-level command that is a field's word or a subcommand's name is
 * answered with the full command (`brainlatent fit` → "(Did you mean brainlatent ridge fit?)"); any other keeps
 * commander's edit-distance suggestion (`reconstuct` → reconstruct). An unknown subcommand of a group is answered
 * by guessSubcommands (`brainlatent ridge fitt`, `brainlatent sd fit` → "(Did you mean brainlatent ridge fit?)").
 * Same error, code and exit status as commander's.
 */
export function guessUnknownCommands(program: Command): void {
  // (unknownCommand is commander's own, left out of its typings)
  const cmd = program as Command & { unknownCommand(): void };
  const commanders = cmd.unknownCommand.bind(program);
  cmd.unknownCommand = () => {
    const word = program.args[0];
    const meant = guessCommands(program, word);
    if (meant.length === 0) return commanders();
    program.error(`error: unknown command '${word}'\n(Did you mean ${suggestionOf(program, meant)}?)`, { code: 'commander.unknownCommand' });
  };
  // every group below: its unknown subcommand by guessSubcommands, each guess by its full path (commander named a
  // typo's subcommand alone, `fit`, and nothing for another group's command); same code and exit status
  const walk = (group: Command) => {
    for (const sub of group.commands) {
      if (sub.commands.length === 0) continue;
      const g = sub as Command & { unknownCommand(): void };
      const groups = g.unknownCommand.bind(sub);
      g.unknownCommand = () => {
        const word = sub.args[0];
        const meant = guessSubcommands(program, sub, word);
        if (meant.length === 0) return groups();
        sub.error(`error: unknown command '${word}'\n(Did you mean ${suggestionOf(program, meant)}?)`, { code: 'commander.unknownCommand' });
      };
      walk(sub);
    }
  };
  walk(program);
}
