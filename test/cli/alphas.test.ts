/**
 * `ridge fit --alphas`: the grid is parsed before any input is read, every alpha > 0 and distinct; a log-spaced grid
 * between two different ends has at least 2 points; an empty or non-numeric item is reported as typed.
 */
import { describe, expect, it } from 'vitest';

import { registerRidgeCommand } from '../../ts/cli/commands/ridge.js';
import { resolveConfig } from '../../ts/pipeline/config.js';
import { InvalidArgumentError } from '../../ts/errors.js';
import { PreflightError } from '../../ts/pipeline/errors.js';
import { alphaEdgeWarning, logspace, parseAlphas } from '../../ts/ridge/alphas.js';
import { runCommands } from '../helpers/cli.js';
import { failure } from '../helpers/failure.js';

// X and Y do not exist: the refusal lists the grid's problem first, then the missing inputs (every problem at once)
const fit = (alphas: string) => runCommands([registerRidgeCommand], ['ridge', 'fit', '--x', '/nonexistent/x.npy', '--y', '/nonexistent/y.npy', '--alphas', alphas, '--out', '/tmp/never.safetensors']);

describe('--alphas', () => {
  it('refuses a 1-point log-spaced grid between different ends, duplicates, empty and non-numeric items, naming them as typed', async () => {
    const cases: [string, string][] = [
      ['1e1:1e7:1', "alphas: '1e1:1e7:1' has a count of 1 between two different ends (1e1 and 1e7); a log-spaced grid needs at least 2 points"],
      ['1:1:3', "alphas: the alphas must be distinct, got 1 at positions 0 and 1 of '1:1:3'"],
      ['1,10,1e1', "alphas: the alphas must be distinct, got 10 at positions 1 and 2 of '1,10,1e1'"],
      ['1,,10', "alphas: the item at position 1 of '1,,10' is empty; expected a number"],
      ['1,10,', "alphas: the item at position 2 of '1,10,' is empty; expected a number"],
      ['abc', "alphas: the item 'abc' at position 0 of 'abc' is not a number"],
      ['1,0x10', "alphas: the item '0x10' at position 1 of '1,0x10' is not a number"],
      ['1e1:1e7:', "alphas: expected start:stop:count such as 1e1:1e7:10, got '1e1:1e7:'"],
      ['1e1:x:10', "alphas: expected start:stop:count such as 1e1:1e7:10, got '1e1:x:10'"],
      ['', 'alphas: expected a list such as 1,10,100 or start:stop:count such as 1e1:1e7:10, got an empty string'],
      ['1,0,3', 'alphas: every alpha must be finite and > 0, got 0 at position 1'],
    ];
    for (const [text, message] of cases) {
      expect(() => parseAlphas(text)).toThrow(new InvalidArgumentError(message));
      const e = await failure(fit(text));
      expect(e).toBeInstanceOf(PreflightError);
      expect((e as PreflightError).problems).toEqual([
        `--alphas: ${message.slice('alphas: '.length)}`,
        '--x: /nonexistent/x.npy: file not found',
        '--y: /nonexistent/y.npy: file not found',
      ]);
    }
  });

  it('a log-spaced bound beyond float64 is named as typed, not reported as a NaN alpha at position 0', () => {
    expect(() => parseAlphas('1:1e400:3')).toThrow("alphas: the stop '1e400' of '1:1e400:3' is beyond float64's range (it reads as Infinity); expected a finite number > 0");
    expect(() => parseAlphas('-1e999:10:3')).toThrow("alphas: the start '-1e999' of '-1e999:10:3' is beyond float64's range (it reads as -Infinity)");
    expect(() => logspace(1, Infinity, 3)).toThrow('alphas: expected finite log-spaced bounds > 0, got 1:Infinity');
    expect(() => logspace(1, 10, 0)).toThrow(new InvalidArgumentError('alphas: expected an integer count >= 1, got 0'));
    expect(() => logspace(1, 10, 2.5)).toThrow(new InvalidArgumentError('alphas: expected an integer count >= 1, got 2.5'));
  });

  it('a grid of more than 1000 alphas is refused at once, before it is made (review s35-r3: 20 GB and minutes for 1e1:1e7:5000000)', async () => {
    expect(() => parseAlphas('1e1:1e7:5000000')).toThrow(/^alphas: 5000000 alphas is more than the 1000 a grid may hold/);
    expect(() => parseAlphas('1e1:1e7:100000000')).toThrow(/^alphas: 100000000 alphas is more than the 1000/);
    expect(parseAlphas('1e1:1e7:1000')).toHaveLength(1000);
    // the library's grid as an array, and a config's, alike
    const { RidgeCV } = await import('../../ts/ridge/RidgeCV.js');
    expect(() => new RidgeCV({ alphas: Array.from({ length: 1001 }, (_, i) => i + 1) })).toThrow(/1001 alphas is more than the 1000/);
    const base = { out: '/tmp/r', nsd: { root: '/tmp/n', subject: 1 }, model: { dir: '/tmp/m' } };
    expect(() => resolveConfig({ ...base, decoders: { z: { alphas: '1:1e9:20000' } } }, 'run.json')).toThrow(/run\.json: decoders\.z\.alphas: 20000 alphas is more than the 1000/);
  });

  it('two alphas equal in float32, as the engine scores them, are refused (review s35-r5)', () => {
    expect(() => parseAlphas('100,100.000001')).toThrow("alphas: the alphas must be distinct in float32, got 100 and 100.000001 at positions 0 and 1 of '100,100.000001', both 100 in float32");
  });

  it('accepts the documented forms', () => {
    expect(parseAlphas('1,10,100')).toEqual([1, 10, 100]);
    expect(parseAlphas(' 1 , 10 ')).toEqual([1, 10]);
    expect(parseAlphas('1e1:1e3:3').map((a) => +a.toPrecision(6))).toEqual([10, 100, 1000]);
    expect(parseAlphas('1e1:1e1:1')).toEqual([10]);
    expect(parseAlphas('1e3:1e1:3').map((a) => +a.toPrecision(6))).toEqual([1000, 100, 10]);
  });

  it("a config's string grid follows the same rules, naming the field", () => {
    const base = { out: '/tmp/r', nsd: { root: '/tmp/n', subject: 1 }, model: { dir: '/tmp/m' } };
    expect(() => resolveConfig({ ...base, decoders: { z: { alphas: '1:1:3' } } }, 'run.json')).toThrow(
      "run.json: decoders.z.alphas: the alphas must be distinct, got 1 at positions 0 and 1 of '1:1:3'",
    );
  });

  it("a one-alpha grid has no edge: reconstruct's decoders (which pass the grid) are not told to widen it", () => {
    expect(alphaEdgeWarning(1, 1, parseAlphas('1e1:1e1:1'))).toBeNull();
    expect(alphaEdgeWarning(1, 0, [1, 10])).toBe('100.0% of targets chose the smallest alpha (1e+0); consider widening the grid downwards');
  });
});
