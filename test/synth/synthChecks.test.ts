/** `synth nsd` refuses impossible grids before writing anything, and never leaves a partial dataset (issue #11). */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';

import { registerSynthCommand } from '../../ts/cli/commands/synth.js';
import { InvalidArgumentError } from '../../ts/errors.js';
import { synthNsd } from '../../ts/synth/nsd.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-synthcheck-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function cli(...args: string[]): Promise<void> {
  const program = new Command().exitOverride();
  registerSynthCommand(program);
  await program.parseAsync(['node', 'brainlatent', 'synth', 'nsd', ...args]);
}

describe('synth nsd limits', () => {
  it('--grid 100000x100000x100000 is a clear error, and nothing is written', async () => {
    const out = join(tmp, 'huge');
    await expect(cli('--grid', '100000x100000x100000', '--out', out)).rejects.toThrow(
      new InvalidArgumentError('--grid: expected three integers from 8 to 32767, got 100000×100000×100000'),
    );
    await expect(cli('--grid', '2000x2000x2000', '--out', out)).rejects.toThrow(
      /grid 2000×2000×2000 with 60 trials per session makes 894 GiB of int16 betas per session, over the 1 GiB limit/,
    );
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(tmp)).toEqual([]);
  });

  it('--seed and --design-sessions are named by their flags', async () => {
    const out = join(tmp, 'seeded');
    await expect(cli('--seed', '4294967296', '--out', out)).rejects.toThrow(new InvalidArgumentError('--seed: expected an integer in 0..2147483647, got 4294967296'));
    await expect(cli('--design-sessions', '0', '--out', out)).rejects.toThrow(new InvalidArgumentError('--design-sessions: expected an integer >= 1, got 0'));
    expect(existsSync(out)).toBe(false);
  });

  it('a folder holding other files is not replaced', async () => {
    const out = join(tmp, 'mine');
    mkdirSync(out);
    writeFileSync(join(out, 'thesis.tex'), 'keep');
    await expect(synthNsd({ out, grid: [8, 8, 8], sessions: 1, designSessions: 1, trialsPerSession: 30, sharedImages: 2 })).rejects.toThrow(
      /mine exists and is not a synthetic NSD \(no synth_truth\.json\)/,
    );
    expect(readdirSync(out)).toEqual(['thesis.tex']);
  });

  it('an earlier synthetic dataset is replaced whole', async () => {
    const out = join(tmp, 'twice');
    const small = { grid: [8, 8, 8] as [number, number, number], sessions: 1, designSessions: 1, trialsPerSession: 30, sharedImages: 2, formats: ['nifti' as const] };
    await synthNsd({ out, ...small, subjects: [1, 2] });
    expect(existsSync(join(out, 'nsddata', 'ppdata', 'subj02'))).toBe(true);
    await synthNsd({ out, ...small, subjects: [1] });
    expect(existsSync(join(out, 'nsddata', 'ppdata', 'subj02'))).toBe(false);
    expect(readdirSync(tmp).filter((n) => n.startsWith('.'))).toEqual([]);
  });
});
