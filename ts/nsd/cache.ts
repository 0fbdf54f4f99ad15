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
 * Each removal is reported (path, bytes, why) for the caller to say so, and so is each entry chosen but left (a live
 * load holds it; this user cannot delete it), with cache prune's words for why.
 *
 * A damaged entry (its manifest.json broken or missing, or a file it lists missing, truncated or of another shape: a
 * copy cut short, a full disk, a file deleted by hand; inspectEntry; or, found by the load, data that fail the CRC-32
 * the manifest records: a bit flipped on a disk) is a miss for extractNsd, which extracts afresh
 * and writes the entry again in its place (whole, as every entry), and `cache prune --stale` removes it. A damaged
 * entry this user cannot delete (another user's, in a sticky shared folder or a folder of theirs; a read-only file
 * system: deletionBlocker) is left as it is, and extractNsd returns its extraction uncached, saying why
 * (NsdExtraction.notCached), as in a read-only cache folder. An entry this process cannot read (permission denied:
 * another user's in a shared cache; an I/O error; a manifest of a newer brainlatent) is not damaged: extractNsd
 * refuses it, naming it, and nothing removes or replaces it.
 */
import { constants as fsConstants } from 'node:fs';
import { access, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, sep } from 'node:path';

import { BrainlatentError, FileAccessError, FormatError, LimitError, MissingFileError, NonFiniteError, ShapeError } from '../errors.js';
import { fileOpenError } from '../io/byteStream.js';
import { HOST_TAG, removeDirWhole, temporarySibling } from '../io/atomicWrite.js';
import { readNpyHeader } from '../io/npy.js';
import { processAlive } from '../io/processAlive.js';
import { EXTRACTION_FILES, newerManifestVersion, NSD_MANIFEST_VERSION, type KeptCacheEntry, type NsdExtraction, type NsdManifest, type RemovedCacheEntry } from './output.js';

/** An entry's name: subject, region slug and the 20-hex-digit key (extractNsd's cacheEntry). */
const ENTRY_RE = /^subj0[1-8]_[A-Za-z0-9-]{1,40}_([0-9a-f]{20})$/;

export interface CacheEntry {
  path: string;
  key: string;
  manifest: NsdManifest;
}

type SourceIdentity = NsdManifest['sources'][number];

/** Whether a source file as it is `now` is not the one an entry recorded (the one rule of staleness). */
function changedSince(recorded: SourceIdentity, now: SourceIdentity): boolean {
  return now.size !== recorded.size || now.mtimeMs !== recorded.mtimeMs;
}

/**
 * An entry's state: `stale` when a source changed or was deleted, `unreachable` when a source's folder is missing,
 * `damaged` when what the entry holds is incomplete or broken, `unreadable` when this process cannot read it though
 * nothing is known to be wrong with it (another user's files, an I/O error, a newer brainlatent's: inspectEntry).
 */
export type EntryState = { state: 'fresh' } | { state: 'stale' | 'unreachable' | 'damaged' | 'unreadable'; why: string };

/**
 * Whether an entry can still be loaded: each recorded source is stat'ed and compared as removeReplacedEntries
 * compares them. A source deleted from a folder that is still there makes the entry stale; a source whose folder is
 * missing too (an NSD root on a drive not mounted now) makes it unreachable, not stale: it may load again later.
 */
export async function entryState(manifest: NsdManifest): Promise<EntryState> {
  let unreachable: string | null = null;
  for (const s of manifest.sources) {
    const now = await stat(s.path).catch(() => null);
    if (now) {
      if (changedSince(s, { path: s.path, size: now.size, mtimeMs: now.mtimeMs })) return { state: 'stale', why: `${s.path} has changed since it was made` };
    } else if (await stat(dirname(s.path)).catch(() => null)) {
      return { state: 'stale', why: `${s.path} is gone` };
    } else unreachable ??= `${dirname(s.path)} is not there (a drive not mounted?)`;
  }
  return unreachable ? { state: 'unreachable', why: unreachable } : { state: 'fresh' };
}

/** The entry folders of a cache folder, by name (`subjNN_<roi>_<key>`), whatever they hold; [] when it cannot be read. */
export async function entryFolders(dir: string): Promise<{ path: string; key: string }[]> {
  const out: { path: string; key: string }[] = [];
  for (const name of (await readdir(dir).catch(() => [] as string[])).sort()) {
    const key = ENTRY_RE.exec(name)?.[1];
    // (a file of that name is no entry: never removed as one)
    if (key && (await stat(join(dir, name)).catch(() => null))?.isDirectory()) out.push({ path: join(dir, name), key });
  }
  return out;
}

/** What keeps `m` (manifest.json's parsed text) from being the manifest of entry `key`, or null. */
function manifestProblem(m: unknown, key: string): string | null {
  if (m === null || typeof m !== 'object' || Array.isArray(m)) return `not an extraction manifest (a JSON ${m === null ? 'null' : Array.isArray(m) ? 'array' : typeof m})`;
  const o = m as Partial<NsdManifest>;
  if (o.format !== 'brainlatent-nsd-extraction') return `not an extraction manifest (format ${JSON.stringify(o.format)}, expected "brainlatent-nsd-extraction")`;
  // (a newer brainlatent's is not damaged: inspectEntry says so before this; any other version is no version at all)
  if (o.version !== undefined && o.version !== NSD_MANIFEST_VERSION) return `version ${JSON.stringify(o.version)}, expected ${NSD_MANIFEST_VERSION}`;
  if (o.key !== key) return `key ${JSON.stringify(o.key)}, expected ${key} (the entry's name)`;
  if (!Array.isArray(o.sources)) return 'no "sources" list';
  if (o.files === null || typeof o.files !== 'object') return 'no "files" list';
  // (each listed file's dtype and shape, which the entry's files are checked against: a hand-broken listing is damage,
  // not a TypeError that stopped cache list, prune and every extraction)
  for (const [name, f] of Object.entries(o.files as Record<string, unknown>)) {
    const d = f as { dtype?: unknown; shape?: unknown } | null;
    if (d === null || typeof d !== 'object' || typeof d.dtype !== 'string' || !Array.isArray(d.shape) || !d.shape.every((n) => Number.isSafeInteger(n) && (n as number) >= 0)) {
      return `"files" lists ${name} without its dtype and shape (expected { "dtype": "float32", "shape": [rows, …] })`;
    }
  }
  return null;
}

/** The files of an entry besides its manifest: each must be listed there, and be there whole. */
const ENTRY_DATA_FILES = Object.values(EXTRACTION_FILES).filter((n) => n !== EXTRACTION_FILES.manifest);

/**
 * Why this process cannot read an entry though nothing is known to be wrong with it, and the error that said so: a
 * file this user may not read (`access`: EACCES, EPERM: another user's entry in a shared cache), one the system
 * could not read now (`access` too: EIO, EMFILE, ENOSPC …), a manifest of a newer brainlatent (`newer`), or
 * anything else (`other`: memory, a limit). Such an entry is never replaced nor removed: another user, another
 * moment or another brainlatent reads it.
 */
export interface EntryUnreadable {
  kind: 'access' | 'newer' | 'other';
  why: string;
  error: BrainlatentError;
}

/** An entry folder's manifest (null when unreadable) and what is wrong with the entry (null when it is complete). */
export interface EntryInspection {
  manifest: NsdManifest | null;
  /** What is wrong with what the entry holds (it can never be loaded), or null. */
  damage: string | null;
  /** Why this process could not look (nothing is known to be wrong: no damage), or null. */
  unreadable: EntryUnreadable | null;
}

/**
 * What an error thrown while reading a file of entry `entry` says: `damage` when it is about what the entry holds
 * (a file it lists missing: MissingFileError; not of its format, cut short: FormatError; of another shape:
 * ShapeError; data not finite: NonFiniteError; a .npy header over the reader's cap: LimitError on 'header_len'),
 * `unreadable` for anything else (a FileAccessError, an errno error such as EIO or EMFILE, an OutOfMemoryError,
 * another LimitError, a newer brainlatent's manifest). Throws `e` when it is neither a refusal nor a system error (a bug).
 */
export function entryReadProblem(entry: string, e: unknown): { damage: string } | { unreadable: EntryUnreadable } {
  const manifest = join(entry, EXTRACTION_FILES.manifest);
  const newer = e instanceof FormatError && e.field === 'version' && e.path === manifest;
  // (the entry's .npy files are writeNpy's, whose headers are a few hundred bytes: one declared over the reader's
  // 1 MiB cap, yet inside the file (a longer one is a FormatError already), is a corrupt length field, not a file too
  // big to read; as unreadable it was refused for good, "try again", and never pruned)
  const corruptHeader = e instanceof LimitError && e.field === 'header_len';
  if (corruptHeader || (!newer && (e instanceof MissingFileError || e instanceof FormatError || e instanceof ShapeError || e instanceof NonFiniteError))) {
    return { damage: entryRelative(entry, e.message) };
  }
  const code = (e as NodeJS.ErrnoException | null)?.code;
  const error =
    e instanceof BrainlatentError ? e : e instanceof Error && typeof code === 'string' ? new FileAccessError(e.message, code, { path: (e as NodeJS.ErrnoException).path }, { cause: e }) : null;
  if (error === null) throw e;
  const kind = newer ? 'newer' : error instanceof FileAccessError ? 'access' : 'other';
  return { unreadable: { kind, why: entryRelative(entry, error.message), error } };
}

/**
 * Whether the entry folder `path` (named for `key`) is complete: its manifest.json an extraction manifest of that key,
 * and every file the manifest lists there whole, with the dtype and shape it records (the .npy header checked against
 * the file's size: a truncated file is damaged). The data themselves are read by the load only. The damage is said
 * naming the file: 'train_betas.npy: file not found', 'manifest.json: not valid JSON (…)'. A file this process cannot
 * read (permission denied, an I/O error) or a manifest of a newer brainlatent is no damage: `unreadable` says why.
 */
export async function inspectEntry(path: string, key: string): Promise<EntryInspection> {
  const F = EXTRACTION_FILES;
  const problem = (e: unknown, manifest: NsdManifest | null): EntryInspection => {
    const p = entryReadProblem(path, e);
    return 'damage' in p ? { manifest, damage: p.damage, unreadable: null } : { manifest, damage: null, unreadable: p.unreadable };
  };
  let text: string;
  try {
    text = await readFile(join(path, F.manifest), 'utf8');
  } catch (e) {
    // (missing: MissingFileError, damage; this user may not read it: FileAccessError, EIO and the like as they are)
    return problem(fileOpenError(join(path, F.manifest), e), null);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    return { manifest: null, damage: `${F.manifest}: not valid JSON (${(e as Error).message})`, unreadable: null };
  }
  const version = (parsed as Partial<NsdManifest> | null)?.format === 'brainlatent-nsd-extraction' ? newerManifestVersion(parsed) : null;
  if (version !== null) {
    const at = join(path, F.manifest);
    return problem(new FormatError(`${at}: written by a newer brainlatent (manifest version ${version})`, { path: at, field: 'version' }), null);
  }
  const wrong = manifestProblem(parsed, key);
  if (wrong) return { manifest: null, damage: `${F.manifest}: ${wrong}`, unreadable: null };
  const manifest = parsed as NsdManifest;
  for (const name of ENTRY_DATA_FILES) {
    const listed = manifest.files[name];
    if (!listed) return { manifest, damage: `${F.manifest} does not list ${name}`, unreadable: null };
    try {
      const h = await readNpyHeader(join(path, name));
      if (h.dtype !== listed.dtype || h.shape.join() !== listed.shape.join()) {
        return { manifest, damage: `${name}: ${h.dtype} [${h.shape.join(', ')}], expected ${listed.dtype} [${listed.shape.join(', ')}] as ${F.manifest} records`, unreadable: null };
      }
    } catch (e) {
      return problem(e, manifest);
    }
  }
  return { manifest, damage: null, unreadable: null };
}

/**
 * The error extractNsd throws for entry `entry`, which it could not read (`u`): the entry named, said to be kept as
 * it is, and what to do. Its class and fields are `u.error`'s (a FileAccessError keeps its errno).
 */
export function entryUnreadableError(entry: string, u: EntryUnreadable): BrainlatentError {
  const e = u.error;
  const denied = e instanceof FileAccessError && (e.errno === 'EACCES' || e.errno === 'EPERM');
  const what =
    u.kind === 'newer'
      ? `was ${u.why.replace(`${EXTRACTION_FILES.manifest}: `, '')}; it is kept as it is: use that version, or give another cache folder`
      : `cannot be read (${u.why}); it is kept as it is: ` +
        (denied ? `its owner can make it readable (chmod -R a+rX ${entry}), or give another cache folder` : 'try again, or give another cache folder');
  e.message = `extractNsd cacheDir: extraction cache entry ${entry} ${what}`;
  return e;
}

/** A reader's message about a file of entry `path` with the entry's path left out: 'train_betas.npy: file not found'. */
export function entryRelative(path: string, message: string): string {
  return message.split(path + sep).join('');
}

/** The entries of a cache folder whose manifest is an extraction manifest of their key (their files are not checked). */
export async function cacheEntries(dir: string): Promise<CacheEntry[]> {
  const out: CacheEntry[] = [];
  for (const { path, key } of await entryFolders(dir)) {
    try {
      const manifest = JSON.parse(await readFile(join(path, 'manifest.json'), 'utf8')) as unknown;
      if (manifestProblem(manifest, key) === null) out.push({ path, key, manifest: manifest as NsdManifest });
    } catch {
      // damaged (cache list names it; an extraction of its key replaces it): left alone here
    }
  }
  return out;
}

export async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => [])) {
    if (e.isFile()) total += (await stat(join(e.parentPath, e.name)).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

/** What an upkeep did: the entries it removed, and those it chose but left, with why. */
export interface CacheUpkeep {
  removed: RemovedCacheEntry[];
  kept: KeptCacheEntry[];
}

/**
 * Removes entry `e` into `upkeep.removed`, unless a live process is loading it (a hold, as `cache prune` honours: a
 * later upkeep removes it) or this user cannot delete it (another user's, a sticky folder, a read-only file system:
 * it stays until its owner's extraction or `cache prune` removes it); either is said in `upkeep.kept`, in prune's
 * words for its `kept <entry>: …` lines.
 */
async function remove(e: CacheEntry, why: string, upkeep: CacheUpkeep): Promise<void> {
  const bytes = await folderBytes(e.path);
  const outcome = await removeEntryUnlessHeld(e.path);
  if ('removed' in outcome) upkeep.removed.push({ path: e.path, bytes, why });
  else if ('held' in outcome) upkeep.kept.push({ path: e.path, why: `being loaded by ${outcome.held}` });
  else if ('denied' in outcome) upkeep.kept.push({ path: e.path, why: outcome.denied });
}

/**
 * Removes the entries of `dir` other than `key` that recorded another identity for one of `sources` (the files the
 * entry `key` was just extracted from, as they are now).
 */
export async function removeReplacedEntries(dir: string, key: string, sources: readonly NsdManifest['sources'][number][]): Promise<CacheUpkeep> {
  const now = new Map(sources.map((s) => [s.path, s]));
  const upkeep: CacheUpkeep = { removed: [], kept: [] };
  for (const e of await cacheEntries(dir)) {
    if (e.key === key) continue;
    const changed = e.manifest.sources.find((s) => {
      const n = now.get(s.path);
      return n !== undefined && changedSince(s, n);
    });
    if (changed) await remove(e, `made from an earlier ${changed.path}, which has changed since (it can never be loaded again)`, upkeep);
  }
  return upkeep;
}

/** Removes the entries of a run folder's own cache `dir` whose key is not in `keys` (those the run's config uses). */
export async function removeEntriesNotIn(dir: string, keys: readonly string[]): Promise<CacheUpkeep> {
  const upkeep: CacheUpkeep = { removed: [], kept: [] };
  for (const e of await cacheEntries(dir)) {
    if (!keys.includes(e.key)) await remove(e, "the run's config no longer uses it (a run folder's own cache keeps what its config reads)", upkeep);
  }
  return upkeep;
}

/**
 * An extract stage's cache upkeep, after its extractions (`used`): the entries extractNsd removed as replaced (and
 * left), and, for a run folder's own cache (`ownCache`: `<out>/cache` when nsd.cacheDir is null; null for a cache
 * named in the config), the entries there that none of `used` is.
 */
export async function extractStageCacheUpkeep(ownCache: string | null, used: readonly NsdExtraction[]): Promise<StageCacheUpkeep> {
  const removed = used.flatMap((e) => e.removedFromCache ?? []);
  const kept = used.flatMap((e) => e.keptInCache ?? []);
  if (ownCache !== null) {
    const own = await removeEntriesNotIn(ownCache, used.map((e) => e.manifest.key));
    removed.push(...own.removed);
    kept.push(...own.kept);
  }
  // each extraction's upkeep walks the whole folder (reconstruct's z and c, then a run folder's own cache): an entry
  // left by each is said once, with the last reason, and not at all where a later one removed it
  const gone = new Set(removed.map((r) => r.path));
  const once = new Map<string, KeptCacheEntry>();
  for (const k of kept) {
    once.delete(k.path);
    if (!gone.has(k.path)) once.set(k.path, k);
  }
  // (reconstruct's two regions in one read-only cache: said once)
  return { removed, kept: [...once.values()], notCached: [...new Set(used.flatMap((e) => (e.notCached ? [e.notCached] : [])))] };
}

/** An extract stage's upkeep, and why extractions were not cached (NsdExtraction.notCached: a read-only cache folder, a damaged entry this user cannot delete). */
export interface StageCacheUpkeep extends CacheUpkeep {
  notCached: string[];
}

/** An extract stage's summary fields for its upkeep: `cacheRemoved`, `cacheKept` and `cacheNotWritten`, each only when not empty. */
export function cacheUpkeepSummary(upkeep: StageCacheUpkeep): { cacheRemoved?: RemovedCacheEntry[]; cacheKept?: KeptCacheEntry[]; cacheNotWritten?: string[] } {
  return {
    ...(upkeep.removed.length ? { cacheRemoved: upkeep.removed } : {}),
    ...(upkeep.kept.length ? { cacheKept: upkeep.kept } : {}),
    ...(upkeep.notCached.length ? { cacheNotWritten: upkeep.notCached } : {}),
  };
}

/*
 * Holds: a process loading an entry marks it with `.<entry>.hold-<host>-<pid>-<random>` beside it for the duration of
 * the read, so that `brainlatent cache prune` leaves an entry being loaded alone (a reader needs no exclusive lock:
 * several runs may load one entry at once). A hold left by a killed process of this host is ignored and removed.
 *
 * Removal marks close the race between a load and a removal (`cache prune`, and the upkeep above). A remover used to
 * look for holds, find none, and rename the entry aside a moment later; a reader that took its hold and found the
 * manifest in that moment then read a folder renamed and deleted under it (a partial read thrown away and the
 * extraction run again, or, had another process written the entry again meanwhile, an ENOENT that failed the run),
 * and an entry being loaded was removed, which a hold promises never happens. Now each side announces itself before
 * it looks for the other: a remover creates its mark `.<entry>.prune-<host>-<pid>-<random>`, then looks for holds
 * (one found: it leaves the entry); a reader creates its hold, then looks for marks (one found: it reads nothing,
 * as for an entry that is not there). Whichever looks second sees the other's file, so a reader never reads an entry
 * that is then removed, and a remover never removes an entry a reader has begun to read. (Both back off only when
 * both announce in the same instant: the entry stays, and that reader extracts afresh.) The order relies on the
 * file system showing a created file to a later readdir, as a local one does.
 */
const HOLD_RE = /^\.(.+)\.hold-([0-9a-f]{6})-(\d+)-[0-9a-f]{8}$/;
const MARK_RE = /^\.(.+)\.prune-([0-9a-f]{6})-(\d+)-[0-9a-f]{8}$/;

/**
 * A mark older than this is a killed remover's, whatever its host: a remover keeps its mark only while it looks for
 * holds and renames the entry aside (milliseconds). (A hold has no such age: a load can take that long.)
 */
export const STALE_MARK_MS = 10 * 60_000;

const random8 = () => Math.floor(Math.random() * 2 ** 32).toString(16).padStart(8, '0');

/** Creates `.<entry>.<kind>-<host>-<pid>-<random>` beside `entry` (O_EXCL); returns its path. */
async function announce(entry: string, kind: 'hold' | 'prune'): Promise<string> {
  const path = join(dirname(entry), `.${basename(entry)}.${kind}-${HOST_TAG}-${process.pid}-${random8()}`);
  await (await open(path, 'wx')).close();
  return path;
}

/** Marks `entry` as being loaded by this process; call the returned function when done (it never throws). */
export async function holdEntry(entry: string): Promise<() => Promise<void>> {
  const path = await announce(entry, 'hold').catch(() => null);
  // (null: a read-only cache folder, which nothing can prune either)
  return path === null ? async () => undefined : () => rm(path, { force: true }).catch(() => undefined);
}

/**
 * Holds `entry` for a load (holdEntry), unless a removal of it is under way: then null (and no hold), and the entry
 * is to be read as missing. Call the returned function when the load is done.
 */
export async function holdForLoad(entry: string): Promise<(() => Promise<void>) | null> {
  const release = await holdEntry(entry);
  if (!(await removalUnderway(entry))) return release;
  await release();
  return null;
}

/** Whether another process has marked `entry` for removal; killed removers' marks are removed. */
async function removalUnderway(entry: string): Promise<boolean> {
  const now = Date.now();
  let underway = false;
  for (const name of await readdir(dirname(entry)).catch(() => [] as string[])) {
    const m = MARK_RE.exec(name);
    if (!m || m[1] !== basename(entry)) continue;
    const path = join(dirname(entry), name);
    const mtime = (await stat(path).catch(() => null))?.mtimeMs;
    if (mtime === undefined) continue; // its remover has just finished
    const dead = (m[2] === HOST_TAG && !processAlive(Number(m[3]))) || now - mtime > STALE_MARK_MS;
    if (dead) await rm(path, { force: true }).catch(() => undefined);
    else underway = true;
  }
  return underway;
}

/** Where removeEntryUnlessHeld has got to, for a test to run a reader (or a writer) there. */
export type RemovalStep = 'marked' | 'checked' | 'renamed';

/**
 * What became of an entry to be removed: removed; left because a live process holds it (`held`, entryHolder's
 * words); or left because it is no longer what was chosen (`replaced`: a damaged entry that another process wrote
 * again, complete, in the meantime).
 */
export type RemovalOutcome = { removed: true } | { held: string } | { replaced: true } | { denied: string };

/**
 * Removes `entry` (renamed aside, then deleted: removeDirWhole) unless a live process holds it. The mark goes once
 * the entry is out of the way. `between` runs at each step (tests: a reader starting in the instant after the mark,
 * or after the look for holds).
 *
 * `stillChosen` (for a damaged entry): a damaged entry is the one kind that a writer replaces, extractNsd writing its
 * key again. Holds do not stop a writer, so the folder renamed aside is checked again: one that `stillChosen` no
 * longer picks (the complete entry another process has just swapped in) is put back, never deleted.
 */
export async function removeEntryUnlessHeld(
  entry: string,
  between?: (step: RemovalStep) => Promise<void>,
  stillChosen?: (folder: string) => Promise<boolean>,
): Promise<RemovalOutcome> {
  // (an entry whose files this user cannot delete, another user's, is left as it is: renamed aside first and then not
  // deleted, it was lost to its owner under a hidden name)
  const denied = await undeletable(entry);
  if (denied !== null) return { denied };
  // (a folder where the mark cannot be written is one where the entry cannot be renamed either: that error, as before)
  const mark = await announce(entry, 'prune');
  const unmark = () => rm(mark, { force: true }).catch(() => undefined);
  try {
    await between?.('marked');
    const holder = await entryHolder(entry);
    if (holder !== null) return { held: holder };
    await between?.('checked');
    if (!stillChosen) {
      await removeDirWhole(entry, unmark);
      return { removed: true };
    }
    const aside = temporarySibling(entry);
    try {
      await rename(entry, aside);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { removed: true };
      throw e;
    }
    await unmark();
    await between?.('renamed');
    if (!(await stillChosen(aside))) {
      // (back in place; if yet another complete one is there by now, this copy of it goes)
      await rename(aside, entry).catch(() => rm(aside, { recursive: true, force: true }));
      return { replaced: true };
    }
    await rm(aside, { recursive: true, force: true });
    return { removed: true };
  } finally {
    await unmark();
  }
}

/**
 * Why this process cannot delete the files of `entry` (a folder of it it may not write into or enter: EACCES, EPERM,
 * EROFS), or null when it can (or the entry is gone), with its owner as the remedy (prune's and the upkeep's words).
 */
export async function undeletable(entry: string): Promise<string | null> {
  const b = await deletionBlocker(entry);
  return b === null ? null : b.readOnlyFs ? b.why : `${b.why}; its owner can remove it`;
}

/**
 * The system error behind a write that was refused permission (EACCES, EPERM): `e` itself, or the cause of the
 * writer's InvalidArgumentError naming the path (atomicWrite's describeWriteError); null for any other failure.
 */
export function permissionRefusal(e: unknown): NodeJS.ErrnoException | null {
  const system = (x: unknown) => (/^E[A-Z]+$/.test(String((x as NodeJS.ErrnoException | null)?.code)) ? (x as NodeJS.ErrnoException) : null);
  const err = system(e) ?? system((e as Error | null)?.cause);
  return err?.code === 'EACCES' || err?.code === 'EPERM' ? err : null;
}

/**
 * What keeps this process from deleting the files of `entry`, or null when nothing does (or the entry is gone): the
 * cache folder's sticky bit (stickyDenies: another user's entry), a folder of it it may not write into or enter
 * (EACCES, EPERM: another user's), or a read-only file system (`readOnlyFs`: nobody can, its owner included). `why`
 * is a phrase: 'this user cannot delete its files (its folder: EACCES)'.
 */
export async function deletionBlocker(entry: string): Promise<{ why: string; readOnlyFs: boolean } | null> {
  const sticky = await stickyDenies(entry);
  if (sticky !== null) return { why: `this user cannot delete its files (${sticky})`, readOnlyFs: false };
  const folders = [entry];
  for (const e of await readdir(entry, { withFileTypes: true, recursive: true }).catch(() => [])) if (e.isDirectory()) folders.push(join(e.parentPath, e.name));
  for (const folder of folders) {
    try {
      await access(folder, fsConstants.W_OK | fsConstants.X_OK);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') continue;
      const where = folder === entry ? 'its folder' : folder;
      // (on a read-only file system nobody can: its owner is no remedy)
      if (code === 'EROFS') return { why: `its files cannot be deleted (${where}: EROFS, a read-only file system)`, readOnlyFs: true };
      return { why: `this user cannot delete its files (${where}: ${code ?? (e as Error).message})`, readOnlyFs: false };
    }
  }
  return null;
}

/**
 * Why the cache folder's sticky bit (0o1000, S_ISVTX: a shared folder of mode 1777 or 3775) keeps this user from
 * renaming `entry` away, which `access` does not tell: there only the owner of the entry or of the folder (or root)
 * may rename or delete it. Null when it does not.
 */
export async function stickyDenies(entry: string): Promise<string | null> {
  const uid = process.getuid?.();
  if (uid === undefined || uid === 0) return null;
  const [folder, own] = await Promise.all([stat(dirname(entry)).catch(() => null), stat(entry).catch(() => null)]);
  if (!folder || !own || (folder.mode & 0o1000) === 0 || folder.uid === uid || own.uid === uid) return null;
  return `the cache folder ${dirname(entry)} is sticky (mode ${(folder.mode & 0o7777).toString(8)}) and the entry is uid ${own.uid}'s, not this user's`;
}

/**
 * Who holds `entry` now: a live process of this host ('pid N'), or one of another host (which cannot be checked: the
 * hold file is named for deleting by hand). Holds of dead processes of this host are removed. Null when none.
 */
export async function entryHolder(entry: string): Promise<string | null> {
  for (const name of await readdir(dirname(entry)).catch(() => [] as string[])) {
    const m = HOLD_RE.exec(name);
    if (!m || m[1] !== basename(entry)) continue;
    const path = join(dirname(entry), name);
    if (m[2] !== HOST_TAG) return `a process on another host (pid ${m[3]}; if it is gone, delete ${path})`;
    if (processAlive(Number(m[3]))) return `pid ${m[3]}`;
    await rm(path, { force: true }).catch(() => undefined);
  }
  return null;
}

/** '1.7 GB', '312 MB', '4.0 kB'. */
export function size(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(1)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(0)} MB`;
  return `${(bytes / 1e3).toFixed(1)} kB`;
}

/**
 * One line per entry an upkeep removed or left, for a command to print: 'removed extraction cache entry <path>
 * (1.7 GB): <why>', 'kept extraction cache entry <path>: this user cannot delete its files (…); its owner can remove it'.
 */
export function cacheUpkeepLines(removed: readonly RemovedCacheEntry[], kept: readonly KeptCacheEntry[] = [], notCached: readonly string[] = []): string[] {
  return [
    ...removed.map((r) => `removed extraction cache entry ${r.path} (${size(r.bytes)}): ${r.why}`),
    ...kept.map((k) => `kept extraction cache entry ${k.path}: ${k.why}`),
    ...notCached.map((n) => `extraction cache: ${n}`),
  ];
}
