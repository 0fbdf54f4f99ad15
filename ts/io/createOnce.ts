/** Exclusive creation of a whole file: the lock files' and the batch layer's publish-once outputs'. */
import { randomBytes } from 'node:crypto';
import { link, open, rm } from 'node:fs/promises';

/**
 * Creates the file at `path` whole, exactly once: the data go to a private temporary beside it, synced, then
 * hard-linked into place only if nothing is there yet. Returns false (and writes nothing) when a file is there:
 * another process's (a lock's holder, an earlier execution of the same job). Where the file system has no hard
 * links, an exclusive create instead (a reader may then briefly see it empty).
 */
export async function createOnce(path: string, body: string): Promise<boolean> {
  const tmp = `${path}.${process.pid}-${randomBytes(4).toString('hex')}`;
  const fh = await open(tmp, 'wx');
  try {
    await fh.writeFile(body);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await link(tmp, path);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw e;
    // No hard links here: exclusive create is the next best (a reader may briefly see it empty).
    try {
      const lf = await open(path, 'wx');
      try {
        await lf.writeFile(body);
      } finally {
        await lf.close();
      }
      return true;
    } catch (e2) {
      if ((e2 as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e2;
    }
  } finally {
    await rm(tmp, { force: true });
  }
}
