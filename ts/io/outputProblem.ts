/**
 * What stands in the way of writing an output at a path, as a phrase: the CLI checks its --out paths with it before
 * any work (ts/cli/outputPath.ts), and the atomic writers name it when a write fails on the path (a library caller
 * has no such check), so both say the same thing ("is an existing folder", "… is a file, not a folder, …").
 */
import { constants } from 'node:fs';
import { access, lstat, readFile, readlink, realpath, stat, statfs } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';

/** 'file': a file written whole (a model, a .npy); 'folder': a folder filled or swapped in whole (a run folder). */
export type OutputKind = 'file' | 'folder';

type Stat = Awaited<ReturnType<typeof stat>>;

/**
 * `path`'s stat; 'missing' when it is not there (ENOENT, ENOTDIR); 'denied' when a folder above it cannot be entered
 * (EACCES: another user's home, a folder without search permission). Any other error is thrown.
 */
async function probe(path: string): Promise<Stat | 'missing' | 'denied'> {
  try {
    return await stat(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return 'missing';
    if (code === 'EACCES') return 'denied';
    throw e;
  }
}

/** `path`'s stat, or null when it is missing or cannot be reached (a folder above it cannot be entered). */
async function statOrNull(path: string): Promise<Stat | null> {
  const s = await probe(path);
  return typeof s === 'string' ? null : s;
}

/** The phrase for a folder the user cannot enter, so that nothing below it can be read or written. */
export const cannotEnter = (dir: string) => `${dir} cannot be entered (permission denied)`;

/**
 * The folder above `path` that this user cannot enter (the nearest one that can be stat'ed while what lies below it
 * cannot), or null when `path` can be reached (it may still be missing). "EACCES: permission denied, stat '/root/x/m'"
 * named the path given, not the folder in the way.
 */
export async function folderNotEntered(path: string): Promise<string | null> {
  let denied = false;
  for (let p = path; ; p = dirname(p)) {
    const s = await probe(p);
    if (s === 'denied') denied = true;
    else if (s !== 'missing') return denied ? p : null;
    if (dirname(p) === p) return null;
  }
}

/** Why this user cannot write in `dir`, in words, or null when it can: access()'s own errno, not always EACCES. */
export async function notWritable(dir: string): Promise<string | null> {
  try {
    await access(dir, constants.W_OK | constants.X_OK);
    return null;
  } catch (e) {
    // (a read-only mount said "permission denied", and chmod changed nothing; review s44)
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EROFS') return `${dir} is on a read-only file system`;
    if (code === 'EPERM') return `${dir} is not writable (operation not permitted: an immutable folder?)`;
    return `${dir} is not writable (permission denied)`;
  }
}

/**
 * Linux's kernel filesystems, by statfs magic: they hold the kernel's entries, never a user's files. As root their
 * folders pass access(W_OK), and the write failed only after the work (`--out /proc/m.safetensors`: ENOENT at the
 * rename, after the fit); under /sys/fs/cgroup a folder output would even create a cgroup.
 */
const KERNEL_FILESYSTEMS = new Map<number, string>([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0x62656570, 'configfs'],
  [0xcafe4a11, 'bpf'],
  [0x6165676c, 'pstore'],
  [0xde5e81e4, 'efivarfs'],
  [0xf97cff8c, 'selinuxfs'],
]);

/** Why nothing can be written in `dir`, or null: not a writable folder, or on a kernel filesystem. */
async function unwritableFolder(dir: string): Promise<string | null> {
  const type = await statfs(dir).then((s) => KERNEL_FILESYSTEMS.get(Number(s.type)), () => undefined);
  if (type) return `${dir} is on the kernel's ${type} filesystem, which takes no output files`;
  return notWritable(dir);
}

/**
 * Why `path` cannot take an output of `kind`, or null when it can: a file output must not be an existing folder (nor
 * a device or other non-file), a folder output must not be an existing file, and the nearest existing folder above
 * it must be a writable folder (a parent that is a file can never become one). Missing folders are no problem: the
 * writers create them.
 */
export async function outputPathProblem(path: string, kind: OutputKind): Promise<string | null> {
  const target = await probe(path);
  if (target === 'denied') {
    const dir = await folderNotEntered(path);
    if (dir !== null) return cannotEnter(dir);
  } else if (target !== 'missing') {
    if (kind === 'file' && target.isDirectory()) return 'is an existing folder';
    if (kind === 'file' && !target.isFile()) return 'exists and is not a regular file';
    if (kind === 'folder' && !target.isDirectory()) return 'is an existing file';
    return unwritableFolder(kind === 'folder' ? path : dirname(path));
  }
  // a link to nothing (a scratch disk not mounted): a folder cannot be made there (mkdir: EEXIST), nor below it (review
  // s44: the whole extraction ran, then 'ENOTDIR … rename'); a file output is written where it points
  const dangling = await brokenLink(path);
  if (dangling && kind === 'folder') return `is a broken symbolic link (to ${dangling}); create what it points to, or give another path`;
  // the nearest existing ancestor (named as typed: dirname of a relative path ends at '.') decides: a folder we may
  // write in, or a file that blocks the path
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    const s = await statOrNull(dir);
    if (s) {
      if (!s.isDirectory()) return `${dir} is a file, not a folder, so nothing can be written below it`;
      return unwritableFolder(dir);
    }
    const above = await brokenLink(dir);
    if (above) return `${dir} is a broken symbolic link (to ${above}), so nothing can be written below it`;
    if (dirname(dir) === dir) return null;
  }
}

/**
 * Why this user cannot write in the existing folder `dir` (a read-only mount, another user's), or null when it can or
 * `dir` is no existing folder: a cache folder that is read-only serves its entries and takes none.
 */
export async function readOnlyFolder(dir: string): Promise<string | null> {
  return (await statOrNull(dir))?.isDirectory() ? notWritable(dir) : null;
}

/**
 * Why `path` cannot be a cache folder, or null: outputPathProblem's for a folder, except that an existing folder this
 * user may read but not write in is no problem (a lab's shared cache on a read-only mount, or another user's): its
 * entries are served, and what it misses is not written there (extractNsd's `notCached`).
 */
export async function cacheFolderProblem(path: string): Promise<string | null> {
  if ((await readOnlyFolder(path)) === null) return outputPathProblem(path, 'folder');
  const type = await statfs(path).then((s) => KERNEL_FILESYSTEMS.get(Number(s.type)), () => undefined);
  if (type) return `${path} is on the kernel's ${type} filesystem, which takes no output files`;
  const unreadable = await access(path, constants.R_OK | constants.X_OK).then(() => false, () => true);
  return unreadable ? `${path} can be neither read nor written (permission denied)` : null;
}

/** Where `path` points when it is a symbolic link to nothing, else null. */
async function brokenLink(path: string): Promise<string | null> {
  const l = await lstat(path).catch(() => null);
  if (!l?.isSymbolicLink()) return null;
  if (await stat(path).then(() => true, () => false)) return null;
  return readlink(path).catch(() => '?');
}

/**
 * The mount points of this process's mount namespace (Linux: /proc/self/mountinfo; empty elsewhere): a bind mount of a
 * folder of the same file system has its parent's device number, so a device check alone misses it.
 */
async function mountPoints(): Promise<Set<string>> {
  const text = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  // (field 5 is the mount point, with space, tab, newline and backslash written as octal escapes)
  return new Set(text.split('\n').filter(Boolean).map((l) => l.split(' ')[4].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))));
}

/**
 * What stands in the way of swapping a built folder in whole at the existing folder `path` (withAtomicDir: built
 * beside it, in its parent, then renamed into place), or null: the checks pass a folder the user may write in, but
 * the rename failed after all the work (review s44: `--out .` EBUSY, a mount point EBUSY, a parent not writable EPERM).
 */
export async function swapInProblem(path: string): Promise<string | null> {
  const real = await realpath(path).catch(() => null);
  if (real === null) return null;
  const cwd = await realpath(process.cwd()).catch(() => resolve('.'));
  if (real === cwd || cwd.startsWith(real.endsWith(sep) ? real : real + sep)) {
    return 'is the current folder (or holds it), which cannot be replaced whole; give a folder path below it';
  }
  const parent = dirname(real);
  const [mine, above] = [await stat(real), await stat(parent)];
  if (parent === real || mine.dev !== above.dev || (await mountPoints()).has(real)) return 'is a mount point, which cannot be replaced whole (the output is built beside it and renamed into place); give a folder inside it';
  const why = await unwritableFolder(parent);
  return why ? `${why}, and the output is built beside it there and renamed into place` : null;
}

/** An input a command reads, by where it was named: ['nsd.root', '/data/nsd'], ['--model', 'sd-onnx']. */
export type NamedInput = readonly [name: string, path: string];

/**
 * `path` with its links resolved as far as it exists (a run folder is often not there yet): the real path of its
 * nearest existing ancestor, then the missing rest. Two names of one folder (a symlink, `a/../b`) come out the same.
 */
async function realPathAsFar(path: string): Promise<string> {
  const rest: string[] = [];
  for (let p = resolve(path); ; p = dirname(p)) {
    try {
      return join(await realpath(p), ...rest.reverse());
    } catch {
      if (dirname(p) === p) return resolve(path);
      rest.push(basename(p));
    }
  }
}

const within = (inner: string, outer: string) => inner.startsWith(outer.endsWith(sep) ? outer : outer + sep);

/**
 * How two output folders overlap, as a phrase about `a` ("is inside --out x"), or null when apart: the same folder,
 * one inside the other — their links resolved, whether or not they exist yet.
 */
export async function outputFoldersOverlap(a: string, b: NamedInput): Promise<string | null> {
  const [ra, rb] = [await realPathAsFar(a), await realPathAsFar(b[1])];
  if (ra === rb) return `is ${b[0]} ${b[1]}`;
  if (within(ra, rb)) return `is inside ${b[0]} ${b[1]}`;
  if (within(rb, ra)) return `holds ${b[0]} ${b[1]}`;
  return null;
}

/**
 * How a folder output at `path` (a run folder, which a run fills and `--force` empties of its outputs) would
 * overlap one of `inputs`, as a phrase ("is inside nsd.root /data/nsd"), or null when it is apart from all: the same
 * folder as an input, inside an input folder, or holding an input (file or folder) — its links resolved, so a
 * symlink to an input folder is that folder. Inputs that do not exist are passed over.
 */
export async function folderInputOverlap(path: string, inputs: readonly NamedInput[]): Promise<string | null> {
  for (const input of inputs) {
    // (one that does not exist holds nothing to lose: the run's checks name it)
    if ((await statOrNull(input[1])) === null) continue;
    const overlap = await outputFoldersOverlap(path, input);
    if (overlap) return overlap;
  }
  return null;
}
