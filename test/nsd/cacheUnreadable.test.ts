/**
 * An extraction cache entry this process cannot read is not damaged: every BrainlatentError and every error reading
 * its manifest counted as damage, so in a shared cache user A found user B's mode-700 entry "damaged", extracted for
 * hours and swapped B's folder aside (then failed to delete it), `cache prune --stale` renamed B's entry to a hidden
 * temporary name it could not delete, and an older brainlatent replaced a newer one's entry. Now only what is wrong
 * with an entry's content is damage; permission denied, an I/O error, too many open files, memory and a newer
 * brainlatent's manifest are refused naming the entry, which no extraction replaces and no prune removes (`cache list`
 * shows it unreadable). A damaged entry this process may not delete (another user's: its folder, a sticky cache
 * folder) is left as it is, and the extraction runs and is returned uncached, saying why, as in a read-only cache.
 *
 * Permission and I/O errors are made at the fs layer (root reads a mode-000 file anyway); the last test runs the CLI
 * as uid 65534 when root, as test/cli/permissionDenied.test.ts does, against a real mode-000 manifest.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';

const inject = vi.hoisted(() => ({
  errno: new Map<string, string>(),
  /** access() asking to write (W_OK) only: a folder that may be read and entered but not written in (a read-only mount). */
  noWrite: new Map<string, string>(),
  rename: new Map<string, string>(),
  onRename: null as (() => void) | null,
  oom: null as string | null,
}));

vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs/promises')>();
  /** Node's error for `syscall` on `path`, when a test has set one for it. */
  const fail = (path: unknown, syscall: string) => {
    const code = inject.errno.get(String(path));
    if (code) throw Object.assign(new Error(`${code}: injected, ${syscall} '${String(path)}'`), { code, syscall, path: String(path) });
  };
  const readFile = (async (path: string, ...rest: unknown[]) => {
    fail(path, 'open');
    return (fs.readFile as (...a: unknown[]) => Promise<unknown>)(path, ...rest);
  }) as typeof fs.readFile;
  const open = (async (path: string, ...rest: unknown[]) => {
    fail(path, 'open');
    return (fs.open as (...a: unknown[]) => Promise<unknown>)(path, ...rest);
  }) as typeof fs.open;
  const access = (async (path: string, mode?: number) => {
    fail(path, 'access');
    const code = ((mode ?? 0) & fs.constants.W_OK) !== 0 ? inject.noWrite.get(String(path)) : undefined;
    if (code) throw Object.assign(new Error(`${code}: injected, access '${String(path)}'`), { code, syscall: 'access', path: String(path) });
    return fs.access(path, mode);
  }) as typeof fs.access;
  // (a rename of `from` refused though access() allowed it: what the checks before the work cannot foresee)
  const rename = (async (from: string, to: string) => {
    const code = inject.rename.get(String(from));
    if (code) inject.onRename?.();
    if (code) throw Object.assign(new Error(`${code}: injected, rename '${from}' -> '${to}'`), { code, syscall: 'rename', path: from, dest: to });
    return fs.rename(from, to);
  }) as typeof fs.rename;
  return { ...fs, readFile, open, access, rename, default: { ...fs, readFile, open, access, rename } };
});

vi.mock('../../ts/io/npy.js', async (importOriginal) => {
  const npy = await importOriginal<typeof import('../../ts/io/npy.js')>();
  const { OutOfMemoryError } = await import('../../ts/errors.js');
  const readNpy = (async (path: string, options?: Parameters<typeof npy.readNpy>[1]) => {
    if (path === inject.oom) throw new OutOfMemoryError(`${path}: the machine could not provide 2.00 GiB; free memory or use a machine with more`, 'allocation');
    return npy.readNpy(path, options);
  }) as typeof npy.readNpy;
  return { ...npy, readNpy };
});

const { FileAccessError, FormatError, OutOfMemoryError } = await import('../../ts/errors.js');
const { listCacheFolder, pruneCacheFolder } = await import('../../ts/nsd/cacheFolder.js');
const { extractNsd } = await import('../../ts/nsd/extract.js');
const { betasPath } = await import('../../ts/nsd/paths.js');
const { Command } = await import('commander');
const { registerNsdCommand } = await import('../../ts/cli/commands/nsd.js');
const { resolveEncodeConfig } = await import('../../ts/config/encode.js');
const { encodeStages } = await import('../../ts/encoding/encode.js');
const { distModule } = await import('../helpers/dist.js');
const { runCommand } = await import('../helpers/nodeChild.js');
const { stderrOf } = await import('../helpers/cli.js');
const { makeMiniNsd } = await import('./mini.js');

let mini: Awaited<ReturnType<typeof makeMiniNsd>>;
beforeAll(async () => {
  mini = await makeMiniNsd();
});
afterAll(() => mini?.cleanup());
afterEach(() => {
  inject.errno.clear();
  inject.noWrite.clear();
  inject.rename.clear();
  inject.onRename = null;
  inject.oom = null;
});

let folders = 0;

/** A fresh cache folder with one entry, and an extraction of that entry that counts the sessions it reads. */
async function cacheWithEntry() {
  const dir = join(mini.tmp, `cache-${++folders}`);
  let read = 0;
  const extract = () => extractNsd({ root: mini.root, subject: 1, roi: 'streams:early', sessions: '1', cacheDir: dir, onProgress: () => void read++ });
  const first = await extract();
  read = 0;
  const entry = join(dir, readdirSync(dir).find((n) => n.endsWith(`_${first.manifest.key}`))!);
  return { dir, entry, extract, sessionsRead: () => read };
}

/** Every file of the cache folder, with its bytes: what must be left as it was. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) out[relative(dir, join(e.parentPath, e.name))] = readFileSync(join(e.parentPath, e.name)).toString('base64');
  }
  return out;
}

/** The entry is refused (nothing read, nothing written), listed as unreadable with `why`, and no prune removes it. */
async function leftAlone(c: Awaited<ReturnType<typeof cacheWithEntry>>, error: unknown, why: string) {
  const before = snapshot(c.dir);
  expect(await c.extract().catch((e: unknown) => e)).toEqual(error);
  expect(c.sessionsRead()).toBe(0);
  expect(snapshot(c.dir)).toEqual(before);
  const listed = await listCacheFolder(c.dir);
  expect(listed.map((e) => [e.path, e.staleness])).toEqual([[c.entry, { state: 'unreadable', why }]]);
  const pruned = await pruneCacheFolder(c.dir, { stale: true, olderThanDays: 0, now: Date.now() + 86_400_000 });
  expect(pruned).toEqual({ removed: [], held: [], replaced: [], denied: [], bytes: 0 });
  expect(snapshot(c.dir)).toEqual(before);
}

const denied = (entry: string, why: string) =>
  `extractNsd cacheDir: extraction cache entry ${entry} cannot be read (${why}); it is kept as it is: its owner can make it readable (chmod -R a+rX ${entry}), or give another cache folder`;
const failed = (entry: string, why: string) => `extractNsd cacheDir: extraction cache entry ${entry} cannot be read (${why}); it is kept as it is: try again, or give another cache folder`;

describe('an entry this process cannot read is refused, kept, listed unreadable and never pruned', () => {
  for (const [file, errno] of [['manifest.json', 'EACCES'], ['train_betas.npy', 'EACCES'], ['voxels.npy', 'EPERM']] as const) {
    it(`${file}: ${errno}`, async () => {
      const c = await cacheWithEntry();
      inject.errno.set(join(c.entry, file), errno);
      const e = await c.extract().catch((x: unknown) => x);
      expect(e).toBeInstanceOf(FileAccessError);
      expect(e).toMatchObject({ errno, code: 'FileAccess', message: denied(c.entry, `${file}: permission denied`) });
      // (before: "removed extraction cache entry … damaged (manifest.json: cannot be read (EACCES)); extracted again")
      await leftAlone(c, expect.any(FileAccessError), `${file}: permission denied`);
    });
  }

  for (const [file, errno] of [['manifest.json', 'EIO'], ['test_betas.npy', 'EMFILE']] as const) {
    it(`${file}: ${errno} (the system's, not the entry's)`, async () => {
      const c = await cacheWithEntry();
      inject.errno.set(join(c.entry, file), errno);
      const why = `${errno}: injected, open '${file}'`;
      const e = await c.extract().catch((x: unknown) => x);
      expect(e).toBeInstanceOf(FileAccessError);
      expect(e).toMatchObject({ errno, message: failed(c.entry, why) });
      await leftAlone(c, expect.any(FileAccessError), why);
    });
  }

  it('memory runs out while the entry is loaded: that error, naming the entry; the entry stays', async () => {
    const c = await cacheWithEntry();
    inject.oom = join(c.entry, 'train_betas.npy');
    const e = await c.extract().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(OutOfMemoryError);
    expect(e).toMatchObject({
      reason: 'allocation',
      message: failed(c.entry, 'train_betas.npy: the machine could not provide 2.00 GiB; free memory or use a machine with more'),
    });
    expect(c.sessionsRead()).toBe(0);
    inject.oom = null;
    expect((await c.extract()).fromCache).toBe(true);
  });

  it("a newer brainlatent's entry (manifest version 2): refused naming the entry and the version, left, listed unreadable, not pruned", async () => {
    const c = await cacheWithEntry();
    const manifest = join(c.entry, 'manifest.json');
    writeFileSync(manifest, JSON.stringify({ ...JSON.parse(readFileSync(manifest, 'utf8')), version: 2 }));
    const e = await c.extract().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(FormatError);
    expect(e).toMatchObject({
      field: 'version',
      path: manifest,
      message: `extractNsd cacheDir: extraction cache entry ${c.entry} was written by a newer brainlatent (manifest version 2); it is kept as it is: use that version, or give another cache folder`,
    });
    await leftAlone(c, expect.any(FormatError), 'manifest.json: written by a newer brainlatent (manifest version 2)');
  });
});

describe('cache prune on a read-only file system', () => {
  it('keeps the entry and says the file system is read-only (not that its owner can remove it)', async () => {
    const c = await cacheWithEntry();
    rmSync(join(c.entry, 'train_betas.npy'));
    inject.errno.set(c.entry, 'EROFS');
    const before = snapshot(c.dir);
    const pruned = await pruneCacheFolder(c.dir, { stale: true });
    expect(pruned).toEqual({ removed: [], held: [], replaced: [], denied: [{ path: c.entry, why: 'its files cannot be deleted (its folder: EROFS, a read-only file system)' }], bytes: 0 });
    expect(snapshot(c.dir)).toEqual(before);
  });
});

let touches = 0;
/** Session 1's betas rewritten (a later mtime each time): the entries made from it are replaced by the next extraction. */
const rewriteSession1 = () => utimesSync(betasPath(mini.root, 1, 1, 'hdf5'), new Date(), new Date(Date.now() + ++touches * 10_000));

const cannotDelete = 'this user cannot delete its files (its folder: EACCES); its owner can remove it';

describe("an extraction's own upkeep names the entries it cannot delete (before: left silently)", () => {
  for (const [errno, why] of [['EACCES', cannotDelete], ['EROFS', 'its files cannot be deleted (its folder: EROFS, a read-only file system)']] as const) {
    it(`extractNsd: a replaced entry whose folder says ${errno} is kept, in keptInCache with prune's words`, async () => {
      const c = await cacheWithEntry();
      const before = snapshot(c.entry);
      rewriteSession1();
      inject.errno.set(c.entry, errno);
      const again = await c.extract();
      expect(again.fromCache).toBe(false);
      expect(again.removedFromCache).toEqual([]);
      expect(again.keptInCache).toEqual([{ path: c.entry, why }]);
      expect(snapshot(c.entry)).toEqual(before);
      expect(readdirSync(c.dir).filter((n) => n.startsWith('.'))).toEqual([]);
    });
  }

  it('nsd extract says it on stderr, once', async () => {
    const c = await cacheWithEntry();
    rewriteSession1();
    inject.errno.set(c.entry, 'EACCES');
    const program = new Command().exitOverride();
    registerNsdCommand(program);
    const args = ['nsd', 'extract', '--root', mini.root, '--subject', '1', '--roi', 'streams:early', '--sessions', '1', '--cache', c.dir, '--out', join(mini.tmp, `ex-kept-${folders}`)];
    const printed = await stderrOf(() => program.parseAsync(['node', 'brainlatent', ...args]));
    expect(printed.split('\n').filter((l) => l.includes('extraction cache entry'))).toEqual([`kept extraction cache entry ${c.entry}: ${cannotDelete}`]);
    expect(existsSync(c.entry)).toBe(true);
  });

  it("the extract stage: an entry of its own cache that the config no longer reads, undeletable, is kept in the summary's cacheKept", async () => {
    const out = join(mini.tmp, `run-kept-${++folders}`);
    const config = (zscore: string) =>
      resolveEncodeConfig({ out, nsd: { root: mini.root, subject: 1, sessions: '1', zscore }, featureSets: [{ name: 'f', kind: 'file', path: join(mini.tmp, 'f.npy') }] });
    const extract = async (zscore: string) => (await encodeStages(config(zscore)).find((s) => s.id === 'extract')!.run({ progress: () => undefined })).summary!;
    await extract('session');
    const [old] = readdirSync(join(out, 'cache'));
    inject.errno.set(join(out, 'cache', old), 'EACCES');
    const summary = await extract('none');
    expect(summary.cacheRemoved).toBeUndefined();
    expect(summary.cacheKept).toEqual([{ path: join(out, 'cache', old), why: cannotDelete }]);
    expect(readdirSync(join(out, 'cache'))).toContain(old);
  });
});

/**
 * extractNsd's notCached for a damaged entry this user cannot delete (`why`): what to do, its owner's uid named (none
 * on a read-only file system), and the option that sets the cache folder as the caller named it (`label`: the
 * library's cacheDir, nsd extract's --cache, a config's nsd.cacheDir).
 */
const notReplaced = (entry: string, damage: string, why: string, owner: number | null, label = 'cacheDir') =>
  `its damaged entry ${entry} (${damage}) could not be replaced: ${why}, so this extraction was not cached; ` +
  (owner === null ? `point ${label} at a writable folder to cache it` : `ask its owner (uid ${owner}) or the cache's admin to remove it, or point ${label} at another cache folder`);

// a lab's shared cache (a sticky folder, mode 1777) holding another user's damaged entry refused every extraction of
// its key ("… cannot be replaced, so nothing was extracted: its owner can remove it"), though, as in a read-only
// cache folder, the extraction could run and be used without being cached
describe("a damaged entry this user cannot delete (another user's) is left as it is, and the extraction used uncached, saying why", () => {
  const whys = {
    EACCES: 'this user cannot delete its files (its folder: EACCES)',
    EPERM: 'this user cannot delete its files (its folder: EPERM)',
    EROFS: 'its files cannot be deleted (its folder: EROFS, a read-only file system)',
  } as const;
  for (const errno of ['EACCES', 'EPERM', 'EROFS'] as const) {
    it(`the entry folder not writable (${errno}): extracted, returned uncached, the entry untouched; replaced once it can be`, async () => {
      const c = await cacheWithEntry();
      const fresh = await extractNsd({ root: mini.root, subject: 1, roi: 'streams:early', sessions: '1' });
      rmSync(join(c.entry, 'train_betas.npy'));
      inject.errno.set(c.entry, errno);
      const before = snapshot(c.dir);
      const again = await c.extract();
      expect(again.fromCache).toBe(false);
      expect(c.sessionsRead()).toBe(1);
      expect(again.train.data).toEqual(fresh.train.data);
      expect(again.notCached).toBe(notReplaced(c.entry, 'train_betas.npy: file not found', whys[errno], errno === 'EROFS' ? null : statSync(c.entry).uid));
      expect(again.removedFromCache).toBeUndefined();
      expect(snapshot(c.dir)).toEqual(before);
      // (no hold, mark or temporary left beside it)
      expect(readdirSync(c.dir)).toEqual([basename(c.entry)]);
      inject.errno.clear();
      const replaced = await c.extract();
      expect(replaced.notCached).toBeUndefined();
      expect(replaced.removedFromCache?.map((r) => r.path)).toEqual([c.entry]);
      expect((await c.extract()).fromCache).toBe(true);
    });
  }

  for (const errno of ['EACCES', 'EPERM'] as const) {
    it(`its move aside refused (rename: ${errno}) where the checks allowed it: the extraction is not thrown away, but returned uncached`, async () => {
      const c = await cacheWithEntry();
      rmSync(join(c.entry, 'train_betas.npy'));
      inject.rename.set(c.entry, errno);
      const before = snapshot(c.dir);
      const again = await c.extract();
      expect(again.fromCache).toBe(false);
      expect(c.sessionsRead()).toBe(1);
      expect(again.notCached).toBe(notReplaced(c.entry, 'train_betas.npy: file not found', `this user may not replace it (rename: ${errno})`, statSync(c.entry).uid));
      expect(again.removedFromCache).toBeUndefined();
      expect(snapshot(c.dir)).toEqual(before);
      expect(readdirSync(c.dir)).toEqual([basename(c.entry)]);
    });
  }

  it('refused so, but the entry complete by then (another process wrote it again meanwhile): not said to be damaged; the error is thrown, as before', async () => {
    const c = await cacheWithEntry();
    const betas = readFileSync(join(c.entry, 'train_betas.npy'));
    rmSync(join(c.entry, 'train_betas.npy'));
    inject.rename.set(c.entry, 'EPERM');
    inject.onRename = () => writeFileSync(join(c.entry, 'train_betas.npy'), betas);
    const e = await c.extract().catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'EPERM', syscall: 'rename', path: c.entry });
    inject.rename.clear();
    expect((await c.extract()).fromCache).toBe(true);
  });

  it('any other failure of that write (ENOSPC) is thrown, as before', async () => {
    const c = await cacheWithEntry();
    rmSync(join(c.entry, 'train_betas.npy'));
    inject.rename.set(c.entry, 'ENOSPC');
    const e = await c.extract().catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'ENOSPC', message: `ENOSPC: injected, rename '${c.entry}' -> '${(e as { dest: string }).dest}'` });
    expect(readdirSync(c.dir)).toEqual([basename(c.entry)]);
  });

  it('nsd extract says it in one line on stderr, and writes --out', async () => {
    const c = await cacheWithEntry();
    rmSync(join(c.entry, 'train_betas.npy'));
    inject.errno.set(c.entry, 'EPERM');
    const out = join(mini.tmp, `ex-unreplaceable-${folders}`);
    const program = new Command().exitOverride();
    registerNsdCommand(program);
    const args = ['nsd', 'extract', '--root', mini.root, '--subject', '1', '--roi', 'streams:early', '--sessions', '1', '--cache', c.dir, '--out', out];
    const printed = await stderrOf(() => program.parseAsync(['node', 'brainlatent', ...args]));
    expect(printed.split('\n').filter((l) => l.includes('cache'))).toEqual([
      `extraction cache: ${notReplaced(c.entry, 'train_betas.npy: file not found', whys.EPERM, statSync(c.entry).uid, '--cache')}`,
    ]);
    expect(existsSync(join(out, 'train_betas.npy'))).toBe(true);
    expect(existsSync(join(c.entry, 'train_betas.npy'))).toBe(false);
  });

  it("the extract stage: its summary's cacheNotWritten says it (nothing in cacheRemoved)", async () => {
    const out = join(mini.tmp, `run-unreplaceable-${++folders}`);
    const config = resolveEncodeConfig({ out, nsd: { root: mini.root, subject: 1, sessions: '1' }, featureSets: [{ name: 'f', kind: 'file', path: join(mini.tmp, 'f.npy') }] });
    const extract = async () => (await encodeStages(config).find((s) => s.id === 'extract')!.run({ progress: () => undefined })).summary!;
    await extract();
    const [name] = readdirSync(join(out, 'cache'));
    const entry = join(out, 'cache', name);
    rmSync(join(entry, 'voxels.npy'));
    inject.errno.set(entry, 'EACCES');
    const summary = await extract();
    expect(summary.fromCache).toBe(false);
    expect(summary.cacheRemoved).toBeUndefined();
    expect(summary.cacheNotWritten).toEqual([notReplaced(entry, 'voxels.npy: file not found', whys.EACCES, statSync(entry).uid, 'nsd.cacheDir')]);
    expect(readdirSync(join(out, 'cache'))).toEqual([name]);
    expect(existsSync(join(entry, 'voxels.npy'))).toBe(false);
  });
});

/** extractNsd's notCached for a damaged entry of a cache folder this user may not write in (`why`: notWritable's words). */
const readOnlyDamaged = (dir: string, entry: string, why: string, label: string) =>
  `the cache folder is read-only to this user (${dir} ${why}): its damaged entry ${entry} (train_betas.npy: file not found) could not be replaced, ` +
  `so this extraction was not cached; ask whoever owns ${dir} (uid ${statSync(dir).uid}) to remove that entry, or point ${label} at a writable folder`;

// a lab's shared cache, filled by its admin and mounted read-only for its users (or another user's folder): every
// extraction was refused, a hit included, as the cache could not be written (review s44)
describe('a cache folder this user may read but not write in (a read-only mount, another user\'s) serves its entries and caches nothing', () => {
  const why = { EROFS: 'is on a read-only file system', EACCES: 'is not writable (permission denied)' } as const;
  for (const errno of ['EROFS', 'EACCES'] as const) {
    it(`${errno}: a hit is loaded; a miss is extracted and returned uncached, saying why; the folder is left as it was`, async () => {
      const c = await cacheWithEntry();
      inject.errno.set(c.dir, errno);
      const before = snapshot(c.dir);
      const hit = await c.extract();
      expect(hit.fromCache).toBe(true);
      expect(hit.notCached).toBeUndefined();
      expect(c.sessionsRead()).toBe(0);
      const miss = await extractNsd({ root: mini.root, subject: 1, roi: 'streams:early', sessions: '1-2', cacheDir: c.dir });
      expect(miss.fromCache).toBe(false);
      expect(miss.notCached).toBe(`${c.dir} ${why[errno]}, so this extraction was not cached there`);
      expect(miss.removedFromCache).toBeUndefined();
      expect(snapshot(c.dir)).toEqual(before);
      expect(readdirSync(c.dir)).toEqual([basename(c.entry)]);
    });
  }

  // (before: "<dir> is on a read-only file system: its damaged entry … could not be replaced, and this extraction was
  // not cached", which said neither that the folder was read-only to this user nor whom to ask or what to change)
  for (const [errno, why] of [['EROFS', 'is on a read-only file system'], ['EACCES', 'is not writable (permission denied)']] as const) {
    it(`${errno}: a damaged entry there is extracted anew and returned uncached, saying the folder is read-only, whom to ask and which option to point elsewhere; the entry is left as it was`, async () => {
      const c = await cacheWithEntry();
      rmSync(join(c.entry, 'train_betas.npy'));
      inject.errno.set(c.dir, errno);
      const before = snapshot(c.dir);
      const again = await c.extract();
      expect(again.fromCache).toBe(false);
      expect(c.sessionsRead()).toBe(1);
      expect(again.notCached).toBe(readOnlyDamaged(c.dir, c.entry, why, 'cacheDir'));
      expect(snapshot(c.dir)).toEqual(before);
    });
  }

  it('so says nsd extract, naming --cache, and the extract stage of encode, naming nsd.cacheDir', async () => {
    const c = await cacheWithEntry();
    rmSync(join(c.entry, 'train_betas.npy'));
    inject.noWrite.set(c.dir, 'EROFS');
    const before = snapshot(c.dir);
    const out = join(mini.tmp, `ex-ro-damaged-${folders}`);
    const program = new Command().exitOverride();
    registerNsdCommand(program);
    const args = ['nsd', 'extract', '--root', mini.root, '--subject', '1', '--roi', 'streams:early', '--sessions', '1', '--cache', c.dir, '--out', out];
    const printed = await stderrOf(() => program.parseAsync(['node', 'brainlatent', ...args]));
    expect(printed.split('\n').filter((l) => l.includes('cache'))).toEqual([`extraction cache: ${readOnlyDamaged(c.dir, c.entry, 'is on a read-only file system', '--cache')}`]);
    expect(existsSync(join(out, 'train_betas.npy'))).toBe(true);
    const config = resolveEncodeConfig({ out: join(mini.tmp, `run-ro-damaged-${folders}`), nsd: { root: mini.root, subject: 1, roi: 'streams:early', sessions: '1', zscore: 'none', averageTrain: false, cacheDir: c.dir }, featureSets: [{ name: 'f', kind: 'file', path: join(mini.tmp, 'f.npy') }] });
    const summary = (await encodeStages(config).find((s) => s.id === 'extract')!.run({ progress: () => undefined })).summary!;
    expect(summary.cacheNotWritten).toEqual([readOnlyDamaged(c.dir, c.entry, 'is on a read-only file system', 'nsd.cacheDir')]);
    expect(snapshot(c.dir)).toEqual(before);
  });

  it('a cache folder still to be made below a read-only folder is refused before any session is read (the library too)', async () => {
    const parent = join(mini.tmp, `ro-parent-${++folders}`);
    mkdirSync(parent);
    inject.errno.set(parent, 'EROFS');
    let read = 0;
    const e = await extractNsd({ root: mini.root, subject: 1, roi: 'streams:early', sessions: '1', cacheDir: join(parent, 'cache'), onProgress: () => void read++ }).catch((x: unknown) => x);
    expect((e as Error).message).toBe(`extractNsd cacheDir: ${join(parent, 'cache')}: ${parent} is on a read-only file system; expected a folder for completed extractions`);
    expect(read).toBe(0);
  });

  it('the extract stage records it in its summary (cacheNotWritten), once for both of its extractions', async () => {
    const { extractStageCacheUpkeep, cacheUpkeepSummary, cacheUpkeepLines } = await import('../../ts/nsd/cache.js');
    const c = await cacheWithEntry();
    inject.errno.set(c.dir, 'EROFS');
    const miss = await extractNsd({ root: mini.root, subject: 1, roi: 'streams:early', sessions: '1-2', cacheDir: c.dir });
    const summary = cacheUpkeepSummary(await extractStageCacheUpkeep(null, [miss, miss, await c.extract()]));
    expect(summary).toEqual({ cacheNotWritten: [miss.notCached] });
    expect(cacheUpkeepLines([], [], summary.cacheNotWritten)).toEqual([`extraction cache: ${c.dir} is on a read-only file system, so this extraction was not cached there`]);
  });
});

describe('end to end, a mode-000 manifest read by a user the permissions apply to', () => {
  const asRoot = process.getuid?.() === 0;
  const NOBODY = 65534;
  const as = asRoot ? { uid: NOBODY, gid: NOBODY } : {};

  /**
   * A cache with one entry (its folder of `mode`, shared) that the CLI reaches as uid 65534 when root, and `brainlatent`
   * running the CLI as that user with HOME in a folder `home` it may write; skipped where the CLI cannot run so.
   */
  async function sharedCache(mode: number, home: string, skip: (note: string) => void) {
    // (the user must reach the folder: the run's own temporary folders get o+x, the mini NSD and the cache o+rx)
    const run = process.env.TMPDIR ?? tmpdir();
    for (let p = mini.tmp; dirname(p) !== p && !relative(run, p).startsWith('..'); p = dirname(p)) chmodSync(p, statSync(p).mode | 0o001);
    chmodSync(mini.tmp, 0o755);
    const c = await cacheWithEntry();
    chmodSync(c.dir, mode);
    const out = join(mini.tmp, home);
    mkdirSync(out, { mode: 0o777 });
    chmodSync(out, 0o777);
    const cli = distModule('cli/main');
    const env = { PATH: process.env.PATH, NO_COLOR: '1', HOME: out };
    const brainlatent = (...args: string[]) => runCommand(process.execPath, [cli, ...args], { env, ...as });
    const probe = await brainlatent('--version');
    if (probe.status !== 0) skip(`the CLI does not run as uid ${asRoot ? NOBODY : process.getuid?.()}: ${probe.stderr.trim().split('\n')[0]}`);
    return { c, out, cli, env, brainlatent };
  }

  it('nsd extract refuses it naming --cache; cache list shows it unreadable; cache prune keeps it', async ({ skip }) => {
    const { c, out, brainlatent } = await sharedCache(0o777, 'w', skip);
    // (the entry as its writer's umask 022 leaves it, but for the manifest)
    chmodSync(c.entry, 0o755);
    for (const f of readdirSync(c.entry)) chmodSync(join(c.entry, f), 0o644);
    const manifest = join(c.entry, 'manifest.json');
    chmodSync(manifest, 0o000);
    const before = snapshot(c.dir);

    const ex = await brainlatent('nsd', 'extract', '--root', mini.root, '--subject', '1', '--roi', 'streams:early', '--sessions', '1', '--cache', c.dir, '--out', join(out, 'ex'));
    expect(ex.stderr).toBe(`brainlatent: FileAccessError: --cache: ${denied(c.entry, 'manifest.json: permission denied').slice('extractNsd cacheDir: '.length)}\n`);
    expect(ex.status).toBe(1);
    expect(existsSync(join(out, 'ex'))).toBe(false);

    const list = await brainlatent('cache', 'list', '--cache', c.dir);
    expect(list.status).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`^${c.entry}\\n  .*\\n  subject 1; region and options unknown \\(its manifest\\.json cannot be read\\)\\n  unreadable: manifest\\.json: permission denied\\n`));
    expect(list.stdout).toMatch(/\n1 entry in .*; 0 stale, 1 unreadable\n$/);
    const json = JSON.parse((await brainlatent('cache', 'list', '--cache', c.dir, '--json')).stdout);
    expect(json.entries.map((e: { staleness: unknown }) => e.staleness)).toEqual([{ state: 'unreadable', why: 'manifest.json: permission denied' }]);

    // (before: renamed aside, which the cache folder allows, then its files could not be deleted: lost under a hidden name)
    const prune = await brainlatent('cache', 'prune', '--cache', c.dir, '--stale', '--older-than', '0.000001');
    expect(prune.stderr).toBe('');
    expect(prune.stdout).toBe(`freed 0.0 kB (0 entries) in ${c.dir}\n`);
    chmodSync(manifest, 0o644);
    expect(snapshot(c.dir)).toEqual(before);
  });

  for (const sticky of [true, false]) {
    it(`another user's damaged entry${sticky ? ' in a sticky shared cache folder (1777), though world-writable' : ' (its folder 0755)'}: prune keeps it; nsd extract leaves it, and extracts uncached, saying why in one line`, async ({ skip }) => {
      const { c, out, brainlatent } = await sharedCache(sticky ? 0o1777 : 0o777, sticky ? 'w3' : 'w7', skip);
      if (!asRoot) skip('needs an entry of another user: run as root');
      // (sticky: access(W_OK) passes on the entry and the folder, and only the sticky bit forbids the rename; else its
      // folder is its writer's, 0755, whose files this user may not delete)
      chmodSync(c.entry, sticky ? 0o777 : 0o755);
      for (const f of readdirSync(c.entry)) chmodSync(join(c.entry, f), sticky ? 0o666 : 0o644);
      const betas = readFileSync(join(c.entry, 'train_betas.npy'));
      rmSync(join(c.entry, 'train_betas.npy'));
      const before = snapshot(c.dir);
      const why = sticky ? `this user cannot delete its files (the cache folder ${c.dir} is sticky (mode 1777) and the entry is uid 0's, not this user's)` : 'this user cannot delete its files (its folder: EACCES)';
      const prune = await brainlatent('cache', 'prune', '--cache', c.dir, '--stale');
      expect(prune.stderr).toBe('');
      expect(prune.stdout).toBe(`kept ${c.entry}: ${why}; its owner can remove it\nfreed 0.0 kB (0 entries) in ${c.dir}\n`);
      const ex = await brainlatent('nsd', 'extract', '--root', mini.root, '--subject', '1', '--roi', 'streams:early', '--sessions', '1', '--cache', c.dir, '--out', join(out, 'ex'));
      // (before: "FileAccessError: --cache: … cannot be replaced, so nothing was extracted: its owner can remove it", rc 1)
      expect(ex.status).toBe(0);
      expect(ex.stderr.split('\n').filter((l) => l.includes('cache'))).toEqual([`extraction cache: ${notReplaced(c.entry, 'train_betas.npy: file not found', why, 0, '--cache')}`]);
      expect(ex.stdout).toMatch(/\nextracted in /);
      expect(readFileSync(join(out, 'ex', 'train_betas.npy'))).toEqual(betas);
      expect(snapshot(c.dir)).toEqual(before);
      expect(readdirSync(c.dir)).toEqual([basename(c.entry)]);
    });
  }

  for (const sticky of [false, true]) {
    it(`nsd extract keeps a replaced entry whose files this user cannot delete (another user's${sticky ? ', in a sticky folder' : ''}), naming it on stderr`, async ({ skip }) => {
      const { c, out, brainlatent } = await sharedCache(sticky ? 0o1777 : 0o777, sticky ? 'w5' : 'w4', skip);
      if (!asRoot) skip('needs an entry of another user: run as root');
      // (its folder is its writer's, 0755: this user may write the new entry beside it, not delete its files; in a
      // sticky folder, world-writable, only the sticky bit forbids it)
      chmodSync(c.entry, sticky ? 0o777 : 0o755);
      for (const f of readdirSync(c.entry)) chmodSync(join(c.entry, f), sticky ? 0o666 : 0o644);
      const before = snapshot(c.entry);
      rewriteSession1();
      const ex = await brainlatent('nsd', 'extract', '--root', mini.root, '--subject', '1', '--roi', 'streams:early', '--sessions', '1', '--cache', c.dir, '--out', join(out, 'ex'));
      expect(ex.status).toBe(0);
      const why = sticky
        ? `this user cannot delete its files (the cache folder ${c.dir} is sticky (mode 1777) and the entry is uid 0's, not this user's); its owner can remove it`
        : cannotDelete;
      // (before: nothing said, and the entry stayed for good)
      expect(ex.stderr.split('\n').filter((l) => l.includes('extraction cache entry'))).toEqual([`kept extraction cache entry ${c.entry}: ${why}`]);
      expect(snapshot(c.entry)).toEqual(before);
      expect(readdirSync(c.dir).filter((n) => n.startsWith('.'))).toEqual([]);
      expect(readdirSync(c.dir)).toHaveLength(2);
    });
  }

  it("another user's cache folder (0755): nsd extract loads its entry, and extracts what it lacks without caching it, saying so", async ({ skip }) => {
    const { c, out, brainlatent } = await sharedCache(0o755, 'w6', skip);
    if (!asRoot) skip('needs a folder of another user: run as root');
    chmodSync(c.entry, 0o755);
    for (const f of readdirSync(c.entry)) chmodSync(join(c.entry, f), 0o644);
    const before = snapshot(c.dir);
    const args = (sessions: string, to: string) => ['nsd', 'extract', '--root', mini.root, '--subject', '1', '--roi', 'streams:early', '--sessions', sessions, '--cache', c.dir, '--out', join(out, to)];
    // (before: "--cache …: … is not writable (permission denied); expected a folder for completed extractions")
    const hit = await brainlatent(...args('1', 'hit'));
    expect(hit.stderr).toBe('');
    expect(hit.stdout).toMatch(/\nloaded from cache in /);
    const miss = await brainlatent(...args('1-2', 'miss'));
    expect(miss.status).toBe(0);
    expect(miss.stderr.split('\n').filter((l) => l.includes('cache'))).toEqual([`extraction cache: ${c.dir} is not writable (permission denied), so this extraction was not cached there`]);
    expect(miss.stdout).toMatch(/\nextracted in /);
    expect(existsSync(join(out, 'miss', 'train_betas.npy'))).toBe(true);
    expect(snapshot(c.dir)).toEqual(before);
  });

  it("cache prune keeps a damaged entry whose files this user cannot delete (another user's), saying so, and hides nothing", async ({ skip }) => {
    const { c, cli, env, brainlatent } = await sharedCache(0o777, 'w2', skip);
    if (!asRoot) skip('needs an entry of another user: run as root');
    // (damaged: a file it lists is gone; its folder is its writer's, 0755, which this user may not delete files in)
    chmodSync(c.entry, 0o755);
    for (const f of readdirSync(c.entry)) chmodSync(join(c.entry, f), 0o644);
    rmSync(join(c.entry, 'train_betas.npy'));
    const before = snapshot(c.dir);
    const kept = `kept ${c.entry}: this user cannot delete its files (its folder: EACCES); its owner can remove it\n`;
    for (const dry of [['--dry-run'], []]) {
      const prune = await brainlatent('cache', 'prune', '--cache', c.dir, '--stale', ...dry);
      expect(prune.stderr).toBe('');
      expect(prune.stdout).toBe(`${kept}${dry.length ? 'would free' : 'freed'} 0.0 kB (0 entries) in ${c.dir}\n`);
      // (every file where it was: the entry was not renamed aside under a hidden name)
      expect(snapshot(c.dir)).toEqual(before);
    }
    // (its owner removes it)
    expect((await runCommand(process.execPath, [cli, 'cache', 'prune', '--cache', c.dir, '--stale'], { env })).stdout).toMatch(/^removed .*: damaged: train_betas\.npy: file not found\n/);
  });
});
