/**
 * FlagProblems names each problem by its flag once: a library's "<option>: …" and "<call> <option>: …" (the form
 * its option errors take) both read "--<option>: …" (extractNsd's "extractNsd sessions: …" read
 * "--sessions: extractNsd sessions: …").
 */
import { describe, expect, it } from 'vitest';

import { FlagProblems } from '../../ts/cli/problems.js';
import { EnvironmentError, InvalidArgumentError } from '../../ts/errors.js';

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

  it("does not file an environment variable's problem under the flag whose file was being read (s42: '--roi: BRAINLATENT_GUNZIP …')", async () => {
    const p = new FlagProblems();
    const env = new EnvironmentError('BRAINLATENT_GUNZIP', "BRAINLATENT_GUNZIP must be 'auto', 'isa-l', 'zlib', got 'pigz'");
    expect(() => p.take(() => { throw env; }, '--roi')).toThrow(env);
    await expect(p.takeAsync(async () => { throw env; }, '--sessions')).rejects.toBe(env);
    expect(env.message).toBe("BRAINLATENT_GUNZIP must be 'auto', 'isa-l', 'zlib', got 'pigz'");
    expect(p.count).toBe(0);
  });
});
