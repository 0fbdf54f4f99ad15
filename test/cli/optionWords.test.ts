/**
 * The words given to options (ts/cli/optionWords.ts, review C #1 and #7): an option given no value no longer takes
 * the next flag as its value (`ridge fit … --out --dry-run` fitted and wrote './--dry-run.safetensors' with exit 0),
 * and `--no-X` with `--X` on one line is refused instead of the last one winning (`nsd extract … --no-cache --cache cX`
 * wrote a cache entry to cX).
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Command, CommanderError } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';

import { registerEncodeCommand } from '../../ts/cli/commands/encode.js';
import { registerNsdCommand } from '../../ts/cli/commands/nsd.js';
import { registerRidgeCommand } from '../../ts/cli/commands/ridge.js';
import { refuseContradictions, refuseFlagsAsValues } from '../../ts/cli/optionWords.js';
import { checkRequiredOptionsLast, configureProgram } from '../../ts/cli/setup.js';
import { writeNpy } from '../../ts/io/npy.js';
import { distModule } from '../helpers/dist.js';
import { runCommand } from '../helpers/nodeChild.js';
import { planted } from '../helpers/random.js';

const cli = distModule('cli/main');
const tmp = mkdtempSync(join(tmpdir(), 'bl-cli-words-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const f = (name: string) => join(tmp, name);

/** `brainlatent …args` in this process, set up as main.ts sets it up; commander's refusal (its code, exit status, text) or the action's error. */
async function inProcess(...args: string[]): Promise<{ code?: string; exitCode?: number; err: string; error?: Error }> {
  const program = new Command().name('brainlatent');
  configureProgram(program);
  let err = '';
  program.exitOverride().configureOutput({ writeErr: (s) => (err += s), writeOut: () => undefined });
  for (const register of [registerRidgeCommand, registerNsdCommand, registerEncodeCommand]) register(program);
  checkRequiredOptionsLast(program);
  refuseFlagsAsValues(program);
  refuseContradictions(program);
  try {
    await program.parseAsync(['node', 'brainlatent', ...args]);
  } catch (e) {
    if (e instanceof CommanderError) return { code: e.code, exitCode: e.exitCode, err };
    return { err, error: e as Error };
  }
  throw new Error(`expected a refusal, the command succeeded:\n${err}`);
}

/** `brainlatent …args` as a user runs it (dist/cli/main.js), in `cwd`. */
async function brainlatent(cwd: string, ...args: string[]) {
  return runCommand(process.execPath, [cli, ...args], { cwd, env: { ...process.env, NO_COLOR: '1' } });
}

const refusal = (option: string, shown: string, value: string) =>
  `brainlatent: error: ${option}: expected a value, got ${shown} (to give ${option} a value that starts with a dash, write ${option}=${value})\n(add --help for usage)\n`;

describe('an option given no value does not take the next flag as its value', () => {
  const work = f('work');
  mkdirSync(work);
  const { x, y } = planted(30, 4, 2, 5);

  it('ridge fit, encode and nsd extract refuse --out --<flag> with exit 1 before any work, and create nothing', async () => {
    await writeNpy(join(work, 'X.npy'), x.data, [30, 4]);
    await writeNpy(join(work, 'Y.npy'), y.data, [30, 2]);
    writeFileSync(join(work, 'enc.json'), '{}');
    const before = readdirSync(work).sort();
    for (const [args, flag] of [
      [['ridge', 'fit', '--x', 'X.npy', '--y', 'Y.npy', '--alphas', '1,10', '--out', '--dry-run'], '--dry-run'],
      [['encode', '--config', 'enc.json', '--out', '--dry-run'], '--dry-run'],
      [['nsd', 'extract', '--root', 'nsd', '--subject', '1', '--roi', 'streams:early', '--out', '--no-cache'], '--no-cache'],
    ] as const) {
      const r = await brainlatent(work, ...args);
      expect(r.status, args.join(' ')).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(refusal('--out', `the flag ${flag}`, flag));
      // (the fit wrote './--dry-run.safetensors', encode made a run folder '--dry-run', the extraction './--no-cache')
      expect(readdirSync(work).sort()).toEqual(before);
    }
  });

  it('names the option and the word it took: a known flag, any --word, a bare --, -h; whatever other error the line has', async () => {
    const fit = ['ridge', 'fit', '--x', f('X.npy'), '--y', f('Y.npy')];
    for (const [args, option, shown, value] of [
      // ("too many arguments for 'fit'" before: Y.npy was left over)
      [['ridge', 'fit', '--x', '--y', 'Y.npy', '--out', 'q'], '--x', 'the flag --y', '--y'],
      [[...fit, '--alphas', '--out', 'q'], '--alphas', 'the flag --out', '--out'],
      [[...fit, '--out', '--dry-rn'], '--out', "'--dry-rn', which reads as a flag", '--dry-rn'],
      [[...fit, '--out', '--'], '--out', "'--', the end of the options", '--'],
      [[...fit, '--out', '-h'], '--out', 'the flag -h', '-h'],
      [[...fit, '--out', '--help'], '--out', 'the flag --help', '--help'],
      [['nsd', 'extract', '--nsd', '--subject', '1', '--roi', 'nsdgeneral', '--out', 'o'], '--nsd', 'the flag --subject', '--subject'],
    ] as const) {
      const r = await inProcess(...args);
      expect(r.err, args.join(' ')).toBe(refusal(option, shown, value));
      expect(r.code).toBe('commander.optionMissingArgument');
      expect(r.exitCode).toBe(1);
    }
  });

  it('a negative number still reaches the check of its flag, and --out=--name gives a value that starts with --', async () => {
    const fit = ['ridge', 'fit', '--x', join(work, 'X.npy'), '--y', join(work, 'Y.npy')];
    const negative = await inProcess(...fit, '--threads', '-1', '--out', f('m'), '--dry-run');
    expect(negative.error?.message).toBe('--threads: expected an integer from 0 to 4096, got -1');
    // (the = form is one word, taken as given: here the name of a model in the folder)
    const eq = await brainlatent(work, 'ridge', 'fit', '--x', 'X.npy', '--y', 'Y.npy', '--out=--dry-run', '--dry-run');
    expect(eq.stderr).toBe('');
    expect(eq.status).toBe(0);
    expect(eq.stdout).toMatch(/\ndry run: X and Y not read, no model written to --dry-run\.safetensors\n$/);
  });
});

describe('--no-X with --X on one command line', () => {
  it('nsd extract --no-cache with --cache is refused, in either order and either form, naming both', async () => {
    const extract = ['nsd', 'extract', '--root', f('nsd'), '--subject', '1', '--roi', 'nsdgeneral', '--out', f('o')];
    for (const [words, message] of [
      [['--no-cache', '--cache', f('cX')], `--no-cache and --cache ${f('cX')}`],
      [['--cache', f('cY'), '--no-cache'], `--cache ${f('cY')} and --no-cache`],
      [[`--cache=${f('cZ')}`, '--no-cache'], `--cache ${f('cZ')} and --no-cache`],
    ] as const) {
      const r = await inProcess(...extract, ...words);
      expect(r.err).toBe(`brainlatent: error: ${message} contradict each other: give one of them\n(add --help for usage)\n`);
      expect(r.code).toBe('commander.conflictingOption');
      expect(r.exitCode).toBe(1);
    }
    // each alone gets past (to the missing NSD root)
    for (const words of [['--no-cache'], ['--cache', f('cX')]]) {
      const r = await inProcess(...extract, ...words);
      expect(r.code).toBeUndefined();
      expect(r.error?.message).toMatch(/--root/);
    }
  });
});
