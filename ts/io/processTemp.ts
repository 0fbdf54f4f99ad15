/**
 * Temporary folders named for their process, `<prefix>-<host>-<pid>-<random>` as atomic writes name their
 * temporaries (development builds wrote a copy of the U-Net with layers exposed to such a folder in the OS temp
 * folder; ts/encoding/unetCopies.ts also removes the copies of the builds before them, which carry no pid): one a
 * killed process left (SIGKILL, a crash: its own clean-up never ran) is removed by `removeDeadProcessTemps`. A live
 * process's folders, and other hosts', are left alone. `makeProcessTemp` makes one.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { HOST_TAG, isStale } from './atomicWrite.js';

/** Makes (mkdtemp) a `<prefix>-<host>-<pid>-XXXXXX` folder in `parent` for this process; returns its path. */
export function makeProcessTemp(parent: string, prefix: string): Promise<string> {
  return mkdtemp(join(parent, `${prefix}-${HOST_TAG}-${process.pid}-`));
}

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
