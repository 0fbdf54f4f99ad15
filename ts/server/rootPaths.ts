/**
 * The service's file system boundary: every path a client names (in a config, a model to load, a file of a run
 * folder) must resolve inside one root folder. Relative paths are taken from the root; a `..` segment is refused
 * outright (even one that would land inside); and the real path of the deepest existing ancestor must lie inside
 * the root's real path, so a symbolic link cannot lead out of it either.
 */
import { realpathSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';

import { BrainlatentError } from '../errors.js';

/** A path that would leave the root. The message names the field, never a file's contents. */
export class PathOutsideRootError extends BrainlatentError {
  readonly field: string;
  constructor(field: string, reason: string) {
    super(`${field}: ${reason}`, 'PathOutsideRoot');
    this.field = field;
  }
}

const inside = (root: string, p: string) => p === root || p.startsWith(root.endsWith(sep) ? root : root + sep);

/** The real path of `p`, or of its deepest existing ancestor joined with the rest (for outputs not yet written). */
async function realpathOfExisting(p: string): Promise<string> {
  let head = p;
  const tail: string[] = [];
  for (;;) {
    try {
      const real = await realpath(head);
      return tail.length ? resolve(real, ...tail.reverse()) : real;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw e;
      const up = dirname(head);
      if (up === head) return p;
      tail.push(head.slice(up.length + (up.endsWith(sep) ? 0 : 1)));
      head = up;
    }
  }
}

export class RootFolder {
  /** The root's real path (symbolic links resolved once, at start). */
  readonly path: string;

  constructor(root: string) {
    this.path = realpathSync(resolve(root));
  }

  /**
   * `p` (relative to the root, or absolute inside it) as an absolute real path inside the root; throws
   * PathOutsideRootError naming `field` otherwise. The target need not exist yet (an output folder).
   */
  async resolve(p: string, field: string): Promise<string> {
    if (typeof p !== 'string' || p.length === 0) throw new PathOutsideRootError(field, 'expected a path');
    if (p.includes('\0')) throw new PathOutsideRootError(field, 'a path cannot contain a NUL character');
    if (p.split(/[\\/]+/).includes('..')) throw new PathOutsideRootError(field, `'..' is not allowed in paths (paths are relative to the service's root)`);
    const abs = isAbsolute(p) ? resolve(p) : resolve(this.path, p);
    if (!inside(this.path, abs)) throw new PathOutsideRootError(field, 'the path is outside the service\'s root folder');
    const real = await realpathOfExisting(abs);
    if (!inside(this.path, real)) throw new PathOutsideRootError(field, 'the path leads outside the service\'s root folder through a symbolic link');
    return real;
  }

  /** `abs` relative to the root, for showing to clients ("runs/subj01"). */
  relative(abs: string): string {
    return relative(this.path, abs) || '.';
  }
}

/**
 * The file `rel` inside `folder` (a run folder), for the file routes: no `..`, no absolute paths, and its real
 * path inside the folder's real path. Returns null when it would leave the folder or does not exist.
 */
export async function fileInside(folder: string, rel: string): Promise<string | null> {
  if (rel.includes('\0') || isAbsolute(rel) || rel.split(/[\\/]+/).includes('..')) return null;
  let realFolder: string;
  let real: string;
  try {
    realFolder = await realpath(folder);
    real = await realpath(resolve(realFolder, rel));
  } catch {
    return null;
  }
  return inside(realFolder, real) ? real : null;
}
