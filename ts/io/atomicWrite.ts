/**
 * Atomic outputs: a file or folder brainlatent writes appears complete, or not at all.
 *
 * Every output goes through one of these (use them for any output you add):
 *  - `writeFileAtomic(path, data)`: contents already in memory (string or bytes), e.g. JSON, CSV, HTML, PNG.
 *  - `withAtomicFile(path, fh => ...)`: a writer that writes chunk by chunk through a FileHandle (.npy, safetensors);
 *    `writeChunks(fh, [header, ...arrays])` writes them in one pass, without concatenating.
 *  - `writeStreamAtomic(path, source, ...transforms)`: a streamed output such as a gzip NIfTI.
 *  - `withAtomicPath(path, tmp => ...)`: a library that insists on writing a file by name (h5wasm).
 *  - `withAtomicDir(dir, tmp => ...)`: a folder of many files (an NSD extraction, a synthetic dataset, a cache
 *    entry) built under a temporary name and swapped into place whole.
 *
 * How: the data go to a temporary sibling in the same folder (`.<name>.tmp-<host>-<pid>-<random>`, hidden), are
 * flushed to disk (fsync: after a crash the name never points at unwritten data), and the temporary is renamed over
 * the target (the folder itself is flushed only after a folder swap: per file it would double the cost for the
 * durability of the name alone, not of the contents); rename within one filesystem is atomic,
 * so a reader, a killed writer (even SIGKILL) or a second writer never sees a half-written file. Two writers of
 * the same output produce one complete result (the last rename wins), never a mix. A failed write removes its
 * temporary; one left by a killed process (SIGKILL, a crash) is removed by the next write of the same target on this
 * host (`removeStaleOf`: the folder is read once per process), and by `removeStaleTemporaries` (run folders do so when
 * locked). Each file is atomic on its own: a command that writes several (img2img's images of a batch) is not atomic
 * as a set, and one killed between two renames leaves the first files new and the rest old (or absent).
 *
 * A folder is replaced by two renames (old → `.<name>.old-…`, new → name); a process killed between them leaves
 * the old folder under the `.old-` name, and `recoverInterruptedDir` (called by `withAtomicDir` and by readers of
 * such folders) puts it back, so the folder is always the complete old one or the complete new one.
 */
import { lstat, mkdir, open, readdir, readlink, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { InvalidArgumentError } from '../errors.js';
import { outputPathProblem, type OutputKind } from './outputProblem.js';
import { PID_NAMESPACE } from './pidNamespace.js';
import { processAlive } from './processAlive.js';

/**
 * The host tag in temporary names, so that a process on another machine sharing the folder is never judged dead here:
 * the host name and, on Linux, the PID namespace. Two containers can share a host name (host networking, the same -h)
 * and a folder, but not their pids: a writer in one judged the other's live writer dead (kill(pid, 0) fails across
 * namespaces) and removed its temporary, which then failed at its rename.
 */
export const HOST_TAG = hostTagOf(hostname(), PID_NAMESPACE);

/** The tag of a host name and PID namespace (exported for tests). */
export function hostTagOf(host: string, namespace: string): string {
  return hostTag(namespace ? `${host}\0${namespace}` : host);
}

function hostTag(h: string): string {
  let x = 2166136261;
  for (let i = 0; i < h.length; i++) x = Math.imul(x ^ h.charCodeAt(i), 16777619) >>> 0;
  return x.toString(16).padStart(8, '0').slice(0, 6);
}

const TMP_RE = /^\.(.+)\.(tmp|old)-([0-9a-f]{6})-(\d+)-[0-9a-f]{8}$/;

/** A temporary (or backup) name beside `path`, unique to this process and call. */
function siblingName(path: string, kind: 'tmp' | 'old'): string {
  // Keep the name under the usual 255-byte limit however long the target's name is.
  const base = basename(path).slice(0, 200);
  return join(dirname(path), `.${base}.${kind}-${HOST_TAG}-${process.pid}-${randomHex8()}`);
}

/** A temporary name beside `path` that a later write of `path` removes if this process dies holding it. */
export function temporarySibling(path: string): string {
  return siblingName(path, 'tmp');
}

/**
 * Eight random hex digits. The pid makes the name unique on this host and the file is created exclusively ('wx'), so
 * this needs no cryptographic randomness (node:crypto would add ~7 ms to every command's start-up).
 */
function randomHex8(): string {
  return Math.floor(Math.random() * 2 ** 32).toString(16).padStart(8, '0');
}

export interface AtomicWriteOptions {
  /** Create the parent folder if missing (default true). */
  mkdirs?: boolean;
  /** File mode of a new file (default 0o666 less the umask, like fs.writeFile). */
  mode?: number;
}

/**
 * Runs `write` on a FileHandle open on a temporary sibling of `path`, then flushes it and renames it over `path`.
 * If `write` throws, the temporary is removed and `path` is left as it was.
 */
export async function withAtomicFile<T>(
  path: string,
  write: (fh: FileHandle, tmpPath: string) => Promise<T>,
  opts: AtomicWriteOptions = {},
): Promise<T> {
  return (await prepareAtomicFile(path, opts)).commit(write);
}

/**
 * An output file opened ahead of its bytes (prepareAtomicFile): its folder made, the stale temporaries of it removed
 * and its temporary opened. commit() is then only the write, the flush and the rename, and the write starts within
 * the call: `ridge fit` opens its model file before it prints its summary, and hands the bytes to the writer before
 * the summary's JavaScript runs (which held back each of the file system steps before the write by ~50 ms at the
 * bench's medium shape).
 */
export interface PreparedFile {
  readonly path: string;
  /** Writes the bytes through `write`, flushes them, and renames the temporary over `path`; once. */
  commit<T>(write: (fh: FileHandle, tmpPath: string) => Promise<T>): Promise<T>;
  /** Closes and removes the temporary: nothing is written to `path`. */
  discard(): Promise<void>;
}

export async function prepareAtomicFile(output: string, opts: AtomicWriteOptions = {}): Promise<PreparedFile> {
  const path = await followLink(output);
  if (opts.mkdirs !== false) await mkdir(dirname(path), { recursive: true }).catch((e) => rejectWrite(path, 'file', e));
  await removeStaleOf(path);
  const tmp = siblingName(path, 'tmp');
  const fh = await open(tmp, 'wx', opts.mode ?? 0o666).catch((e) => rejectWrite(path, 'file', e));
  let used = false;
  const once = () => {
    if (used) throw new Error(`${path}: this prepared output was already committed or discarded`);
    used = true;
  };
  return {
    path: output,
    async commit<T>(write: (fh: FileHandle, tmpPath: string) => Promise<T>): Promise<T> {
      once();
      let closed = false;
      try {
        const result = await write(fh, tmp);
        await fh.sync();
        await fh.close();
        closed = true;
        await rename(tmp, path).catch((e) => rejectWrite(path, 'file', e));
        return result;
      } catch (e) {
        if (!closed) await fh.close().catch(() => undefined);
        await rm(tmp, { force: true }).catch(() => undefined);
        throw namingOutput(path, e);
      }
    },
    async discard(): Promise<void> {
      once();
      await fh.close().catch(() => undefined);
      await rm(tmp, { force: true }).catch(() => undefined);
    },
  };
}

/**
 * A system error of a step that names no file (writev, fsync, the engine's writer: "ENOSPC: no space left on device,
 * write") says which output was being written; errors that name their path, and any other error, pass unchanged.
 */
function namingOutput(path: string, err: unknown): unknown {
  const e = err as NodeJS.ErrnoException | null;
  if (e instanceof Error && typeof e.code === 'string' && typeof e.syscall === 'string' && e.path === undefined && !e.message.includes(path)) {
    e.message = `writing ${path}: ${e.message}`;
  }
  return err;
}

/**
 * For a library that writes a file by name (h5wasm): `write` creates the file at the temporary path it is given,
 * which is then flushed and renamed over `path`.
 */
export async function withAtomicPath<T>(output: string, write: (tmpPath: string) => Promise<T> | T, opts: AtomicWriteOptions = {}): Promise<T> {
  const path = await followLink(output);
  if (opts.mkdirs !== false) await mkdir(dirname(path), { recursive: true }).catch((e) => rejectWrite(path, 'file', e));
  await removeStaleOf(path);
  const tmp = siblingName(path, 'tmp');
  try {
    const result = await write(tmp);
    const fh = await open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path).catch((e) => rejectWrite(path, 'file', e));
    return result;
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw namingOutput(path, e);
  }
}

/** Bytes per write system call: Linux writes at most 2 GiB − 4 KiB in one. */
const MAX_WRITE_BYTES = 1 << 30;
/** Buffers per writev call (IOV_MAX on Linux and macOS). */
const MAX_WRITE_BUFFERS = 1024;

/** Writes chunks at a file descriptor's position (advancing it, as write() does); rejects like an fs write. */
export type FileWriter = (fd: number, chunks: Uint8Array[]) => Promise<void>;

/**
 * Outputs from this size go through the large-file writer when one is installed: the engine's writes them through to
 * the disk in 8 MiB pieces, each dropped from the page cache before the next (native/core/include/brainlatent/
 * file_io.h). A 64 MB model written at once takes 64 MB of fresh page cache, which on a virtual machine whose free
 * memory went back to the host costs ~2 ms per MiB to first touch: 0.14 s of a 0.19 s model write, against ~40 ms
 * through the writer, fsync included.
 */
const LARGE_WRITE_BYTES = 16 << 20;

let largeWriter: FileWriter | undefined;

/** Installs (or with undefined, removes) the writer of large outputs (`useEngineFileWriter` in ts/native/call.ts). */
export function setLargeFileWriter(writer: FileWriter | undefined): void {
  largeWriter = writer;
}

/**
 * Writes `chunks` one after another from the handle's position in one pass, without concatenating them: one writev
 * for a file's header and arrays (up to 1 GiB per call), continuing after a partial write; 16 MiB and more through
 * the large-file writer when one is installed.
 */
export async function writeChunks(fh: FileHandle, chunks: readonly Uint8Array[]): Promise<void> {
  const queue = chunks.filter((c) => c.byteLength > 0);
  if (largeWriter && queue.reduce((n, c) => n + c.byteLength, 0) >= LARGE_WRITE_BYTES) {
    await largeWriter(fh.fd, queue);
    return;
  }
  let head = 0;
  while (head < queue.length) {
    const batch: Uint8Array[] = [];
    let bytes = 0;
    for (let i = head; i < queue.length && batch.length < MAX_WRITE_BUFFERS && bytes < MAX_WRITE_BYTES; i++) {
      const c = queue[i].byteLength <= MAX_WRITE_BYTES - bytes ? queue[i] : queue[i].subarray(0, MAX_WRITE_BYTES - bytes);
      batch.push(c);
      bytes += c.byteLength;
    }
    let { bytesWritten } = await fh.writev(batch);
    if (bytesWritten === 0) throw new Error(`write made no progress (${bytes} bytes left to write)`);
    while (head < queue.length && bytesWritten >= queue[head].byteLength) bytesWritten -= queue[head++].byteLength;
    if (bytesWritten > 0) queue[head] = queue[head].subarray(bytesWritten);
  }
}

/** Writes `data` (a string is written as UTF-8) to `path` atomically. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): Promise<void> {
  await withAtomicFile(path, (fh) => writeChunks(fh, [typeof data === 'string' ? Buffer.from(data, 'utf8') : data]), opts);
}

/** `JSON.stringify(value, null, 2)` plus a newline, written atomically. */
export async function writeJsonAtomic(path: string, value: unknown, opts: AtomicWriteOptions = {}): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`, opts);
}

/** What writeStreamAtomic reads from: a readable stream, an (async) iterable, or a generator function (as stream.pipeline takes). */
export type StreamStage = NodeJS.ReadableStream | NodeJS.ReadWriteStream | Iterable<unknown> | AsyncIterable<unknown> | ((...a: never[]) => unknown);

/**
 * Pipes `source` through `transforms` (e.g. `createGzip()`) into `path`, atomically. An error anywhere in the
 * pipeline leaves `path` untouched.
 */
export async function writeStreamAtomic(
  path: string,
  source: StreamStage,
  transforms: NodeJS.ReadWriteStream[] = [],
  opts: AtomicWriteOptions = {},
): Promise<void> {
  await withAtomicFile(
    path,
    async (fh) => {
      // The sink writes through the handle (a WriteStream would close it before it can be flushed).
      const sink = async (chunks: AsyncIterable<Uint8Array | string>) => {
        for await (const chunk of chunks) {
          const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
          let off = 0;
          while (off < bytes.byteLength) off += (await fh.write(bytes, off, bytes.byteLength - off)).bytesWritten;
        }
      };
      await (pipeline as (...s: unknown[]) => Promise<void>)(source, ...transforms, sink);
    },
    opts,
  );
}

/**
 * Builds a folder under a temporary sibling name (`build` receives that path and writes into it), then swaps it
 * into place as `dir`, replacing an existing folder whole. If `build` throws, the temporary is removed and `dir`
 * is left as it was.
 */
export async function withAtomicDir<T>(output: string, build: (tmpDir: string) => Promise<T>): Promise<T> {
  const dir = await followLink(output);
  await mkdir(dirname(dir), { recursive: true }).catch((e) => rejectWrite(dir, 'folder', e));
  await recoverInterruptedDir(dir);
  await removeStaleOf(dir);
  const tmp = siblingName(dir, 'tmp');
  await mkdir(tmp).catch((e) => rejectWrite(dir, 'folder', e));
  let result: T;
  try {
    result = await build(tmp);
    await syncDir(tmp);
    await replaceDir(tmp, dir).catch((e) => rejectWrite(dir, 'folder', e));
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw e;
  }
  return result;
}

/**
 * An output that is a symbolic link is written where the link points, the link kept: a folder is built beside the
 * folder it points to and swapped in there (a folder cannot be renamed over a link: ENOTDIR, after the whole build),
 * and a file renamed into place there (the rename replaced the link with a regular file, the data landing on the
 * link's disk, its target left as it was; review s44). A dangling link's target is created; a loop is left to fail
 * naming it (ELOOP).
 */
async function followLink(path: string): Promise<string> {
  let p = path;
  for (let hops = 0; hops < 40; hops++) {
    const st = await lstat(p).catch(() => null);
    if (!st?.isSymbolicLink()) return p;
    p = resolve(dirname(p), await readlink(p));
  }
  return p;
}

/** The errno codes of a write step refused by what is at (or above) its path, or by permissions. */
const PATH_CODES = new Set(['EISDIR', 'ENOTDIR', 'EEXIST', 'EACCES', 'EPERM']);

/**
 * A failed step of writing `path` (creating its folder or its temporary, renaming it into place) as an
 * InvalidArgumentError naming the path and what is in the way, in the words of the CLI's --out check: a library
 * caller (RidgeModel.save) has no such check and would get "EISDIR … rename '.m.tmp-…' -> 'm'". Any other error (a
 * full disk; a path that is fine by now) comes back as it was; the original is kept as the cause.
 */
export async function describeWriteError(path: string, kind: OutputKind, err: unknown): Promise<unknown> {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code === undefined || !PATH_CODES.has(code)) return err;
  const problem = await outputPathProblem(path, kind).catch(() => null);
  if (problem === null) return err;
  const subject = problem.startsWith('is ') || problem.startsWith('exists ') ? `it ${problem}` : problem;
  const typed = new InvalidArgumentError(`cannot write ${path}: ${subject}; expected ${kind === 'file' ? 'a file path' : 'a folder path'}`);
  typed.cause = err;
  return typed;
}

/** Rejects with describeWriteError's error, for `.catch` on each step of a write. */
async function rejectWrite(path: string, kind: OutputKind, err: unknown): Promise<never> {
  throw await describeWriteError(path, kind, err);
}

/** Renames the finished folder `tmp` to `dir`, moving an existing `dir` aside first and deleting it after. */
async function replaceDir(tmp: string, dir: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await rename(tmp, dir);
      await syncDir(dirname(dir));
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || attempt >= 20) throw e;
    }
    // `dir` exists: move it aside (another writer may have just done the same: then there is nothing to move).
    const old = siblingName(dir, 'old');
    try {
      await rename(dir, old);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      continue;
    }
    try {
      await rename(tmp, dir);
    } catch (e) {
      // Someone else's folder went in between our two renames: ours loses; theirs is complete.
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') {
        await discardOld(old, dir);
        continue;
      }
      await rename(old, dir).catch(() => undefined);
      throw e;
    }
    await syncDir(dirname(dir));
    await discardOld(old, dir);
    return;
  }
}

/**
 * Deletes the folder `old` moved aside from `dir` under a temporary name first: a kill during a long deletion left
 * a partial `.old-` folder, which recoverInterruptedDir would put back as `dir` once `dir` was gone (7,000 of 20,001
 * files); a partial `.tmp-` one is only ever deleted.
 */
async function discardOld(old: string, dir: string): Promise<void> {
  const tmp = siblingName(dir, 'tmp');
  const target = await rename(old, tmp).then(
    () => tmp,
    () => old,
  );
  await rm(target, { recursive: true, force: true });
}

/**
 * Removes a folder so that no reader ever finds it half gone: it is first renamed to a temporary sibling (a kill
 * during the deletion leaves that, which the stale-temporary clean-up removes), then deleted. A folder already gone
 * is no error. `renamed` runs once the folder is out of the way, before the deletion (and not when it was gone).
 */
export async function removeDirWhole(dir: string, renamed?: () => Promise<void>): Promise<void> {
  const tmp = siblingName(dir, 'tmp');
  try {
    await rename(dir, tmp);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  await renamed?.();
  await rm(tmp, { recursive: true, force: true });
}

/**
 * If `dir` is missing because a writer was killed between moving the old folder aside and renaming the new one
 * in, puts the old folder back. A no-op when `dir` exists. Returns true when it restored something.
 */
export async function recoverInterruptedDir(dir: string): Promise<boolean> {
  try {
    await stat(dir);
    return false;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return false;
  }
  const parent = dirname(dir);
  const name = basename(dir).slice(0, 200);
  let entries: string[];
  try {
    entries = await readdir(parent);
  } catch {
    return false;
  }
  for (const entry of entries) {
    const m = TMP_RE.exec(entry);
    if (!m || m[1] !== name || m[2] !== 'old' || !isStale(m[3], Number(m[4]))) continue;
    try {
      await rename(join(parent, entry), dir);
      return true;
    } catch {
      // another process restored it first, or `dir` reappeared
    }
  }
  return false;
}

/**
 * Removes temporaries (and moved-aside old folders) left in `dir` by processes of this host that are no longer
 * running; with `recursive`, in every sub-folder too. Returns the paths removed.
 */
export async function removeStaleTemporaries(dir: string, opts: { recursive?: boolean } = {}): Promise<string[]> {
  const removed: string[] = [];
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return removed;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    const m = TMP_RE.exec(e.name);
    if (m && isStale(m[3], Number(m[4]))) {
      // A stale `.old-` folder whose target is missing is the complete old version: restore rather than delete.
      if (m[2] === 'old' && (await recoverInterruptedDir(join(dir, m[1])))) continue;
      await rm(p, { recursive: true, force: true });
      removed.push(p);
    } else if (opts.recursive && e.isDirectory() && !m) {
      removed.push(...(await removeStaleTemporaries(p, opts)));
    }
  }
  return removed;
}

/**
 * The temporaries of dead writers of this host in each folder a write of this process went to, by target name: read
 * with one readdir the first time a folder is written (a folder of thousands of images is not reread per image).
 * A writer killed later is cleaned up by the next process that writes its target.
 */
const staleInFolder = new Map<string, Promise<Map<string, string[]>>>();
/** Folders remembered at most (a long-running service writes into many run folders). */
const STALE_FOLDERS_KEPT = 1024;

/** Removes the temporaries a killed writer of `path` (a file or a folder) left beside it; best effort. */
async function removeStaleOf(path: string): Promise<void> {
  const dir = resolve(dirname(path));
  let found = staleInFolder.get(dir);
  if (!found) {
    if (staleInFolder.size >= STALE_FOLDERS_KEPT) staleInFolder.clear();
    found = staleTemporariesIn(dir);
    staleInFolder.set(dir, found);
  }
  const byTarget = await found;
  const name = basename(path).slice(0, 200);
  const left = byTarget.get(name);
  if (!left) return;
  byTarget.delete(name);
  await Promise.all(left.map((p) => rm(p, { recursive: true, force: true }).catch(() => undefined)));
}

/** A folder's `.tmp-` temporaries of dead processes of this host, by the name of the target they were for. */
async function staleTemporariesIn(dir: string): Promise<Map<string, string[]>> {
  const byTarget = new Map<string, string[]>();
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return byTarget;
  }
  for (const n of names) {
    const m = TMP_RE.exec(n);
    if (!m || m[2] !== 'tmp' || !isStale(m[3], Number(m[4]))) continue;
    byTarget.set(m[1], [...(byTarget.get(m[1]) ?? []), join(dir, n)]);
  }
  return byTarget;
}

/** True for a name this module uses for temporaries and moved-aside folders. */
export function isAtomicTemporary(name: string): boolean {
  return TMP_RE.test(name);
}

/** Whether `name` is a temporary (or backup) that a writer of this host left when it died: removeStaleTemporaries' rule. */
export function isStaleTemporary(name: string): boolean {
  const m = TMP_RE.exec(name);
  return m !== null && isStale(m[3], Number(m[4]));
}

/** Whether a temporary named for host `tag` and process `pid` is a dead process's of this host (processTemp.ts uses it too). */
export function isStale(tag: string, pid: number): boolean {
  return tag === HOST_TAG && !processAlive(pid);
}

/** Flushes a folder's entries (the rename) to disk; not every platform allows it, so failures are ignored. */
async function syncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // best effort
  } finally {
    await fh?.close().catch(() => undefined);
  }
}
