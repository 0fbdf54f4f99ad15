/**
 * The NSD extraction cache's upkeep. An entry (`<subjNN>_<roi>_<key>/`, written whole by extractNsd) is keyed by its
 * options and its source files' identities (size, modification time), so a change of either writes a new entry and
 * the old one stayed for good — GBs each for real NSD. Two rules remove entries, each safe where it applies:
 * - `removeReplacedEntries` (extractNsd, after writing an entry, in any cache folder): entries made from an earlier
 *   version of a file the new entry has just read (a betas file, the design, a mask re-downloaded or rewritten). No
 *   run can load those again: their key holds identities the files no longer have. An entry whose sources are merely
 *   missing (an NSD root on a drive not mounted now) is kept.
 * - `removeEntriesNotIn` (the extract stage of encode and reconstruct, for a run folder's own cache, `<out>/cache`,
 *   used by that run alone under its folder's lock): entries the run's config no longer uses. A cache folder named
 *   in the config (nsd.cacheDir: a batch's per-subject cache, one shared by several runs) keeps them: another run may
 *   use them.
 * Each removal is reported (path, bytes, why) for the caller to say so.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

import { removeDirWhole } from '../io/atomicWrite.js';
import type { NsdExtraction, NsdManifest, RemovedCacheEntry } from './output.js';

/** An entry's name: subject, region slug and the 20-hex-digit key (extractNsd's cacheEntry). */
const ENTRY_RE = /^subj0[1-8]_[A-Za-z0-9-]{1,40}_([0-9a-f]{20})$/;

interface CacheEntry {
  path: string;
  key: string;
  manifest: NsdManifest;
}

/** The complete entries of a cache folder: a name of the pattern holding an extraction manifest with that key. */
async function cacheEntries(dir: string): Promise<CacheEntry[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const out: CacheEntry[] = [];
  for (const name of names.sort()) {
    const key = ENTRY_RE.exec(name)?.[1];
    if (!key) continue;
    try {
      const manifest = JSON.parse(await readFile(join(dir, name, 'manifest.json'), 'utf8')) as NsdManifest;
      if (manifest?.format === 'brainlatent-nsd-extraction' && manifest.key === key && Array.isArray(manifest.sources)) out.push({ path: join(dir, name), key, manifest });
    } catch {
      // not an entry (or one being written): left alone
    }
  }
  return out;
}

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => [])) {
    if (e.isFile()) total += (await stat(join(e.parentPath, e.name)).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

async function remove(e: CacheEntry, why: string): Promise<RemovedCacheEntry> {
  const bytes = await folderBytes(e.path);
  await removeDirWhole(e.path);
  return { path: e.path, bytes, why };
}

/**
 * Removes the entries of `dir` other than `key` that recorded another identity for one of `sources` (the files the
 * entry `key` was just extracted from, as they are now).
 */
export async function removeReplacedEntries(dir: string, key: string, sources: readonly NsdManifest['sources'][number][]): Promise<RemovedCacheEntry[]> {
  const now = new Map(sources.map((s) => [s.path, s]));
  const removed: RemovedCacheEntry[] = [];
  for (const e of await cacheEntries(dir)) {
    if (e.key === key) continue;
    const changed = e.manifest.sources.find((s) => {
      const n = now.get(s.path);
      return n !== undefined && (n.size !== s.size || n.mtimeMs !== s.mtimeMs);
    });
    if (changed) removed.push(await remove(e, `made from an earlier ${changed.path}, which has changed since (it can never be loaded again)`));
  }
  return removed;
}

/** Removes the entries of a run folder's own cache `dir` whose key is not in `keys` (those the run's config uses). */
export async function removeEntriesNotIn(dir: string, keys: readonly string[]): Promise<RemovedCacheEntry[]> {
  const removed: RemovedCacheEntry[] = [];
  for (const e of await cacheEntries(dir)) {
    if (!keys.includes(e.key)) removed.push(await remove(e, "the run's config no longer uses it (a run folder's own cache keeps what its config reads)"));
  }
  return removed;
}

/**
 * An extract stage's cache upkeep, after its extractions (`used`): the entries extractNsd removed as replaced, and,
 * for a run folder's own cache (`ownCache`: `<out>/cache` when nsd.cacheDir is null; null for a cache named in the
 * config), the entries there that none of `used` is.
 */
export async function extractStageCacheUpkeep(ownCache: string | null, used: readonly NsdExtraction[]): Promise<RemovedCacheEntry[]> {
  const removed = used.flatMap((e) => e.removedFromCache ?? []);
  if (ownCache !== null) removed.push(...(await removeEntriesNotIn(ownCache, used.map((e) => e.manifest.key))));
  return removed;
}

/** '1.7 GB', '312 MB', '4.0 kB'. */
function size(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(1)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(0)} MB`;
  return `${(bytes / 1e3).toFixed(1)} kB`;
}

/** One line per removed entry, for a command to print: 'removed extraction cache entry <path> (1.7 GB): <why>'. */
export function removedEntryLines(removed: readonly RemovedCacheEntry[]): string[] {
  return removed.map((r) => `removed extraction cache entry ${r.path} (${size(r.bytes)}): ${r.why}`);
}
