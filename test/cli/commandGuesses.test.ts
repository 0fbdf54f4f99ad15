/**
 * An unknown top-level word names the command meant (review: `brainlatent decode` was offered `encode`, the opposite
 * job, and `fit`, `extract`, `img2img` were offered nothing): a group's subcommand typed alone by its full path, from
 * the program's own tree; the field's words for this tool's jobs by a short map; anything else keeps commander's
 * edit-distance suggestion. Exit 1 and nothing on stdout, as any unknown command.
 */
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';

import { FIELD_WORDS, guessCommands } from '../../ts/cli/commandGuesses.js';
import { distModule } from '../helpers/dist.js';
import { runCommand } from '../helpers/nodeChild.js';

const cli = distModule('cli/main');
const brainlatent = (...args: string[]) => runCommand(process.execPath, [cli, ...args], { env: { ...process.env, NO_COLOR: '1' } });
const unknown = (word: string, suggestion: string | null) =>
  `brainlatent: error: unknown command '${word}'\n${suggestion === null ? '' : `(Did you mean ${suggestion}?)\n`}(see 'brainlatent --help')\n`;

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
