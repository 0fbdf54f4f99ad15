/**
 * An unknown top-level word names the command meant (review: `brainlatent decode` was offered `encode`, the opposite
 * job, and `fit`, `extract`, `img2img` were offered nothing): a group's subcommand typed alone by its full path, from
 * the program's own tree; the field's words for this tool's jobs by a short map; anything else keeps commander's
 * edit-distance suggestion. Exit 1 and nothing on stdout, as any unknown command.
 */
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';

import { FIELD_WORDS, guessCommands, guessSubcommands, namesUnknownSubcommand } from '../../ts/cli/commandGuesses.js';
import { distModule } from '../helpers/dist.js';
import { runCommand } from '../helpers/nodeChild.js';

const cli = distModule('cli/main');
const brainlatent = (...args: string[]) => runCommand(process.execPath, [cli, ...args], { env: { ...process.env, NO_COLOR: '1' } });
const unknown = (word: string, suggestion: string | null, group = 'brainlatent') =>
  `brainlatent: error: unknown command '${word}'\n${suggestion === null ? '' : `(Did you mean ${suggestion}?)\n`}(see '${group} --help')\n`;

const CASES: [string[], string | null][] = [
  // subcommands of a group
  [['fit'], 'brainlatent ridge fit'],
  [['extract', '--root', '/data/nsd'], 'brainlatent nsd extract'],
  [['img2img'], 'brainlatent sd img2img'],
  [['predict'], 'brainlatent ridge predict'],
  [['status'], 'brainlatent batch status'],
  // a name two groups have: both
  [['info'], 'one of brainlatent nsd info, brainlatent sd info'],
  // the field's words (commander offered `encode` for decode)
  [['decode'], 'brainlatent reconstruct'],
  [['reconstruction'], 'brainlatent reconstruct'],
  [['train'], 'brainlatent ridge fit'],
  // the map's word first, then the tree's
  [['encoding'], 'one of brainlatent encode, brainlatent bench encoding'],
  // commander's edit distance where it is right
  [['reconstuct'], 'reconstruct'],
  [['demoo'], 'demo'],
  // nothing meant: no guess
  [['report'], null],
];

describe('brainlatent <unknown word>: a subcommand typed alone, the field\'s words and typos each get the command meant, exit 1', () => {
  for (const [args, suggestion] of CASES) {
    it(`${args.join(' ')} → ${suggestion ?? 'no guess'}`, async () => {
      const r = await brainlatent(...args);
      expect([r.status, r.stdout, r.stderr]).toEqual([1, '', unknown(args[0], suggestion)]);
    });
  }
});

// a group's unknown subcommand (review: `sd extract`, `sd fit` got commander's plain error, `ridge fitt` the bare `fit`)
const GROUP_CASES: [string[], string | null][] = [
  // a typo of the group's own subcommand, by its full path
  [['ridge', 'fitt'], 'brainlatent ridge fit'],
  [['batch', 'stauts'], 'brainlatent batch status'],
  [['nsd', 'extrat', '--root', '/data/nsd'], 'brainlatent nsd extract'],
  [['ridge', 'fitt', '--help'], 'brainlatent ridge fit'],
  [['help', 'ridge', 'fitt'], 'brainlatent ridge fit'],
  // another group's subcommand, a top-level command, the field's word
  [['sd', 'extract'], 'brainlatent nsd extract'],
  [['sd', 'fit'], 'brainlatent ridge fit'],
  [['ridge', 'info'], 'one of brainlatent nsd info, brainlatent sd info'],
  [['sd', 'reconstruct'], 'brainlatent reconstruct'],
  // (another group's command outweighs a typo two edits away: cache's list, batch's run)
  [['cache', 'fit'], 'brainlatent ridge fit'],
  [['batch', 'prune'], 'brainlatent cache prune'],
  [['ridge', 'train'], 'brainlatent ridge fit'],
  // nothing meant: no guess
  [['ridge', 'zzzz'], null],
];

describe("brainlatent <group> <unknown word>: the group's nearest subcommand, or the command of that name elsewhere, by its full path, exit 1", () => {
  for (const [args, suggestion] of GROUP_CASES) {
    it(`${args.join(' ')} → ${suggestion ?? 'no guess'}`, async () => {
      const r = await brainlatent(...args);
      const [group, word] = args[0] === 'help' ? args.slice(1) : args;
      expect([r.status, r.stdout, r.stderr]).toEqual([1, '', unknown(word, suggestion, `brainlatent ${group}`)]);
    });
  }
});

describe('the map of field words', () => {
  it('every command the map of field words names exists', async () => {
    for (const path of new Set(Object.values(FIELD_WORDS).flat())) {
      const r = await brainlatent(...path.split(' '), '--help');
      expect([r.status, r.stdout.split('\n')[0]], path).toEqual([0, expect.stringMatching(new RegExp(`^Usage: brainlatent ${path} `))]);
    }
  });
});

describe('guessCommands', () => {
  it('reads the paths from the program it is given, not from a list', () => {
    const program = new Command('brainlatent');
    const group = program.command('alpha');
    group.command('beta').alias('b');
    group.command('gamma').command('delta');
    program.command('epsilon').command('beta');
    expect(guessCommands(program, 'beta')).toEqual(['alpha beta', 'epsilon beta']);
    expect(guessCommands(program, 'b')).toEqual(['alpha beta']);
    expect(guessCommands(program, 'delta')).toEqual(['alpha gamma delta']);
    expect(guessCommands(program, 'zeta')).toEqual([]);
    // a field word whose command this program lacks is not offered; the one it has is
    expect(guessCommands(program, 'decode')).toEqual([]);
    program.command('reconstruct');
    expect(guessCommands(program, 'decode')).toEqual(['reconstruct']);
    // (an inherited name is no field word)
    expect(guessCommands(program, 'constructor')).toEqual([]);
  });
});

describe('guessSubcommands', () => {
  const tree = () => {
    const program = new Command('brainlatent');
    const alpha = program.command('alpha');
    alpha.command('beta');
    alpha.command('betta');
    alpha.command('gamma');
    alpha.command('secret', { hidden: true });
    const epsilon = program.command('epsilon');
    epsilon.command('delta');
    epsilon.command('beta');
    program.command('kappa');
    return { program, alpha, epsilon };
  };

  it("names the group's subcommands a typo away (every one at the least distance), then the word's command elsewhere", () => {
    const { program, alpha, epsilon } = tree();
    expect(guessSubcommands(program, alpha, 'gama')).toEqual(['alpha gamma']);
    // two at one edit: both, in order
    expect(guessSubcommands(program, alpha, 'bett')).toEqual(['alpha beta', 'alpha betta']);
    // the nearer one alone
    expect(guessSubcommands(program, alpha, 'bettaa')).toEqual(['alpha betta']);
    // another group's subcommand, and a top-level command (not the group itself)
    expect(guessSubcommands(program, alpha, 'delta')).toEqual(['epsilon delta']);
    expect(guessSubcommands(program, alpha, 'kappa')).toEqual(['kappa']);
    expect(guessSubcommands(program, alpha, 'alpha')).toEqual([]);
    // a command named exactly elsewhere outweighs a typo two edits away (delta: beta, betta); one edit away, both,
    // the group's first
    expect(guessSubcommands(program, epsilon, 'gamma')).toEqual(['alpha gamma']);
    expect(guessSubcommands(program, epsilon, 'detla')).toEqual(['epsilon delta']);
    alpha.command('delt');
    expect(guessSubcommands(program, alpha, 'delta')).toEqual(['alpha delt', 'epsilon delta']);
    // hidden commands are not offered, nor words too far (3 edits) or too unlike
    expect(guessSubcommands(program, alpha, 'secrt')).toEqual([]);
    expect(guessSubcommands(program, alpha, 'gxxxa')).toEqual([]);
    expect(guessSubcommands(program, alpha, 'zz')).toEqual([]);
  });

  it('namesUnknownSubcommand: a word after a group that is none of its commands, before any option', () => {
    const { program } = tree();
    expect(namesUnknownSubcommand(program, ['alpha', 'bta'])).toBe(true);
    expect(namesUnknownSubcommand(program, ['alpha', 'beta'])).toBe(false);
    expect(namesUnknownSubcommand(program, ['alpha', 'help', 'beta'])).toBe(false);
    expect(namesUnknownSubcommand(program, ['alpha', '--x', 'bta'])).toBe(false);
    expect(namesUnknownSubcommand(program, ['alpha'])).toBe(false);
    // (an unknown top-level word is the program's case: every command is loaded for it already)
    expect(namesUnknownSubcommand(program, ['omega'])).toBe(false);
    // a leaf command's words are its arguments
    expect(namesUnknownSubcommand(program, ['kappa', 'x'])).toBe(false);
  });
});
