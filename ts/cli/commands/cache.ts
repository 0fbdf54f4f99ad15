/** `brainlatent cache list|prune`: the NSD extraction cache's entries, and removing the stale or unused ones by hand. */
import { existsSync } from 'node:fs';

import type { Command } from 'commander';

import { InvalidArgumentError } from '../../errors.js';
import { folderNotEntered } from '../../io/outputProblem.js';
import { size } from '../../nsd/cache.js';
import { leftTemporaries, listCacheFolder, pruneCacheFolder, type CacheFolderEntry } from '../../nsd/cacheFolder.js';
import { formatSessionList } from '../../nsd/sessionList.js';
import { decimalFlag } from '../flagValue.js';
import { defaultNsdCacheDir, defaultNsdCacheLabel } from '../nsdCacheDir.js';

const CACHE_HELP = 'cache folder (default: the global one, as nsd extract --cache: $BRAINLATENT_CACHE/nsd, $XDG_CACHE_HOME/brainlatent/nsd or ~/.cache/brainlatent/nsd)';
const DIR_HELP = 'the same as --cache (its older name, kept)';

/** The folder flags: --cache, as nsd extract names the same folder, or --dir, its older name. */
interface FolderFlags {
  cache?: string;
  dir?: string;
}

/** The cache folder and the flag that named it (errors name it); both flags with different folders are refused. */
function dirOf(flags: FolderFlags): { dir: string; label: string } {
  if (flags.cache !== undefined && flags.dir !== undefined && flags.cache !== flags.dir) {
    throw new InvalidArgumentError(`--cache ${flags.cache} and --dir ${flags.dir} name two folders; --dir is --cache's older name: give one`);
  }
  if (flags.cache !== undefined) return { dir: flags.cache, label: '--cache' };
  if (flags.dir !== undefined) return { dir: flags.dir, label: '--dir' };
  return { dir: defaultNsdCacheDir(), label: defaultNsdCacheLabel() };
}

/**
 * The global cache before anything was extracted into it: nothing to list or remove, not an error (a named folder
 * is). One below a folder this user cannot enter is not known to be missing: listCacheFolder refuses it.
 */
async function missingDefault(flags: FolderFlags, dir: string): Promise<boolean> {
  if (flags.cache !== undefined || flags.dir !== undefined || existsSync(dir) || (await folderNotEntered(dir)) !== null) return false;
  console.log(`no extraction cache at ${dir} (nothing extracted there yet)`);
  return true;
}

function optionsText(e: CacheFolderEntry): string {
  const o = e.options;
  if (o === null || e.roi === null) return `subject ${e.subject}; region and options unknown (its manifest.json cannot be read)`;
  const z = o.zscore === 'none' ? 'zscore none' : `zscore ${o.zscore} ddof ${o.ddof}`;
  const avg = [o.averageTrain && 'train', o.averageTest && 'test'].filter(Boolean).join('+') || 'none';
  return `subject ${e.subject}, ${e.roi}, sessions ${formatSessionList(e.sessions)}, ${z}, averaged ${avg}, divisor ${o.divisor}`;
}

function entryLines(e: CacheFolderEntry): string {
  const state = e.staleness.state === 'fresh' ? 'ok' : `${e.staleness.state}: ${e.staleness.why}`;
  return `${e.path}\n  ${size(e.bytes)}, created ${e.createdAt ?? 'unknown'}, last used ${e.lastUsed}\n  ${optionsText(e)}\n  ${state}`;
}

export function registerCacheCommand(program: Command): void {
  const cache = program
    .command('cache')
    .description('list the NSD extraction cache, and remove its stale, damaged or unused entries')
    .addHelpText(
      'after',
      `
An entry (subjNN_<roi>_<key>/, one per extraction's inputs and options) is kept until removed: extractions
remove only the entries made from an earlier version of a file they read, and a run folder's own cache
(<out>/cache) the entries its config no longer uses. A named cache (the global one, nsd.cacheDir, a batch's
per-subject caches) keeps the rest: remove them here.

Examples:
  brainlatent cache list
  brainlatent cache list --cache runs/batch1/subj01/cache
  brainlatent cache prune --stale --dry-run
  brainlatent cache prune --stale --older-than 30`,
    );

  cache
    .command('list')
    .description('every entry: size, creation and last use, the subject, region and options it was made with, and whether it is stale, damaged or unreadable')
    .option('--cache <dir>', CACHE_HELP)
    .option('--dir <dir>', DIR_HELP)
    .option('--json', 'print JSON instead of text')
    .addHelpText(
      'after',
      `
Stale: a file the entry was made from has changed or was deleted since; it can never be loaded again.
Unreachable: the folder of a file it was made from is missing (an NSD root on a drive not mounted now); it
loads again once the files are back. Damaged: what the entry holds is incomplete or broken (its manifest.json
missing or not valid, or a file it lists missing, truncated or of another shape: a copy cut short, a disk that
filled, a file deleted by hand); it can never be loaded: the next extraction with its options writes it again in
its place, and 'cache prune --stale' removes it. Unreadable: this user cannot read it, though nothing is known
to be wrong with it (another user's files: permission denied; an I/O error; written by a newer brainlatent);
extractions refuse it, naming it, and 'cache prune' never removes it. Last use is the last time an extraction
loaded it.

Examples:
  brainlatent cache list
  brainlatent cache list --cache runs/batch1/subj01/cache --json`,
    )
    .action(async (flags: FolderFlags & { json?: boolean }) => {
      const { dir, label } = dirOf(flags);
      if (await missingDefault(flags, dir)) return;
      const entries = await listCacheFolder(dir, label);
      const left = await leftTemporaries(dir);
      if (flags.json) {
        console.log(JSON.stringify({ dir, entries, leftTemporaries: left }, null, 2));
        return;
      }
      for (const e of entries) console.log(entryLines(e));
      const bytes = entries.reduce((t, e) => t + e.bytes, 0);
      const stale = entries.filter((e) => e.staleness.state === 'stale').length;
      const damaged = entries.filter((e) => e.staleness.state === 'damaged').length;
      const unreadable = entries.filter((e) => e.staleness.state === 'unreadable').length;
      console.log(
        `${entries.length} entr${entries.length === 1 ? 'y' : 'ies'} in ${dir}, ${size(bytes)}; ${stale} stale` +
          `${damaged ? `, ${damaged} damaged` : ''}${unreadable ? `, ${unreadable} unreadable` : ''}`,
      );
      if (left.length) {
        const bytes = left.reduce((t, l) => t + l.bytes, 0);
        console.log(`${left.length} temporar${left.length === 1 ? 'y' : 'ies'} left by interrupted writes (their processes are gone), ${size(bytes)}: 'cache prune --stale' removes them`);
      }
    });

  cache
    .command('prune')
    .description('remove the stale and damaged entries, the entries not used for some days, or both')
    .option('--cache <dir>', CACHE_HELP)
    .option('--dir <dir>', DIR_HELP)
    .option('--stale', 'remove the entries that can never be loaded again: made from a file that has changed or was deleted since, or damaged (a file missing, truncated or broken)')
    .option('--older-than <days>', 'remove the entries not loaded or written for more than this many days')
    .option('--dry-run', 'print what would be removed, remove nothing')
    .addHelpText(
      'after',
      `
With both --stale and --older-than, an entry either picks goes. An entry another process is loading at the
time is left (and named), and so is a damaged one that an extraction has written again, complete, meanwhile.
An unreadable entry (cache list: another user's files, an I/O error, a newer brainlatent's) is never removed,
whatever its age: its owner, or that brainlatent, can. An entry is renamed aside, then deleted: no run ever
loads half of one.

Examples:
  brainlatent cache prune --stale --dry-run
  brainlatent cache prune --older-than 30
  brainlatent cache prune --cache runs/batch1/subj01/cache --stale --older-than 90`,
    )
    .action(async (flags: FolderFlags & { stale?: boolean; olderThan?: string; dryRun?: boolean }) => {
      const { dir, label } = dirOf(flags);
      if (await missingDefault(flags, dir)) return;
      const olderThanDays = flags.olderThan === undefined ? undefined : decimalFlag(flags.olderThan, '--older-than', 0);
      const r = await pruneCacheFolder(dir, { stale: flags.stale, olderThanDays, dryRun: flags.dryRun }, label);
      const verb = flags.dryRun ? 'would remove' : 'removed';
      for (const e of r.removed) console.log(`${verb} ${e.path} (${size(e.bytes)}): ${e.why}`);
      for (const h of r.held) console.log(`kept ${h.path}: being loaded by ${h.holder}`);
      for (const p of r.replaced) console.log(`kept ${p}: written again, complete, by an extraction meanwhile`);
      for (const d of r.denied) console.log(`kept ${d.path}: ${d.why}`);
      console.log(`${flags.dryRun ? 'would free' : 'freed'} ${size(r.bytes)} (${r.removed.length} entr${r.removed.length === 1 ? 'y' : 'ies'}) in ${dir}`);
    });
}
