/**
 * Edges of the atomic writers that a review found (s34): a folder replaced while its old version is being deleted, a
 * shared host name across PID namespaces, a folder output that is a symbolic link, write errors that named no file,
 * and the shared-features copy across file systems.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { linkInto } from '../../ts/batch/sharedFeatures.js';
import { HOST_TAG, hostTagOf, prepareAtomicFile, recoverInterruptedDir, removeStaleTemporaries, withAtomicDir, withAtomicFile, withAtomicPath } from '../../ts/io/atomicWrite.js';
import { readSafetensors, writeSafetensorsTo } from '../../ts/io/safetensors.js';
import { distModule } from '../helpers/dist.js';

const root = mkdtempSync(join(tmpdir(), 'bl-atomic-edges-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => {
  const d = join(root, `case${n++}`);
  mkdirSync(d);
  return d;
};

/** A Node system error as fs gives one for a step on a descriptor (no path). */
const systemError = (code: string, syscall: string) => Object.assign(new Error(`${code}: something went wrong, ${syscall}`), { code, syscall, errno: -28 });

describe('atomic writes: edges', () => {
  it('a writer killed while it deletes the folder it replaced leaves nothing that recoverInterruptedDir would put back', async () => {
    const d = fresh();
    const target = join(d, 'D');
    const FILES = 4000;
    // (a child writes D: the first time whole, the second time it is killed once the new D is in and the old one is
    // being deleted; before, the old one was deleted under its .old- name, which a later recovery restored part of)
    const script = join(d, 'write.mjs');
    writeFileSync(
      script,
      `import { withAtomicDir } from ${JSON.stringify(distModule('io/atomicWrite'))};\nimport { writeFileSync } from 'node:fs';\n` +
        `const tag = process.argv[2];\nawait withAtomicDir(${JSON.stringify(target)}, async (tmp) => {\n` +
        `  for (let i = 0; i < ${FILES}; i++) writeFileSync(tmp + '/f' + i, tag);\n  writeFileSync(tmp + '/manifest', tag);\n});\n`,
    );
    const runChild = (tag: string, killWhenDeleting: boolean) =>
      new Promise<void>((resolve) => {
        const child = spawn(process.execPath, [script, tag], { stdio: 'ignore' });
        let timer: NodeJS.Timeout | undefined;
        if (killWhenDeleting) {
          timer = setInterval(() => {
            let manifest = '';
            try {
              manifest = readFileSync(join(target, 'manifest'), 'utf8');
            } catch {
              return;
            }
            // the new D is in, and a sibling of it (the old version) is part deleted
            if (manifest !== tag) return;
            const partial = readdirSync(d).some((f) => {
              if (!f.startsWith('.D.')) return false;
              try {
                return readdirSync(join(d, f)).length <= FILES;
              } catch {
                return false;
              }
            });
            if (partial) child.kill('SIGKILL');
          }, 1);
        }
        child.on('exit', () => {
          clearInterval(timer);
          resolve();
        });
      });
    await runChild('old', false);
    await runChild('new', true);
    // the user deletes the output (or the cache drops it); a reader then recovers interrupted swaps
    rmSync(target, { recursive: true, force: true });
    const restored = await recoverInterruptedDir(target);
    if (restored) {
      // (the child ended between its two renames: only then is an .old- folder left, and it is complete)
      expect(readdirSync(target)).toHaveLength(FILES + 1);
    } else {
      expect(readdirSync(d).filter((f) => f.startsWith('.D.old-'))).toEqual([]);
    }
    // whatever the kill left is a temporary of a dead process of this host: removed
    await removeStaleTemporaries(d);
    expect(readdirSync(d).filter((f) => f.startsWith('.D.'))).toEqual([]);
  }, 60_000);

  it('the host tag in temporary names holds the PID namespace: two containers sharing a host name never judge each other dead', () => {
    const ns = (() => {
      try {
        return readlinkSync('/proc/self/ns/pid');
      } catch {
        return '';
      }
    })();
    expect(HOST_TAG).toBe(hostTagOf(hostname(), ns));
    expect(hostTagOf('node-1', 'pid:[4026531836]')).not.toBe(hostTagOf('node-1', 'pid:[4026532001]'));
    expect(hostTagOf('node-1', 'pid:[4026531836]')).not.toBe(hostTagOf('node-2', 'pid:[4026531836]'));
    expect(hostTagOf('node-1', 'pid:[4026531836]')).toMatch(/^[0-9a-f]{6}$/);
  });

  it('a folder output that is a symbolic link is swapped in where it points, the link kept', async () => {
    const d = fresh();
    const real = join(d, 'real');
    mkdirSync(real);
    writeFileSync(join(real, 'old.txt'), 'old');
    const link = join(d, 'link');
    symlinkSync(real, link);
    // (before: the whole build ran, then "ENOTDIR: not a directory, rename '.link.tmp-…' -> 'link'")
    const r = await withAtomicDir(link, async (tmp) => {
      writeFileSync(join(tmp, 'new.txt'), 'new');
      return 7;
    });
    expect(r).toBe(7);
    expect(readlinkSync(link)).toBe(real);
    expect(readdirSync(real)).toEqual(['new.txt']);
    expect(readFileSync(join(link, 'new.txt'), 'utf8')).toBe('new');
    expect(readdirSync(d).sort()).toEqual(['link', 'real']);
  });

  // the rename replaced the link with a regular file: the data on the link's disk, the target unchanged (review s44)
  it('a file output that is a symbolic link is written where it points, the link kept; a dangling one creates its target', async () => {
    const d = fresh();
    mkdirSync(join(d, 'disk'));
    writeFileSync(join(d, 'disk', 'pred.npy'), 'old');
    symlinkSync(join(d, 'disk', 'pred.npy'), join(d, 'pred.npy'));
    symlinkSync('pred.npy', join(d, 'chain.npy')); // a relative link to a link
    await withAtomicFile(join(d, 'chain.npy'), async (fh) => void (await fh.write('new')));
    expect(readlinkSync(join(d, 'chain.npy'))).toBe('pred.npy');
    expect(readlinkSync(join(d, 'pred.npy'))).toBe(join(d, 'disk', 'pred.npy'));
    expect(readFileSync(join(d, 'disk', 'pred.npy'), 'utf8')).toBe('new');
    symlinkSync(join(d, 'disk', 'later.h5'), join(d, 'dangling.h5'));
    await withAtomicPath(join(d, 'dangling.h5'), (tmp) => writeFileSync(tmp, 'h5'));
    expect(readFileSync(join(d, 'disk', 'later.h5'), 'utf8')).toBe('h5');
    expect(readlinkSync(join(d, 'dangling.h5'))).toBe(join(d, 'disk', 'later.h5'));
    expect(readdirSync(d).sort()).toEqual(['chain.npy', 'dangling.h5', 'disk', 'pred.npy']);
    expect(readdirSync(join(d, 'disk')).sort()).toEqual(['later.h5', 'pred.npy']);
  });

  it('a failed write or flush names the output; errors that name their own path, and others, pass unchanged', async () => {
    const d = fresh();
    const out = join(d, 'model.safetensors');
    const full = systemError('ENOSPC', 'write');
    const e = await withAtomicFile(out, async () => Promise.reject(full)).catch((x: unknown) => x);
    expect(e).toBe(full);
    expect(full.message).toBe(`writing ${out}: ENOSPC: something went wrong, write`);
    expect(full.code).toBe('ENOSPC');
    const e2 = await withAtomicPath(join(d, 'x.h5'), async () => Promise.reject(systemError('EIO', 'fsync'))).catch((x: Error) => x.message);
    expect(e2).toBe(`writing ${join(d, 'x.h5')}: EIO: something went wrong, fsync`);
    // an input's error names its file already; a plain Error is the caller's own
    const input = Object.assign(systemError('ENOENT', 'open'), { path: '/data/x.npy' });
    await withAtomicFile(out, async () => Promise.reject(input)).catch(() => undefined);
    expect(input.message).toBe('ENOENT: something went wrong, open');
    const own = new Error('disk on fire');
    await expect(withAtomicFile(out, async () => Promise.reject(own))).rejects.toBe(own);
    expect(own.message).toBe('disk on fire');
    expect(readdirSync(d)).toEqual([]);
  });

  it('linkInto across file systems copies through a flushed temporary, named as the stale clean-up knows', async () => {
    const shm = '/dev/shm';
    const d = fresh();
    let src = join(d, 'src.npy');
    // (a source on another file system than the destination makes link() fail with EXDEV: /dev/shm where there is one)
    try {
      const other = mkdtempSync(join(shm, 'bl-link-'));
      src = join(other, 'src.npy');
    } catch {
      // same file system: the hard link path
    }
    try {
      writeFileSync(src, 'features');
      const dest = join(d, 'shared', 'features.npy');
      await linkInto(src, dest);
      expect(readFileSync(dest, 'utf8')).toBe('features');
      // a copy where the source is on another file system, else the same inode
      expect(statSync(dest).ino === statSync(src).ino).toBe(statSync(src).dev === statSync(d).dev);
      await linkInto(src, dest); // again, over it
      expect(readdirSync(join(d, 'shared'))).toEqual(['features.npy']);
    } finally {
      if (!src.startsWith(d)) rmSync(join(src, '..'), { recursive: true, force: true });
    }
  });
});

describe('an output opened ahead of its bytes (prepareAtomicFile, as ridge fit opens its model before its summary)', () => {
  it('commit writes and renames it into place once; discard leaves nothing; a refused tensor discards it', async () => {
    const d = fresh();
    const out = join(d, 'model.safetensors');
    writeFileSync(out, 'old');
    const file = await prepareAtomicFile(out);
    // the temporary is there, the old file untouched until the commit
    expect(readdirSync(d).filter((f) => f.includes('.tmp-'))).toHaveLength(1);
    expect(readFileSync(out, 'utf8')).toBe('old');
    await writeSafetensorsTo(file, { a: { data: Float32Array.of(1, 2, 3), shape: [3] } }, { k: 'v' });
    expect(readdirSync(d)).toEqual(['model.safetensors']);
    const back = await readSafetensors(out);
    expect(Array.from(back.tensors.a.data as Float32Array)).toEqual([1, 2, 3]);
    await expect(file.commit(async () => undefined)).rejects.toThrow(/already committed or discarded/);
    // discarded: the temporary goes, the file stays as it was
    const dropped = await prepareAtomicFile(out);
    await dropped.discard();
    expect(readdirSync(d)).toEqual(['model.safetensors']);
    // a tensor refused before any byte is written: nothing left behind either
    const bad = await prepareAtomicFile(join(d, 'bad.safetensors'));
    await expect(writeSafetensorsTo(bad, { a: { data: Float32Array.of(1, 2), shape: [3] } })).rejects.toThrow(/tensor 'a'/);
    expect(readdirSync(d)).toEqual(['model.safetensors']);
  });
});
