/**
 * What stands in the way of writing an output at a path, as a phrase: the CLI checks its --out paths with it before
 * any work (ts/cli/outputPath.ts), and the atomic writers name it when a write fails on the path (a library caller
 * has no such check), so both say the same thing ("is an existing folder", "… is a file, not a folder, …").
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

/** 'file': a file written whole (a model, a .npy); 'folder': a folder filled or swapped in whole (a run folder). */
export type OutputKind = 'file' | 'folder';

type Stat = Awaited<ReturnType<typeof stat>>;

async function statOrNull(path: string): Promise<Stat | null> {
  try {
    return await stat(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw e;
  }
}

async function writable(dir: string): Promise<boolean> {
  try {
    await access(dir, constants.W_OK | constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Why `path` cannot take an output of `kind`, or null when it can: a file output must not be an existing folder (nor
 * a device or other non-file), a folder output must not be an existing file, and the nearest existing folder above
 * it must be a writable folder (a parent that is a file can never become one). Missing folders are no problem: the
 * writers create them.
 */
export async function outputPathProblem(path: string, kind: OutputKind): Promise<string | null> {
  const target = await statOrNull(path);
  if (target) {
    if (kind === 'file' && target.isDirectory()) return 'is an existing folder';
    if (kind === 'file' && !target.isFile()) return 'exists and is not a regular file';
    if (kind === 'folder' && !target.isDirectory()) return 'is an existing file';
    const dir = kind === 'folder' ? path : dirname(path);
    return (await writable(dir)) ? null : `${dir} is not writable (permission denied)`;
  }
  // the nearest existing ancestor (named as typed: dirname of a relative path ends at '.') decides: a folder we may
  // write in, or a file that blocks the path
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    const s = await statOrNull(dir);
    if (s) {
      if (!s.isDirectory()) return `${dir} is a file, not a folder, so nothing can be written below it`;
      return (await writable(dir)) ? null : `${dir} is not writable (permission denied)`;
    }
    if (dirname(dir) === dir) return null;
  }
}
