/**
 * ONNX Runtime's spinning: an option given to load wins; unset, BRAINLATENT_ORT_SPINNING (0/1) is the default, and
 * a batch pool that runs several job processes at once sets it to 0 in them (docs/sampler.md has the measurements).
 */
import { afterEach, describe, expect, it } from 'vitest';

import { jobProcessEnv, THREADS_ENV } from '../../ts/batch/jobThreads.js';
import { InvalidArgumentError } from '../../ts/errors.js';
import { nativeSessionOptions } from '../../ts/sd/native.js';
import { ORT_SPINNING_ENV, spinningFromEnv } from '../../ts/sd/spinningEnv.js';

const saved = process.env[ORT_SPINNING_ENV];
afterEach(() => {
  if (saved === undefined) delete process.env[ORT_SPINNING_ENV];
  else process.env[ORT_SPINNING_ENV] = saved;
});

describe('spinning', () => {
  it('BRAINLATENT_ORT_SPINNING is the default of a session without the option; the option wins', () => {
    delete process.env[ORT_SPINNING_ENV];
    expect(nativeSessionOptions({}, 'test').spinning).toBeUndefined(); // the engine's: ONNX Runtime's true
    process.env[ORT_SPINNING_ENV] = '0';
    expect(nativeSessionOptions({}, 'test').spinning).toBe(false);
    expect(nativeSessionOptions({ spinning: true }, 'test').spinning).toBe(true);
    process.env[ORT_SPINNING_ENV] = '1';
    expect(nativeSessionOptions({}, 'test').spinning).toBe(true);
    expect(nativeSessionOptions({ spinning: false }, 'test').spinning).toBe(false);
  });

  it('reads 0, 1 or empty, and names the variable otherwise', () => {
    expect(spinningFromEnv({})).toBeUndefined();
    expect(spinningFromEnv({ [ORT_SPINNING_ENV]: '' })).toBeUndefined();
    expect(spinningFromEnv({ [ORT_SPINNING_ENV]: '0' })).toBe(false);
    expect(spinningFromEnv({ [ORT_SPINNING_ENV]: '1' })).toBe(true);
    expect(() => spinningFromEnv({ [ORT_SPINNING_ENV]: 'off' })).toThrow(InvalidArgumentError);
    expect(() => spinningFromEnv({ [ORT_SPINNING_ENV]: 'off' })).toThrow(/^BRAINLATENT_ORT_SPINNING: expected 0 or 1 .*got "off"$/);
  });

  it("a pool's job processes: spinning off when more than one runs at once, unless the user set it", () => {
    const base = { PATH: '/bin' };
    expect(jobProcessEnv(base, 1)).toBe(base);
    expect(jobProcessEnv(base, 2)).toEqual({ PATH: '/bin', [ORT_SPINNING_ENV]: '0' });
    expect(jobProcessEnv({ ...base, [ORT_SPINNING_ENV]: '1' }, 4)).toEqual({ PATH: '/bin', [ORT_SPINNING_ENV]: '1' });
    expect(jobProcessEnv(base, 1, 3)).toEqual({ PATH: '/bin', [THREADS_ENV]: '3' });
    expect(jobProcessEnv(base, 2, 3)).toEqual({ PATH: '/bin', [THREADS_ENV]: '3', [ORT_SPINNING_ENV]: '0' });
    expect(base).toEqual({ PATH: '/bin' });
  });
});
