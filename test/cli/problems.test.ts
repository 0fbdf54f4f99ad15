/**
 * FlagProblems names each problem by its flag once: a library's "<option>: …" and "<call> <option>: …" (the form
 * its option errors take) both read "--<option>: …" (extractNsd's "extractNsd sessions: …" read
 * "--sessions: extractNsd sessions: …").
 */
import { describe, expect, it } from 'vitest';

import { FlagProblems } from '../../ts/cli/problems.js';
import { InvalidArgumentError } from '../../ts/errors.js';

describe('FlagProblems', () => {
  it('names a problem by its flag once, whether the message names the option alone, after its call, or by the flag', () => {
    const p = new FlagProblems();
    p.add(new InvalidArgumentError('sessions: range "3-1" runs backwards'), '--sessions');
    p.add(new InvalidArgumentError('extractNsd sessions: range "3-1" runs backwards'), '--sessions');
    p.add(new InvalidArgumentError('--sessions: range "3-1" runs backwards'), '--sessions');
    p.add(new InvalidArgumentError('extractNsd subject: expected an integer in 1..8, got 9'), '--sessions');
    p.add(new InvalidArgumentError('no flag'));
    expect(p.lines).toEqual([
      '--sessions: range "3-1" runs backwards',
      '--sessions: range "3-1" runs backwards',
      '--sessions: range "3-1" runs backwards',
      // (another option's message is kept whole)
      '--sessions: extractNsd subject: expected an integer in 1..8, got 9',
      'no flag',
    ]);
  });
});
