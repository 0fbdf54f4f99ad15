/**
 * `cache list|prune` name the extraction cache as `nsd extract` does, `--cache DIR` (it was refused as an unknown
 * option: they took only `--dir`, kept as its older name); errors name the flag given.
 */
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerCacheCommand } from '../../../ts/cli/commands/cache.js';
import { extractNsd } from '../../../ts/nsd/extract.js';
import { runCommands } from '../../helpers/cli.js';
import { makeMiniNsd } from '../../nsd/mini.js';

let mini: Awaited<ReturnType<typeof makeMiniNsd>>;
let cache: string;
beforeAll(async () => {
  mini = await makeMiniNsd({ sessions: 1, designSessions: 3, trialsPerSession: 30, sharedImages: 5, imageSize: 8, formats: ['nifti'] });
  cache = join(mini.tmp, 'cache');
  await extractNsd({ root: mini.root, subject: 1, roi: 'nsdgeneral', cacheDir: cache });
}, 120_000);
afterAll(() => mini?.cleanup());

const run = (...args: string[]) => runCommands([registerCacheCommand], ['cache', ...args]);

describe('brainlatent cache: --cache, as nsd extract names the folder; --dir its older name', () => {
  it('list and prune take --cache and --dir alike', async () => {
    for (const flag of ['--cache', '--dir']) {
      expect(await run('list', flag, cache)).toMatch(new RegExp(`^1 entry in ${cache.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, .*; 0 stale$`, 'm'));
      expect(await run('prune', flag, cache, '--older-than', '1e-9', '--dry-run')).toMatch(/^would remove .*subj01_nsdgeneral_.* \(.*\): /m);
    }
    // the same folder twice is one folder
    expect(await run('list', '--cache', cache, '--dir', cache)).toMatch(/^1 entry in /m);
  });

  it('errors name the flag given; two different folders are refused', async () => {
    const nope = join(mini.tmp, 'nope');
    await expect(run('list', '--cache', nope)).rejects.toThrow(`--cache: ${nope} not found`);
    await expect(run('list', '--dir', nope)).rejects.toThrow(`--dir: ${nope} not found`);
    await expect(run('prune', '--cache', cache, '--dir', nope, '--stale')).rejects.toThrow(
      `--cache ${cache} and --dir ${nope} name two folders; --dir is --cache's older name: give one`,
    );
  });

  it('the help says which is which', () => {
    const program = new Command();
    registerCacheCommand(program);
    const cacheCmd = program.commands.find((c) => c.name() === 'cache')!;
    for (const name of ['list', 'prune']) {
      const help = cacheCmd.commands.find((c) => c.name() === name)!.helpInformation();
      expect(help).toMatch(/--cache <dir>\s+cache folder \(default: the global one, as nsd extract\s+--cache/);
      expect(help).toMatch(/--dir <dir>\s+the same as --cache \(its older name, kept\)/);
    }
  });
});
