/**
 * `demo --seed 0` is accepted (the config schemas allow seed >= 0; it was refused as "must be a positive integer"),
 * and reaches runDemo as 0; a negative or non-integer seed is refused naming the flag, before any work.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';

import { registerDemoCommand } from '../../../ts/cli/commands/demo.js';
import { runDemo } from '../../../ts/demo/runDemo.js';
import { InvalidArgumentError } from '../../../ts/errors.js';
import { runCommands } from '../../helpers/cli.js';

// the demo itself (a world build and a reconstruction) is not under test: runDemo is replaced by a stub that stops
vi.mock('../../../ts/demo/runDemo.js', () => ({
  runDemo: vi.fn(async () => {
    throw new Error('stub: runDemo called');
  }),
}));

const tmp = mkdtempSync(join(tmpdir(), 'bl-cli-demo-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const run = (...args: string[]) => runCommands([registerDemoCommand], ['demo', '--out', join(tmp, 'demo'), ...args]);

describe('demo --seed', () => {
  beforeEach(() => {
    vi.mocked(runDemo).mockClear();
  });

  it('0 is a seed like any other', async () => {
    await expect(run('--seed', '0')).rejects.toThrow('stub: runDemo called');
    expect(vi.mocked(runDemo).mock.calls[0][0]).toMatchObject({ seed: 0 });
    await expect(run()).rejects.toThrow('stub: runDemo called');
    expect(vi.mocked(runDemo).mock.calls[1][0]).toMatchObject({ seed: 1 });
  });

  it('a negative, fractional or empty seed is refused naming the flag, and runDemo is not called', async () => {
    for (const [bad, shown] of [['-1', '-1'], ['1.5', '1.5'], ['x', "'x'"], ['', "''"]]) {
      await expect(run('--seed', bad)).rejects.toThrow(new InvalidArgumentError(`demo: --seed (seed): expected an integer from 0 to 2147483647, got ${shown}`));
    }
    await expect(run('--seeds', '0')).rejects.toThrow(new InvalidArgumentError('demo: --seeds (seeds): expected an integer from 1 to 1000, got 0'));
    expect(runDemo).not.toHaveBeenCalled();
  });

  it('every bad flag is reported at once, each with its range, as docs/pipeline.md says', async () => {
    const err = (await run('--test-images', '1', '--image-size', '20', '--seeds', '0', '--prior', 'foo').catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(err.message).toMatch(/^demo: 4 invalid options:/);
    for (const flag of ['--test-images', '--image-size', '--seeds', '--prior']) expect(err.message).toContain(`- ${flag} (`);
    expect(runDemo).not.toHaveBeenCalled();
  });
});
