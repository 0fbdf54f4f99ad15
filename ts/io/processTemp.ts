/**
 * Temporary folders a process uses for a while and removes itself (a copy of the U-Net with layers exposed, in the
 * OS temp folder), named `<prefix>-<host>-<pid>-<random>` as atomic writes name their temporaries: one a killed
 * process left (SIGKILL, a crash: its own clean-up never ran) is removed by the next process that makes one with
 * the same prefix in the same place. A live process's folders, and other hosts', are left alone.
 */
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { HOST_TAG, isStale } from './atomicWrite.js';

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Removes the `prefix` folders of dead processes of this host in `parent`; returns their paths. Best effort. */
export async function removeDeadProcessTemps(parent: string, prefix: string): Promise<string[]> {
  // mkdtemp appends six characters to the pid-tagged prefix
  const re = new RegExp(`^${escape(prefix)}-([0-9a-f]{6})-(\\d+)-[A-Za-z0-9]{6}$`);
  let names: string[];
  try {
    names = await readdir(parent);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const n of names) {
    const m = re.exec(n);
    if (!m || !isStale(m[1], Number(m[2]))) continue;
    const p = join(parent, n);
    await rm(p, { recursive: true, force: true }).catch(() => undefined);
    removed.push(p);
  }
  return removed;
}

/** A new folder `<prefix>-<host>-<pid>-<random>` in `parent` (created if missing), after removing dead processes' ones. */
export async function makeProcessTempDir(parent: string, prefix: string): Promise<string> {
  await mkdir(parent, { recursive: true });
  await removeDeadProcessTemps(parent, prefix);
  return mkdtemp(join(parent, `${prefix}-${HOST_TAG}-${process.pid}-`));
}
