/**
 * Image features that several analyses of one subject compute alike, computed once per batch: the VAE latents z
 * (same images, model, side, posterior mode and seed) and the caption embeddings c (same captions, model). Each
 * is a job of the graph (`<batch>.<subject>.shared.<z|c>-<recipe hash>`) on which every analysis that needs it
 * depends; it writes a content-addressed entry under the subject's cache (`cache/features/<z|c>-<key>/`), and
 * each analysis's own features stage (reconstruct: `features`, encode: `embed`) hard-links the entry's files
 * into its run folder instead of computing them. One process computes an entry at a time (`<key>.lock` beside it):
 * two jobs that need an entry not there yet (a shared job and a features-link job) do not both compute it.
 * An entry is checked when read, as the NSD extraction cache checks its own (ts/nsd/cache.ts): a damaged one is a miss,
 * computed again and written whole in its place by its lock's holder; one of a newer brainlatent, or one this process
 * cannot read, is refused and left as it is. A damaged one this user cannot replace (or one in a cache folder it may
 * not write in) is left as it is too, and each job that needs it computes its own, uncached (ensureEntry's uncachedDir).
 *
 * The key is what determines the bytes: the recipe (model folder, image side, posterior mode and seed, caption
 * source, images per model call — the text encoder sees one call's captions together —, ONNX Runtime provider,
 * library and threads), the sizes and times of the files it reads (the model's components, the stimuli, the
 * captions) and the list of 73k ids. The computation is the stages' own, call for call, so an analysis's
 * features are bit-identical to those of its single-process run.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, copyFile, link, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import type { EncodeConfig } from '../config/encode.js';
import { BrainlatentError, CancelledError, FileAccessError, FormatError, InvalidArgumentError, LockedError, ShapeError } from '../errors.js';
import { temporarySibling, withAtomicDir, withAtomicPath, writeJsonAtomic } from '../io/atomicWrite.js';
import { lockPath, onThisMachine, type FolderLock, type LockHolder } from '../io/folderLock.js';
import { fileOpenError } from '../io/byteStream.js';
import { readIntVectorNpy, readNpyHeader, writeNpy } from '../io/npy.js';
import { outputRecordChange, outputRecords, type OutputRecord } from '../pipeline/outputRecords.js';
import type { ReconstructConfig } from '../pipeline/config.js';
import { selectTestImages } from '../pipeline/testSubset.js';
import { deletionBlocker, entryReadProblem, permissionRefusal, type EntryUnreadable } from '../nsd/cache.js';
import { readOnlyFolder } from '../io/outputProblem.js';
import { cocoCaptionsPath, stimInfoPath, stimuliPath } from '../nsd/paths.js';

/** How ONNX Runtime runs the model: part of the key (threads, providers and 'lean' memory's graph optimization may change the last bits). */
export interface FeatureRuntime {
  provider: string;
  ortLibrary: string | null;
  threads: number;
  memory: 'default' | 'lean';
}

/** What a shared features job computes: the z (image latents) or c (caption embeddings) part, and everything its output depends on. */
export type FeatureRecipe =
  | {
      part: 'z';
      model: string;
      root: string;
      size: number;
      mode: 'mean' | 'sample';
      seed: number | null;
      /** How a sample's noise is keyed: (seed, the image's 73k id) — whatever else is computed with it ('sample' only). */
      noise: 'seed-and-id' | null;
      batch: number;
      runtime: FeatureRuntime;
    }
  | { part: 'c'; model: string; root: string; captions: string | null; batch: number; runtime: FeatureRuntime };

/** An analysis whose features stage can take shared features. */
export type FeatureConsumer = { kind: 'reconstruct'; config: ReconstructConfig } | { kind: 'encode'; config: EncodeConfig };

/** The stage of a consumer that the shared features replace. */
export const consumerStage = (c: FeatureConsumer) => (c.kind === 'reconstruct' ? 'features' : 'embed');

/** The z and c recipes of an analysis (an encoding analysis uses them only when it has an embed stage). */
export function consumerRecipes(c: FeatureConsumer): { z: FeatureRecipe; c: FeatureRecipe } {
  if (c.kind === 'reconstruct') {
    const k = c.config;
    const runtime: FeatureRuntime = { provider: k.model.provider, ortLibrary: k.model.ortLibrary ? resolve(k.model.ortLibrary) : null, threads: k.model.threads, memory: k.model.memory ?? 'default' };
    const base = { model: resolve(k.model.dir), root: resolve(k.nsd.root), batch: k.features.batchSize, runtime };
    return {
      z: {
        part: 'z',
        ...base,
        size: k.features.zSize,
        mode: k.features.zMode,
        seed: k.features.zMode === 'sample' ? k.features.seed : null,
        noise: k.features.zMode === 'sample' ? 'seed-and-id' : null,
      },
      c: { part: 'c', ...base, captions: k.nsd.captions ? resolve(k.nsd.captions) : null },
    };
  }
  const k = c.config;
  // encode loads the model with ONNX Runtime's defaults (embedStage)
  const runtime: FeatureRuntime = { provider: 'cpu', ortLibrary: null, threads: 0, memory: 'default' };
  const base = { model: resolve(k.model ?? ''), root: resolve(k.nsd.root), batch: k.featureBatch, runtime };
  return {
    z: { part: 'z', ...base, size: k.imageSize, mode: 'mean', seed: null, noise: null },
    c: { part: 'c', ...base, captions: k.nsd.captions ? resolve(k.nsd.captions) : null },
  };
}

const sha = (s: string | Uint8Array) => createHash('sha256').update(s).digest('hex');

/** The plan-time part of the key: the job id's suffix. */
export const recipeKey = (r: FeatureRecipe) => sha(JSON.stringify(r)).slice(0, 12);

/** Files under `dir` (two levels), with their sizes and times; none when it is missing. */
async function fileStats(dir: string): Promise<{ path: string; size: number; mtimeMs: number }[]> {
  const out: { path: string; size: number; mtimeMs: number }[] = [];
  const walk = async (d: string, depth: number) => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        if (depth > 0) await walk(p, depth - 1);
      } else {
        const s = await stat(p).catch(() => null);
        if (s) out.push({ path: relative(dir, p), size: s.size, mtimeMs: s.mtimeMs });
      }
    }
  };
  await walk(dir, 1);
  return out;
}

/** What the computation reads, as sizes and times: a changed model or stimuli file makes a new entry. */
async function sources(r: FeatureRecipe): Promise<unknown> {
  const components = r.part === 'z' ? ['vae_encoder', 'vae_decoder'] : ['text_encoder', 'tokenizer'];
  const model = await Promise.all(components.map(async (c) => ({ c, files: await fileStats(join(r.model, c)) })));
  const files = r.part === 'z' ? [stimuliPath(r.root)] : r.captions ? [r.captions] : [cocoCaptionsPath(r.root, 'train2017'), cocoCaptionsPath(r.root, 'val2017'), stimInfoPath(r.root)];
  const data = await Promise.all(files.map(async (f) => ({ f, ...(await stat(f).then((s) => ({ size: s.size, mtimeMs: s.mtimeMs }), () => ({ missing: true }))) })));
  return { model, data };
}

/** The entry's name: part, then the hash of recipe, sources and ids. */
export async function entryKey(r: FeatureRecipe, ids: Int32Array): Promise<string> {
  const idHash = sha(new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength));
  return `${r.part}-${sha(JSON.stringify({ recipe: r, sources: await sources(r), ids: idHash })).slice(0, 20)}`;
}

export interface FeatureEntry {
  key: string;
  dir: string;
  /** [ids, per image] float32. */
  data: string;
  ids: string;
  /** Per-image shape: z [4, h, w], c [77, D]. */
  shape: number[];
  /** True when this call computed it. */
  computed: boolean;
  /** What computed it (EntryRecord.ranWith); null for an entry from before it was recorded. */
  ranWith: Record<string, string> | null;
  /**
   * Set when the cache could not take it (ensureEntry): why, naming the cache's entry and what to do, in one line;
   * its files (`dir`) are then the caller's uncached copy, not the cache's.
   */
  notCached?: string;
}

interface EntryRecord {
  format: 'brainlatent-shared-features';
  version: 1;
  key: string;
  recipe: FeatureRecipe;
  images: number;
  shape: number[];
  seconds: number;
  createdAt: string;
  /**
   * What computed it (runVersions.ts' stageVersions: the process and host, the ONNX Runtime of the VAE or text
   * encoder), so that the analyses' features stages linked to it record that, not their own jobs; absent in entries from before.
   */
  ranWith?: Record<string, string>;
  /**
   * data.npy's and ids.npy's records as the entry was written (outputRecords: size, time, and the content's sha256 or
   * fingerprint), so that a file rewritten in place since (same size, other values: another entry's copied over it,
   * a write left half done) is damage, not features passed on to every analysis; absent in entries from before.
   */
  files?: Record<string, OutputRecord>;
}

const entryOf = (dir: string, key: string, shape: number[], computed: boolean, ranWith: unknown): FeatureEntry => ({
  key,
  dir: join(dir, key),
  data: join(dir, key, 'data.npy'),
  ids: join(dir, key, 'ids.npy'),
  shape,
  computed,
  ranWith: versionsRecord(ranWith),
});

/** A record of versions as entry.json holds it (strings by name), or null for none or anything else. */
function versionsRecord(v: unknown): Record<string, string> | null {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string') ? (v as Record<string, string>) : null;
}

const ENTRY_FORMAT = 'brainlatent-shared-features';
const ENTRY_VERSION = 1;
const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** What keeps `rec` (entry.json's parsed text) from being the record of entry `key` over `images` images, or null. */
function recordProblem(rec: unknown, key: string, images: number): string | null {
  if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) return `not a shared features record (a JSON ${rec === null ? 'null' : Array.isArray(rec) ? 'array' : typeof rec})`;
  const o = rec as Record<string, unknown>;
  if (o.format !== ENTRY_FORMAT) return `format ${JSON.stringify(o.format)}, expected "${ENTRY_FORMAT}"`;
  // (a newer brainlatent's is refused before this; any other version is none this one wrote)
  if (o.version !== ENTRY_VERSION) return `version ${JSON.stringify(o.version)}, expected ${ENTRY_VERSION}`;
  if (o.key !== key) return `key ${JSON.stringify(o.key)}, expected ${key} (the entry's name)`;
  if (o.images !== images) return `images ${JSON.stringify(o.images)}, expected ${images} (the ids its key is made of)`;
  const shape = o.shape;
  if (!Array.isArray(shape) || !shape.every((n) => Number.isSafeInteger(n) && (n as number) > 0)) return `shape ${JSON.stringify(shape)}, expected the per-image shape (z [4, h, w], c [77, D])`;
  return null;
}

/**
 * The error for a file of entry `entry` this process cannot read (`name`, entryReadProblem's `u`): the file named,
 * the entry said to be kept as it is. Its class and fields are `u.error`'s (a FileAccessError keeps its errno).
 */
function entryUnreadable(entry: string, name: string, u: EntryUnreadable): BrainlatentError {
  const e = u.error;
  const denied = e instanceof FileAccessError && (e.errno === 'EACCES' || e.errno === 'EPERM');
  const why = u.why.startsWith(`${name}: `) ? u.why.slice(name.length + 2) : u.why;
  const remedy = denied ? `its owner can make it readable (chmod -R a+rX ${entry}), or use another cache folder` : 'try again, or use another cache folder';
  e.message = `${join(entry, name)}: ${why}; the shared features entry ${entry} is kept as it is, not computed again: ${remedy}`;
  return e;
}

/**
 * Entry `key` of `dir` over `images` images, as its files hold it: null when its folder is not there; `damage` when
 * what it holds is incomplete or broken (entry.json missing, not JSON, of another format or an older version, of
 * another key, image count or shape; data.npy or ids.npy missing, cut short, not the float32 [images, per image]
 * and int32 [images] computeEntry writes, or not as entry.json's `files` recorded them): a miss, computed again and
 * written whole in its place. An entry.json of a newer brainlatent, or a file this process cannot read (permission
 * denied, an I/O error), is no damage: thrown, naming the file, and the entry is left as it is. The .npy headers are checked against the files' sizes (readNpyHeader);
 * the data are read only where a file's time is not the one recorded (outputRecordChange: its hash or fingerprint).
 */
async function readEntry(dir: string, key: string, images: number): Promise<FeatureEntry | { damage: string } | null> {
  const entry = join(dir, key);
  const record = join(entry, 'entry.json');
  const damageOrThrow = (name: string, e: unknown): { damage: string } => {
    const p = entryReadProblem(entry, e);
    if ('damage' in p) return p;
    throw entryUnreadable(entry, name, p.unreadable);
  };
  let text: string;
  try {
    text = await readFile(record, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !existsSync(entry)) return null;
    if (code === 'EACCES' || code === 'EPERM') {
      // (the cache folder itself may be what this user cannot enter: then there is no entry to speak of)
      const at = await stat(entry).then(
        () => null,
        (s: NodeJS.ErrnoException) => s.code ?? 'EACCES',
      );
      if (at !== null) {
        throw new FileAccessError(
          `${dir}: this user cannot enter the shared features cache folder (${at}), so its entry ${key} cannot be looked up: its owner can open it to this user, or use another cache folder`,
          code,
          { path: dir },
        );
      }
    }
    return damageOrThrow('entry.json', fileOpenError(record, e));
  }
  let rec: unknown;
  try {
    rec = JSON.parse(text);
  } catch (e) {
    return { damage: `entry.json: not valid JSON (${(e as Error).message})` };
  }
  const o = rec as Partial<Record<string, unknown>> | null;
  if (o?.format === ENTRY_FORMAT && typeof o.version === 'number' && o.version > ENTRY_VERSION) {
    // (never replaced: the brainlatent that wrote it reads it)
    throw new FormatError(
      `${record}: version ${o.version}, written by a newer brainlatent; this one reads version ${ENTRY_VERSION}. The shared features entry is kept as it is: ` +
        `use that brainlatent, or another cache folder than ${dir} (a batch's is <out>/<subject>/cache/features)`,
      { path: record, field: 'version' },
    );
  }
  const wrong = recordProblem(rec, key, images);
  if (wrong) return { damage: `entry.json: ${wrong}` };
  const shape = (rec as EntryRecord).shape;
  const e = entryOf(dir, key, shape, false, (rec as EntryRecord).ranWith);
  const files = [
    { name: 'data.npy', path: e.data, dtype: 'float32', want: [images, size(shape)] },
    { name: 'ids.npy', path: e.ids, dtype: 'int32', want: [images] },
  ];
  for (const f of files) {
    let h;
    try {
      h = await readNpyHeader(f.path);
    } catch (err) {
      return damageOrThrow(f.name, err);
    }
    if (h.dtype !== f.dtype || h.shape.join() !== f.want.join()) {
      return { damage: `${f.name}: ${h.dtype} [${h.shape.join(', ')}], expected ${f.dtype} [${f.want.join(', ')}] (entry.json: ${images} images of shape [${shape.join(', ')}])` };
    }
  }
  // (their records, where entry.json has them: a stat each, the content read only where a file's time moved)
  const written = (rec as EntryRecord).files;
  if (written !== null && typeof written === 'object' && !Array.isArray(written)) {
    const change = await outputRecordChange(entry, written, { recorded: 'entry.json recorded', wrote: 'what the entry was written with' });
    if (change) return { damage: change };
  }
  return e;
}

type Progress = (fraction: number, message?: string) => void;

/** The one model a computation needs, on the runtime its recipe names (part of the key). */
function loadOptions(rt: FeatureRecipe['runtime'], component: 'vae_encoder' | 'text_encoder') {
  return { components: [component], provider: rt.provider, ortLibrary: rt.ortLibrary ?? undefined, intraOpThreads: rt.threads || undefined, memory: rt.memory === 'lean' ? ('lean' as const) : undefined };
}

/** The rows of `ids`, `batch` images per model call, into one table (rows in the order of `ids`). */
async function rowsInChunks(
  ids: Int32Array,
  batch: number,
  part: 'z' | 'c',
  progress: Progress,
  signal: AbortSignal | undefined,
  call: (chunk: number[]) => Promise<{ data: Float32Array; shape: number[] }>,
): Promise<{ data: Float32Array; shape: number[] }> {
  let data: Float32Array | null = null;
  let shape: number[] = [];
  for (let i0 = 0; i0 < ids.length; i0 += batch) {
    if (signal?.aborted) throw new CancelledError('shared features: cancelled', { cause: signal.reason });
    const chunk = Array.from(ids.subarray(i0, i0 + batch));
    const out = await call(chunk);
    shape = out.shape.slice(1);
    const per = out.data.length / chunk.length;
    data ??= new Float32Array(ids.length * per);
    data.set(out.data, i0 * per);
    progress((i0 + chunk.length) / ids.length, `${part}: ${i0 + chunk.length}/${ids.length} images`);
  }
  return { data: data ?? new Float32Array(0), shape };
}

/** Rows of z (the reconstruction's features stage, call for call: one VAE call per `batch` images). */
async function computeZ(r: Extract<FeatureRecipe, { part: 'z' }>, ids: Int32Array, progress: Progress, signal?: AbortSignal) {
  const { Diffusion } = await import('../sd/Diffusion.js');
  const { NsdStimuli } = await import('../nsd/stimuli.js');
  const sd = await Diffusion.load(r.model, loadOptions(r.runtime, 'vae_encoder'));
  const stimuli = await NsdStimuli.open(r.root);
  const px = r.size * r.size * 3;
  try {
    return await rowsInChunks(ids, r.batch, 'z', progress, signal, (part) => {
      const rgb = new Uint8Array(part.length * px);
      part.forEach((id, k) => stimuli.imageInto(id, r.size, rgb.subarray(k * px, (k + 1) * px)));
      return sd.encodeImages({ data: rgb, count: part.length, height: r.size, width: r.size }, r.mode === 'sample' ? { mode: 'sample', seeds: r.seed!, imageIndices: part, signal } : { mode: 'mean', signal });
    });
  } finally {
    stimuli.close();
    sd.dispose();
  }
}

/** Rows of c: the text encoder over one call's captions, averaged per image (encode's own function; the reconstruction's stage does the same sums). */
async function computeC(r: Extract<FeatureRecipe, { part: 'c' }>, ids: Int32Array, progress: Progress, signal?: AbortSignal) {
  const { Diffusion } = await import('../sd/Diffusion.js');
  const { loadNsdCaptions } = await import('../nsd/captions.js');
  const { captionEmbedding } = await import('../encoding/features.js');
  const captions = await loadNsdCaptions(r.root, r.captions ?? undefined);
  const source = { image: (): never => { throw new InvalidArgumentError('shared c: no images'); }, captions: (id: number) => captions.get(id) };
  const noCaption = Array.from(ids).filter((id) => captions.get(id).length === 0);
  if (noCaption.length) throw new ShapeError(`${noCaption.length} image(s) have no captions in ${captions.source} (73k ids ${noCaption.slice(0, 10).join(', ')}); c cannot be computed`);
  const sd = await Diffusion.load(r.model, loadOptions(r.runtime, 'text_encoder'));
  try {
    return await rowsInChunks(ids, r.batch, 'c', progress, signal, (part) => captionEmbedding(sd, part, source, signal));
  } finally {
    sd.dispose();
  }
}

/** How often a job waiting for another process's computation of an entry looks whether its lock is free. */
const WAIT_POLL_MS = 500;
/**
 * The entry lock's lease: its holder renews the lock file's time this often, and a holder on another host (whose
 * process cannot be looked at from here) that has not renewed it for LEASE_MISSES times as long is taken for dead
 * (its host was killed or pre-empted mid-computation): its lock is taken over. Before, it was waited for for ever, the
 * waiting job's own lock kept alive meanwhile, until someone deleted the file. BRAINLATENT_SHARED_LOCK_LEASE_MS sets
 * the period (tests).
 */
const LEASE_MS = 10_000;
const LEASE_MISSES = 6;
const leaseMs = () => Number(process.env.BRAINLATENT_SHARED_LOCK_LEASE_MS) || LEASE_MS;

/**
 * The lock of entry `key` (`<dir>/<key>.lock`, pid and host: a dead holder's is taken over, on this host at once, on
 * another once its lease lapses): while another process holds it, waits (saying so through `progress`) until it is
 * free. The lock is renewed while held (exported for tests).
 */
export async function lockEntry(dir: string, key: string, progress: Progress, signal: AbortSignal | undefined): Promise<FolderLock> {
  const path = join(dir, `${key}.lock`);
  const lease = leaseMs();
  // another host's holder as last seen here: its token, the lock file's time, and when (this host's clock) that time
  // was first seen; the holder's clock is never compared with this one's
  let seen: { token: string; mtimeMs: number; at: number } | null = null;
  const lapsed = (h: LockHolder) => seen !== null && h.token === seen.token && Date.now() - seen.at > LEASE_MISSES * lease;
  let said = '';
  for (;;) {
    if (signal?.aborted) throw new CancelledError('shared features: cancelled', { cause: signal.reason });
    try {
      return await lockPath(path, `shared features entry ${join(dir, key)}`, undefined, { leaseMs: lease, supersedes: lapsed });
    } catch (e) {
      if (!(e instanceof LockedError) || e.holder === null) throw e;
      const h = e.holder;
      if (!onThisMachine(h)) {
        // (the lock's own holder record: its token, which the public error type leaves out)
        const token = (h as Partial<LockHolder>).token ?? '';
        const mtimeMs = (await stat(path).catch(() => null))?.mtimeMs ?? -1;
        if (!seen || seen.token !== token || seen.mtimeMs !== mtimeMs) seen = { token, mtimeMs, at: Date.now() };
      }
      const line = `waiting for ${key} computed by pid ${h.pid} on ${h.host}${onThisMachine(h) ? '' : ` (taken over if it stops renewing its lock ${path} for ${(LEASE_MISSES * lease) / 1000} s)`}`;
      if (line !== said) progress(0, line);
      said = line;
      await sleep(WAIT_POLL_MS, undefined, { signal }).catch(() => {
        throw new CancelledError('shared features: cancelled', { cause: signal?.reason });
      });
    }
  }
}

/**
 * The entry of `recipe` over `ids` in `dir`: read when it is there, else (missing or damaged: readEntry; a damaged
 * one said through `progress`) computed and published whole (a folder renamed into place, over a damaged one;
 * `computed.log` in `dir` gets a line per computation). One process computes an entry
 * at a time (the VAE or text encoder over every image): another that needs it meanwhile waits, then reads it.
 *
 * Where the cache cannot take the entry — a damaged one this user cannot replace (another user's, in a sticky
 * folder or a folder of theirs; a read-only file system: deletionBlocker; or its move aside refused, EACCES/EPERM),
 * or a cache folder this user may not write in (a read-only mount), where nothing can be locked or published — the
 * entry there is left as it is and the features are computed for this job alone, into `<uncachedDir>/<key>/` (a
 * folder of the caller's: an analysis's run folder), and the result says why in `notCached` (one line: the entry,
 * why it stays, what to do). Without `uncachedDir` that is a FileAccessError (before the computation, unless the
 * refusal came at its publication).
 */
export async function ensureEntry(
  dir: string,
  recipe: FeatureRecipe,
  ids: Int32Array,
  progress: Progress = () => {},
  signal?: AbortSignal,
  uncachedDir?: string,
): Promise<FeatureEntry> {
  const got = await ensureOrUncached(dir, recipe, ids, progress, signal, uncachedDir ?? null);
  if ('entry' in got) return got.entry;
  // (only without uncachedDir)
  throw new FileAccessError(`${got.what}, so nothing was computed (no folder was given for features computed uncached); ${got.remedy}`, got.errno, { path: join(dir, got.key) });
}

/** What the cache could not take: the entry's key and the warning line (`notCached`: the entry, why it stays, what to do). */
export interface EntryNotCached {
  key: string;
  notCached: string;
}

/**
 * The shared job's ensureEntry: where the cache cannot take the entry, nothing is computed (nobody could read it:
 * each analysis that needs it computes its own, into its run folder) and its `notCached` line comes back instead;
 * a computation whose publication was refused at the end is dropped the same way.
 */
export async function fillEntry(dir: string, recipe: FeatureRecipe, ids: Int32Array, progress: Progress = () => {}, signal?: AbortSignal): Promise<FeatureEntry | EntryNotCached> {
  const got = await ensureOrUncached(dir, recipe, ids, progress, signal, null);
  if ('entry' in got) return got.entry;
  const done = got.computed ? 'what this job computed was not kept' : 'it was not computed here';
  return { key: got.key, notCached: `${got.what}, so ${done}: each analysis that needs it computes its own, uncached; ${got.remedy}` };
}

type Computed = { data: Float32Array; shape: number[]; ranWith: Record<string, string>; seconds: number };

async function ensureOrUncached(
  dir: string,
  recipe: FeatureRecipe,
  ids: Int32Array,
  progress: Progress,
  signal: AbortSignal | undefined,
  uncachedDir: string | null,
): Promise<{ entry: FeatureEntry } | (Refusal & { key: string; computed: boolean })> {
  const key = await entryKey(recipe, ids);
  const entry = join(dir, key);
  const have = await readEntry(dir, key, ids.length);
  if (have && !('damage' in have)) return { entry: have };
  // a cache folder this user may not write in (a read-only mount, another user's): no lock can be taken there, and
  // nothing published; what it holds intact is served (above)
  const readOnly = await readOnlyFolder(dir);
  let refused: Refusal | null = null;
  let computed: Computed | null = null;
  if (readOnly !== null) {
    refused = await readOnlyRefusal(dir, entry, have?.damage ?? null, readOnly);
  } else {
    const lock = await lockEntry(dir, key, progress, signal);
    try {
      // published by the process this one waited for; a damaged one is replaced by its lock's holder only, once said
      const now = await readEntry(dir, key, ids.length);
      if (now && !('damage' in now)) return { entry: now };
      if (now) {
        // (one this user cannot delete: known now, before the VAE or text encoder's pass, and left as it is)
        const blocker = await deletionBlocker(entry);
        if (blocker !== null) refused = await unreplaceable(entry, now.damage, blocker.why, blocker.readOnlyFs ? 'EROFS' : 'EPERM');
        else progress(0, `shared features entry ${entry} is damaged (${now.damage}): computing it again`);
      }
      if (refused === null) {
        computed = await computeFeatures(recipe, ids, progress, signal);
        try {
          return { entry: await publishEntry(dir, key, recipe, ids, computed) };
        } catch (e) {
          // (its move aside refused where the checks foresaw nothing, the entry still there and damaged: the
          // computation is not thrown away for it; any other failure is thrown as it was)
          const denied = permissionRefusal(e);
          const still = denied ? await readEntry(dir, key, ids.length).catch(() => null) : null;
          if (!denied || still === null || !('damage' in still)) throw e;
          refused = await unreplaceable(entry, still.damage, `this user may not replace it (${denied.syscall ?? 'write'}: ${denied.code})`, denied.code!);
        }
      }
    } finally {
      await lock.release();
    }
  }
  // (set on every path that reaches here: the others returned or threw)
  const why = refused!;
  if (uncachedDir === null) return { key, ...why, computed: computed !== null };
  // (outside the entry's lock: another job that needs it finds the same and computes its own)
  computed ??= await computeFeatures(recipe, ids, progress, signal);
  const own = await publishEntry(uncachedDir, key, recipe, ids, computed, { log: false });
  return { entry: { ...own, notCached: `${why.what}, so this job computed its features without caching them; ${why.remedy}` } };
}

/**
 * Why the cache cannot take an entry, in the words of the warning line (`<what>, so <what became of the features>;
 * <remedy>`), and the errno behind it.
 */
interface Refusal {
  /** 'shared features entry <entry> is damaged (<damage>) and could not be replaced: <why>'. */
  what: string;
  /** Whom to ask to remove it (after which the next job that needs it computes and caches it), or what else to do. */
  remedy: string;
  errno: string;
}

/** The damaged entry `entry` (`damage`) stays: `why` (deletionBlocker's phrase, or the refused rename). */
async function unreplaceable(entry: string, damage: string, why: string, errno: string): Promise<Refusal> {
  const owner = (await stat(entry).catch(() => null))?.uid;
  // (on a read-only file system nobody can remove it there: its owner is no remedy)
  const remedy =
    errno === 'EROFS'
      ? `have it removed where that file system is writable, or point the batch manifest's out at a writable folder`
      : `ask its owner${owner === undefined ? '' : ` (uid ${owner})`} or whoever owns ${dirname(entry)} to remove it`;
  return { what: `shared features entry ${entry} is damaged (${damage}) and could not be replaced: ${why}`, remedy, errno };
}

/** The same for a cache folder this user may not write in (`readOnly`: notWritable's words), the entry damaged or missing. */
async function readOnlyRefusal(dir: string, entry: string, damage: string | null, readOnly: string): Promise<Refusal> {
  const owner = (await stat(dir).catch(() => null))?.uid;
  const whose = `whoever owns ${dir}${owner === undefined ? '' : ` (uid ${owner})`}`;
  const errno = /read-only file system/.test(readOnly) ? 'EROFS' : 'EACCES';
  const folder = `the cache folder is read-only to this user (${readOnly})`;
  return damage === null
    ? { what: `shared features entry ${entry} could not be written: ${folder}`, remedy: `ask ${whose} to make it writable, or point the batch manifest's out at a writable folder`, errno }
    : { what: `shared features entry ${entry} is damaged (${damage}) and could not be replaced: ${folder}`, remedy: `ask ${whose} to remove it, or point the batch manifest's out at a writable folder`, errno };
}

/** The features of `recipe` over `ids`: the VAE or text encoder's pass, with what ran it (EntryRecord.ranWith). */
async function computeFeatures(recipe: FeatureRecipe, ids: Int32Array, progress: Progress, signal?: AbortSignal): Promise<Computed> {
  const t0 = performance.now();
  const { recordingOrtUse } = await import('../native/ortUse.js');
  const { value: r, uses } = await recordingOrtUse(() => (recipe.part === 'z' ? computeZ(recipe, ids, progress, signal) : computeC(recipe, ids, progress, signal)));
  const ranWith = (await import('../pipeline/runVersions.js')).stageVersions(uses);
  return { data: r.data, shape: r.shape, ranWith, seconds: (performance.now() - t0) / 1000 };
}

/** Writes entry `key` under `dir` whole (a folder renamed into place, over what was there); `computed.log` gets a line unless `log` is false (an uncached entry's). */
async function publishEntry(dir: string, key: string, recipe: FeatureRecipe, ids: Int32Array, r: Computed, options: { log?: boolean } = {}): Promise<FeatureEntry> {
  const rec: EntryRecord = {
    format: ENTRY_FORMAT,
    version: ENTRY_VERSION,
    key,
    recipe,
    images: ids.length,
    shape: r.shape,
    seconds: r.seconds,
    createdAt: new Date().toISOString(),
    ranWith: r.ranWith,
  };
  await withAtomicDir(join(dir, key), async (tmp) => {
    await writeNpy(join(tmp, 'data.npy'), r.data, [ids.length, size(r.shape)]);
    await writeNpy(join(tmp, 'ids.npy'), ids, [ids.length]);
    // (taken in the folder before its rename, which keeps the files' sizes and times)
    await writeJsonAtomic(join(tmp, 'entry.json'), { ...rec, files: await outputRecords(tmp, ['data.npy', 'ids.npy']) });
  });
  if (options.log !== false) await appendFile(join(dir, 'computed.log'), `${key} ${process.pid} ${ids.length}\n`);
  return entryOf(dir, key, r.shape, true, r.ranWith);
}

/** The 73k ids whose features an analysis's features stage computes, from its extract stage's ids file. */
export async function consumerIds(c: FeatureConsumer): Promise<Int32Array> {
  if (c.kind === 'reconstruct') {
    const { paths } = await import('../pipeline/runFolder.js');
    const ids = JSON.parse(await readFile(paths(c.config.out).ids, 'utf8')) as { trainZ: number[]; trainC: number[]; test: number[] };
    return Int32Array.from([...new Set([...ids.trainZ, ...ids.trainC, ...ids.test])].sort((a, b) => a - b));
  }
  const { encodePaths } = await import('../encoding/runPaths.js');
  const ids = JSON.parse(await readFile(encodePaths(c.config.out).ids, 'utf8')) as { train: number[]; test: number[] };
  return Int32Array.from(new Set([...ids.train, ...ids.test])).sort();
}

/**
 * The same ids, from the subject's extraction cache (filled by the batch's betas job), before the analysis's
 * extract stage has run: what the shared job computes for. The analysis checks its own (consumerIds) against
 * the entry's key, so a difference costs a computation, never a wrong row.
 */
export async function plannedConsumerIds(c: FeatureConsumer): Promise<Int32Array> {
  const { extractNsd } = await import('../nsd/extract.js');
  if (c.kind === 'reconstruct') {
    const { extractOptions } = await import('../pipeline/stages.js');
    const ez = await extractNsd(extractOptions(c.config, 'z'));
    const ec = await extractNsd(extractOptions(c.config, 'c'));
    // the extract stage's own choice of test images (nsd.testImages: the N smallest ids, not the first N rows)
    const limited = selectTestImages(Array.from(ez.testImageIds), c.config.nsd.testImages);
    return Int32Array.from([...new Set([...ez.trainImageIds, ...ec.trainImageIds, ...limited])].sort((a, b) => a - b));
  }
  const { encodeExtractOptions } = await import('../encoding/stages.js');
  const ex = await extractNsd(encodeExtractOptions(c.config));
  return Int32Array.from(new Set([...ex.trainImageIds, ...ex.testImageIds])).sort();
}

/**
 * Puts `src` at `dest` (a hard link, or a copy across file systems), atomically: a temporary renamed into place.
 * The temporary is named as atomicWrite names its own, so that one a killed process left is removed by the next
 * write of `dest`; a copy is flushed before its rename (withAtomicPath), a link is the source's own flushed inode.
 */
export async function linkInto(src: string, dest: string): Promise<void> {
  await mkdir(dirname(dest), { recursive: true });
  const tmp = temporarySibling(dest);
  try {
    await link(src, tmp);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV' && (e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
    await withAtomicPath(dest, (copy) => copyFile(src, copy));
    return;
  }
  try {
    await rename(tmp, dest);
  } finally {
    await rm(tmp, { force: true });
  }
}

/** Checks an entry's ids against the analysis's (the entry's key covers them; this guards the files). */
export async function assertEntryIds(e: FeatureEntry, ids: Int32Array): Promise<void> {
  const have = await readIntVectorNpy(e.ids, 'shared feature ids');
  if (have.length !== ids.length || have.some((v, i) => v !== ids[i])) throw new ShapeError(`${e.ids}: the shared features' ids differ from the analysis's ${ids.length} images`);
}
