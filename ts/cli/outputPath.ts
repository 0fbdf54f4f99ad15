/**
 * Output paths checked before a command does any work: a fit that runs for minutes must not end on "EISDIR: illegal
 * operation on a directory, rename". Each refusal names the option (or the config field), the path as given and
 * what was expected. The check writes nothing: missing parent folders are created later, by the writer.
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname, sep } from 'node:path';

import { InvalidArgumentError } from '../errors.js';

/** 'file': a file written whole (a model, a .npy); 'folder': a folder the command fills (a run folder). */
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
 * Throws an InvalidArgumentError unless `path` can take an output of `kind`: a file output must not be an existing
 * folder (nor a device or other non-file), a folder output must not be an existing file, and the nearest existing
 * folder above it must be a writable folder (a parent that is a file can never become one). `option` names where
 * the path came from ('--out', 'run.json: out'); `what` says what is written there ('the model (.safetensors)').
 */
export async function checkOutputPath(option: string, path: string, kind: OutputKind, what: string): Promise<void> {
  const expected = kind === 'file' ? `a file path for ${what}` : `a folder for ${what}`;
  const refuse = (problem: string) => new InvalidArgumentError(`${option} ${path}: ${problem}; expected ${expected}`);
  if (path.trim() === '') throw new InvalidArgumentError(`${option}: got an empty path; expected ${expected}`);
  if (kind === 'file' && (path.endsWith('/') || path.endsWith(sep))) throw refuse('ends with a path separator (a folder)');
  const target = await statOrNull(path);
  if (target) {
    if (kind === 'file' && target.isDirectory()) throw refuse('is an existing folder');
    if (kind === 'file' && !target.isFile()) throw refuse('exists and is not a regular file');
    if (kind === 'folder' && !target.isDirectory()) throw refuse('is an existing file');
    const dir = kind === 'folder' ? path : dirname(path);
    if (!(await writable(dir))) throw refuse(`${dir} is not writable (permission denied)`);
    return;
  }
  // the nearest existing ancestor (named as typed: dirname of a relative path ends at '.') decides: a folder we may
  // write in, or a file that blocks the path
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    const s = await statOrNull(dir);
    if (s) {
      if (!s.isDirectory()) throw refuse(`${dir} is a file, not a folder, so nothing can be written below it`);
      if (!(await writable(dir))) throw refuse(`${dir} is not writable (permission denied)`);
      return;
    }
    if (dirname(dir) === dir) return;
  }
}
