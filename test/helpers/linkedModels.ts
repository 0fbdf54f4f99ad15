/**
 * Model files laid out as downloads keep them: files moved to blobs/<sha256> with relative links back (a Hugging
 * Face cache snapshot, or a download whose large files link into the cache). Weights moved into an external-data
 * file first: externalData.ts's `externalize`.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, symlink } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';

/** Every file under `dir` as `pick(relative path)` decides: moved to blobs/<sha256> (or a subfolder of it) and linked back, relatively. */
export async function linkIntoBlobs(dir: string, blobs: string, pick: (rel: string) => boolean, sharded = false): Promise<void> {
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (pick(relative(dir, p))) {
        const hash = createHash('sha256').update(await readFile(p)).digest('hex');
        const blob = sharded ? join(blobs, hash.slice(0, 2), hash) : join(blobs, hash);
        await mkdir(dirname(blob), { recursive: true });
        await rename(p, blob);
        await symlink(relative(dirname(p), blob), p);
      }
    }
  };
  await walk(dir);
}
