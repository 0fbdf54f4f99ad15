/**
 * A cache folder's entries for `brainlatent cache list` and `cache prune`: any extraction cache (the global default,
 * a batch's per-subject cache, a run folder's <out>/cache). extractNsd and the extract stage keep removing what can
 * never load again or what a run folder no longer uses (ts/nsd/cache.ts); this is for the rest, chosen by hand:
 * entries made from files that changed or went since, damaged entries (a file missing, truncated or broken: never
 * loadable), and entries not used for a while. An entry this process cannot read (another user's files, an I/O
 * error, a newer brainlatent's manifest) is listed as unreadable, and never removed.
 *
 * Last use: extractNsd sets an entry folder's modification time when it loads it; an entry never loaded since it was
 * written has the time it was written. An entry being loaded (held, ts/nsd/cache.ts) is never removed, and a
 * load never begins on one being removed (removal marks); one is renamed aside before it is deleted (removeDirWhole),
 * so no reader ever finds it half gone.
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';

import { InvalidArgumentError, MissingFileError } from '../errors.js';
import { isStaleTemporary, removeStaleTemporaries } from '../io/atomicWrite.js';
import { cannotEnter, folderNotEntered } from '../io/outputProblem.js';
import { entryFolders, entryHolder, entryState, folderBytes, inspectEntry, removeEntryUnlessHeld, undeletable, type EntryState, type RemovalOutcome, type RemovalStep } from './cache.js';
import type { NsdManifest } from './output.js';

/** An entry as listed; a damaged entry whose manifest cannot be read has null (and no sessions) for what only the manifest says. */
export interface CacheFolderEntry {
  path: string;
  key: string;
  bytes: number;
  createdAt: string | null;
  /** The last load or the creation, whichever is later (the entry folder's modification time). */
  lastUsed: string;
  /** (from the entry's name when its manifest cannot be read) */
  subject: number;
  roi: string | null;
  sessions: number[];
  options: NsdManifest['options'] | null;
  staleness: EntryState;
}

/** The entries of cache folder `dir`, oldest use first; refuses a folder that is missing or holds no entries but other things. */
export async function listCacheFolder(dir: string, label = dir): Promise<CacheFolderEntry[]> {
  const s = await stat(dir).catch(() => null);
  const notEntered = s ? null : await folderNotEntered(dir);
  if (notEntered !== null) throw new InvalidArgumentError(`${label} ${dir}: ${cannotEnter(notEntered)}; expected an NSD extraction cache folder`);
  if (!s) throw new MissingFileError(`${label}: ${dir} not found; expected an NSD extraction cache folder`);
  if (!s.isDirectory()) throw new InvalidArgumentError(`${label}: ${dir} is a file; expected an NSD extraction cache folder`);
  const folders = await entryFolders(dir);
  if (folders.length === 0) {
    const other = (await readdir(dir)).filter((n) => !n.startsWith('.'));
    if (other.length > 0) {
      throw new InvalidArgumentError(
        `${label}: ${dir} is not a brainlatent extraction cache: none of its ${other.length} item(s) (${other.slice(0, 3).join(', ')}${other.length > 3 ? ', …' : ''}) ` +
          'is an entry (a folder subjNN_<roi>_<20-hex key> holding an extraction manifest.json); nothing there is listed or removed',
      );
    }
  }
  const out: CacheFolderEntry[] = [];
  for (const { path, key } of folders) {
    const { manifest: m, damage, unreadable } = await inspectEntry(path, key);
    // written whole at creation, then touched by each load (extractNsd): the folder's time is its last use
    const st = await stat(path).catch(() => null);
    if (!st) continue; // removed since the folder was read
    out.push({
      path,
      key,
      bytes: await folderBytes(path),
      createdAt: m?.createdAt ?? null,
      lastUsed: new Date(st.mtimeMs).toISOString(),
      subject: m?.inputs?.subject ?? Number(/^subj(\d+)_/.exec(basename(path))![1]),
      roi: m?.inputs?.roi ?? null,
      sessions: m?.inputs?.sessions ?? [],
      options: m?.options ?? null,
      staleness: damage !== null ? { state: 'damaged', why: damage } : unreadable ? { state: 'unreadable', why: unreadable.why } : await entryState(m!),
    });
  }
  return out.sort((a, b) => a.lastUsed.localeCompare(b.lastUsed) || a.path.localeCompare(b.path));
}

export interface PruneChoice {
  /** Entries that can never be loaded again: made from a file that changed or is gone, or damaged (never unreadable ones). */
  stale?: boolean;
  /** Entries not used for this many days. */
  olderThanDays?: number;
  /** Say what would go, remove nothing. */
  dryRun?: boolean;
  /** For "now" in tests. */
  now?: number;
  /** Tests: run at each step of each entry's removal (removeEntryUnlessHeld). */
  between?: (step: RemovalStep) => Promise<void>;
}

export interface PruneResult {
  removed: { path: string; bytes: number; why: string }[];
  /** Chosen but left: being loaded by another process. */
  held: { path: string; holder: string }[];
  /** Chosen as damaged but left: another process wrote the entry again, complete, meanwhile. */
  replaced: string[];
  /** Chosen but left: this user cannot delete its files (another user's entry), and why. */
  denied: { path: string; why: string }[];
  bytes: number;
}

const DAY_MS = 86_400_000;

/**
 * Why `e` is chosen by `c`, or null when it stays. An unreadable entry always stays, whatever its age: this process
 * may not be able to delete what it cannot read (another user's), and renaming it aside first would hide it.
 */
function pruneReason(e: CacheFolderEntry, c: PruneChoice, now: number): string | null {
  if (e.staleness.state === 'unreadable') return null;
  if (c.stale && (e.staleness.state === 'stale' || e.staleness.state === 'damaged')) return `${e.staleness.state}: ${e.staleness.why}`;
  if (c.olderThanDays !== undefined && now - Date.parse(e.lastUsed) > c.olderThanDays * DAY_MS) {
    return `not used for ${Math.floor((now - Date.parse(e.lastUsed)) / DAY_MS)} days (last ${e.lastUsed})`;
  }
  return null;
}

/**
 * What writers of this host killed in the cache folder left (an entry being written, an old one being removed), with
 * their sizes: entryFolders sees only finished entries' names, so `cache list` counted none and `cache prune` freed
 * none of an OOM-killed extraction's GBs; only a rewrite of the same entry removed them (review s44).
 */
export async function leftTemporaries(dir: string): Promise<{ path: string; bytes: number }[]> {
  const out: { path: string; bytes: number }[] = [];
  for (const name of (await readdir(dir).catch(() => [] as string[])).sort()) {
    if (isStaleTemporary(name)) out.push({ path: join(dir, name), bytes: await folderBytes(join(dir, name)).catch(() => 0) });
  }
  return out;
}

/**
 * Removes (or with dryRun, names) the entries of `dir` that `choice` picks, leaving those another process holds, and
 * the temporaries killed writers left (leftTemporaries).
 */
export async function pruneCacheFolder(dir: string, choice: PruneChoice, label = dir): Promise<PruneResult> {
  if (!choice.stale && choice.olderThanDays === undefined) throw new InvalidArgumentError('cache prune: name what to remove: --stale, --older-than <days>, or both');
  const now = choice.now ?? Date.now();
  const result: PruneResult = { removed: [], held: [], replaced: [], denied: [], bytes: 0 };
  for (const e of await listCacheFolder(dir, label)) {
    const why = pruneReason(e, choice, now);
    if (!why) continue;
    // (a damaged entry is removed only while it is still damaged: an extraction may write it again meanwhile)
    const stillDamaged = e.staleness.state === 'damaged' ? async (folder: string) => (await inspectEntry(folder, e.key)).damage !== null : undefined;
    // (a removal marks the entry before it looks for holds, so a load that starts meanwhile reads nothing: cache.ts)
    const outcome = choice.dryRun ? await dryRunOutcome(e.path) : await removeEntryUnlessHeld(e.path, choice.between, stillDamaged);
    if ('held' in outcome) {
      result.held.push({ path: e.path, holder: outcome.held });
      continue;
    }
    if ('replaced' in outcome) {
      result.replaced.push(e.path);
      continue;
    }
    if ('denied' in outcome) {
      result.denied.push({ path: e.path, why: outcome.denied });
      continue;
    }
    result.removed.push({ path: e.path, bytes: e.bytes, why });
    result.bytes += e.bytes;
  }
  // (with either choice: nothing loads them, and their writer is dead)
  const left = await leftTemporaries(dir);
  if (left.length && !choice.dryRun) await removeStaleTemporaries(dir);
  for (const t of left) {
    // (removeStaleTemporaries puts back a backup whose entry is missing, rather than removing it: nothing freed then)
    if (!choice.dryRun && (await stat(t.path).catch(() => null)) !== null) continue;
    result.removed.push({ path: t.path, bytes: t.bytes, why: 'left by an interrupted write (its process is gone)' });
    result.bytes += t.bytes;
  }
  return result;
}

/** What a removal would come to now: left (this user cannot delete it), held by a live process, or removed. */
async function dryRunOutcome(entry: string): Promise<RemovalOutcome> {
  const denied = await undeletable(entry);
  if (denied !== null) return { denied };
  const holder = await entryHolder(entry);
  return holder === null ? { removed: true } : { held: holder };
}
