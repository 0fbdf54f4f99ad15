/**
 * A file's identity without reading it: its resolved path, size and modification time. The NSD extraction cache is
 * keyed by its sources' identities, and a run folder's stage markers record those of the files a stage read from
 * outside the folder (a feature file, the model folder), so that a file replaced since is read again.
 */
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';

export interface FileIdentity {
  path: string;
  size: number;
  mtimeMs: number;
}

/** A path as a stage found it: a file's identity, a path that does not exist, or the count of a folder's files left out. */
export type InputIdentity = FileIdentity | { path: string; missing: true } | { path: string; filesLeftOut: number };

/** A folder's files are listed down to this depth below it (model/unet/model.onnx is 1)... */
const FOLDER_DEPTH = 3;
/** ...and up to this many (a folder named by mistake, a home folder, is not walked whole): the rest are counted. */
const FOLDER_FILES = 4096;

/** The identity of the file at `path` (stat follows links); fails as stat does when it is missing. */
export async function fileIdentity(path: string): Promise<FileIdentity> {
  const s = await stat(path);
  return { path: resolve(path), size: s.size, mtimeMs: s.mtimeMs };
}

/**
 * The identities of `paths` as they are now: a file's; a folder's files', sorted, to FOLDER_DEPTH levels and
 * FOLDER_FILES files (the rest counted in one entry); a missing path as missing. The same inputs give the same list.
 */
export async function inputIdentities(paths: readonly string[]): Promise<InputIdentity[]> {
  const out: InputIdentity[] = [];
  for (const p of paths) {
    const s = await stat(p).catch(() => null);
    if (!s) out.push({ path: resolve(p), missing: true });
    else if (!s.isDirectory()) out.push({ path: resolve(p), size: s.size, mtimeMs: s.mtimeMs });
    else {
      const files: FileIdentity[] = [];
      const left = await walk(resolve(p), FOLDER_DEPTH, files);
      out.push(...files);
      if (left > 0) out.push({ path: resolve(p), filesLeftOut: left });
    }
  }
  return out;
}

/** Adds the files below `dir` to `files` (at most FOLDER_FILES in all); returns how many were left out. */
async function walk(dir: string, depth: number, files: FileIdentity[]): Promise<number> {
  const names = (await readdir(dir).catch(() => [] as string[])).sort();
  let left = 0;
  for (const name of names) {
    const p = join(dir, name);
    const s = await stat(p).catch(() => null);
    if (!s) continue;
    if (s.isDirectory()) {
      if (depth > 0) left += await walk(p, depth - 1, files);
    } else if (files.length < FOLDER_FILES) files.push({ path: p, size: s.size, mtimeMs: s.mtimeMs });
    else left++;
  }
  return left;
}

const keyOf = (e: InputIdentity) => ('filesLeftOut' in e ? `${e.path}\u0000more` : e.path);
const same = (a: InputIdentity, b: InputIdentity) => JSON.stringify(a) === JSON.stringify(b);

/** What differs between two lists of identities, in words ("… changed", "… is gone", "… is new"); null when nothing. */
export function identityChange(before: readonly InputIdentity[], now: readonly InputIdentity[]): string | null {
  const then = new Map(before.map((e) => [keyOf(e), e]));
  for (const e of now) {
    const was = then.get(keyOf(e));
    if (!was) return 'missing' in e ? `${e.path} is gone` : `${e.path} is new`;
    if (same(was, e)) continue;
    if ('missing' in e) return `${e.path} is gone`;
    if ('missing' in was) return `${e.path} is new`;
    return 'filesLeftOut' in e ? `the files of ${e.path} beyond the first ${FOLDER_FILES} changed` : `${e.path} changed`;
  }
  const nowKeys = new Set(now.map(keyOf));
  const gone = before.find((e) => !nowKeys.has(keyOf(e)));
  return gone ? `${gone.path} is gone` : null;
}
