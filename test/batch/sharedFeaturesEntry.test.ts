/**
 * A shared-features entry is checked when read, as the NSD extraction cache checks its own: an entry.json of another
 * format or an older version, or a data.npy / ids.npy cut short or of another shape, was taken as it was (only the key
 * and the files' presence were looked at), and its bytes linked into the analyses' run folders. A damaged entry is now
 * a miss, computed again and written whole in its place, said in one line; an entry of a newer brainlatent, or one
 * this process cannot read, is refused, naming the file, and left as it is.
 */
import { chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { ensureEntry, type FeatureEntry, type FeatureRecipe } from '../../ts/batch/sharedFeatures.js';
import type { DemoWorld } from '../../ts/demo/world.js';
import { FileAccessError, FormatError } from '../../ts/errors.js';
import { readNpyHeader, writeNpy } from '../../ts/io/npy.js';
import { extractNsd } from '../../ts/nsd/extract.js';
import { resolveConfig } from '../../ts/pipeline/config.js';
import { extractOptions } from '../../ts/pipeline/stages.js';
import { batchWorld } from './world.js';

// whoever runs the test: entry.json of a cache folder named 'eio' reads with an I/O error (a failing disk); a cache
// folder named 'noenter' is one this user may not enter (its entries' stat and reads are EACCES); one named 'erofs'
// is on a read-only file system (access(W_OK) is EROFS)
vi.mock('node:fs/promises', async (original) => {
  const fs = await original<typeof import('node:fs/promises')>();
  const fail = (code: string, errno: number, syscall: string) => Promise.reject(Object.assign(new Error(`${code}: ${syscall} failed`), { code, errno, syscall }));
  const under = (path: unknown, folder: string) => typeof path === 'string' && path.split(/[/\\]/).includes(folder);
  const readFile = ((path: unknown, ...rest: unknown[]) => {
    if (typeof path === 'string' && /[/\\]eio[/\\][^/\\]+[/\\]entry\.json$/.test(path)) {
      return Promise.reject(Object.assign(new Error(`EIO: i/o error, read`), { code: 'EIO', errno: -5, syscall: 'read' }));
    }
    if (under(path, 'noenter')) return fail('EACCES', -13, 'open');
    return (fs.readFile as (...a: unknown[]) => Promise<unknown>)(path, ...rest);
  }) as typeof fs.readFile;
  const stat = ((path: unknown, ...rest: unknown[]) => (under(path, 'noenter') ? fail('EACCES', -13, 'stat') : (fs.stat as (...a: unknown[]) => Promise<unknown>)(path, ...rest))) as typeof fs.stat;
  const access = ((path: unknown, ...rest: unknown[]) => (under(path, 'erofs') ? fail('EROFS', -30, 'access') : (fs.access as (...a: unknown[]) => Promise<unknown>)(path, ...rest))) as typeof fs.access;
  return { ...fs, readFile, stat, access, default: { ...fs, readFile, stat, access } };
});

const dir = mkdtempSync(join(tmpdir(), 'bl-entry-check-'));
let recipe: FeatureRecipe;
let ids: Int32Array;
/** An entry computed afresh, in a cache folder of its own (each test damages a copy of it). */
let fresh: FeatureEntry;

beforeAll(async () => {
  const world: DemoWorld = await batchWorld(dir, [1]);
  recipe = { part: 'z', model: world.modelDir, root: world.nsdRoot, size: 64, mode: 'mean', seed: null, noise: null, batch: 4, runtime: { provider: 'cpu', ortLibrary: null, threads: 1, memory: 'default' } };
  const probe = resolveConfig({ out: join(dir, 'probe'), nsd: { root: world.nsdRoot, subject: 1 }, model: { dir: world.modelDir } });
  ids = Int32Array.from((await extractNsd({ ...extractOptions(probe, 'z'), cacheDir: undefined })).testImageIds).sort();
  fresh = await ensureEntry(join(dir, 'fresh'), recipe, ids);
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A cache folder `name` holding a copy of the fresh entry (no computed.log: a computation here writes one). */
function cacheWithCopy(name: string): { cache: string; entry: string } {
  const cache = join(dir, name);
  cpSync(fresh.dir, join(cache, fresh.key), { recursive: true });
  return { cache, entry: join(cache, fresh.key) };
}

/** A cache folder `name` whose copy of the fresh entry has its data.npy cut in half, and the damage it then reads as. */
async function cacheWithHalfData(name: string): Promise<{ cache: string; entry: string; why: string }> {
  const { cache, entry } = cacheWithCopy(name);
  const h = await readNpyHeader(fresh.data);
  truncateSync(join(entry, 'data.npy'), h.dataOffset + h.dataBytes / 2);
  const why = `data.npy: truncated .npy file: shape (${ids.length}, ${perImage()}) float32 needs ${h.dataBytes} data bytes, the file holds ${h.dataBytes / 2}`;
  return { cache, entry, why };
}

/** ensureEntry on `cache`, with the lines it said about the entry (not the computation's progress). */
async function ensure(cache: string): Promise<{ e: FeatureEntry; said: string[] }> {
  const said: string[] = [];
  const e = await ensureEntry(cache, recipe, ids, (_f, m) => m?.startsWith('shared features entry') && said.push(m));
  return { e, said };
}

/** Expects the entry of `cache` to have been computed again, whole: the fresh entry's bytes, one computation logged. */
function expectComputedAgain(cache: string, e: FeatureEntry): void {
  expect(e.computed).toBe(true);
  expect(e.shape).toEqual(fresh.shape);
  for (const f of ['data.npy', 'ids.npy']) expect(readFileSync(join(e.dir, f)).equals(readFileSync(join(fresh.dir, f))), f).toBe(true);
  expect(JSON.parse(readFileSync(join(e.dir, 'entry.json'), 'utf8'))).toMatchObject({ format: 'brainlatent-shared-features', version: 1, key: fresh.key, images: ids.length });
  expect(readFileSync(join(cache, 'computed.log'), 'utf8')).toBe(`${fresh.key} ${process.pid} ${ids.length}\n`);
  // the damaged folder went whole: no temporary or moved-aside copy left beside the entry
  expect(readdirSync(cache).sort()).toEqual(['computed.log', fresh.key]);
}

const perImage = () => fresh.shape.reduce((a, b) => a * b, 1);

describe('a shared-features entry read from the cache', () => {
  it('is taken as it is when intact: nothing computed, nothing said', async () => {
    const { cache } = cacheWithCopy('intact');
    const { e, said } = await ensure(cache);
    expect(e).toMatchObject({ key: fresh.key, computed: false, shape: fresh.shape });
    expect(said).toEqual([]);
    expect(readdirSync(cache)).toEqual([fresh.key]);
  }, 120_000);

  it('is computed again when its data.npy is cut short, the same numbers as a fresh one, saying so once', async () => {
    const { cache, entry, why } = await cacheWithHalfData('truncated');
    const { e, said } = await ensure(cache);
    expect(said).toEqual([`shared features entry ${entry} is damaged (${why}): computing it again`]);
    expectComputedAgain(cache, e);
  }, 120_000);

  it.each([
    ['of another format', { format: 'brainlatent-nsd-extraction' }, 'format "brainlatent-nsd-extraction", expected "brainlatent-shared-features"'],
    ['of version 0', { version: 0 }, 'version 0, expected 1'],
    ['without a version', { version: undefined }, 'version undefined, expected 1'],
  ])('is computed again when its entry.json is %s', async (_what, change, why) => {
    const { cache, entry } = cacheWithCopy(`record-${_what.replace(/ /g, '-')}`);
    const rec = JSON.parse(readFileSync(join(entry, 'entry.json'), 'utf8'));
    writeFileSync(join(entry, 'entry.json'), JSON.stringify({ ...rec, ...change }));
    const { e, said } = await ensure(cache);
    expect(said).toEqual([`shared features entry ${entry} is damaged (entry.json: ${why}): computing it again`]);
    expectComputedAgain(cache, e);
  }, 120_000);

  it('is computed again when its data.npy was rewritten in place with other values (entry.json records its content)', async () => {
    const { cache, entry } = cacheWithCopy('rewritten');
    const h = await readNpyHeader(fresh.data);
    const bytes = readFileSync(join(entry, 'data.npy'));
    // the same header and size, every value negated (another entry's features of the same shape, say)
    const values = new Float32Array(bytes.buffer, bytes.byteOffset + h.dataOffset, h.dataBytes / 4);
    for (let i = 0; i < values.length; i++) values[i] = -values[i] - 1;
    writeFileSync(join(entry, 'data.npy'), bytes);
    const { e, said } = await ensure(cache);
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(
      new RegExp(`^shared features entry ${entry.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is damaged \\(data\\.npy: its content differs from what the entry was written with \\(same size; modified .*, entry\\.json recorded .*\\)\\): computing it again$`),
    );
    expectComputedAgain(cache, e);
    // the entry written again records its files
    expect(Object.keys(JSON.parse(readFileSync(join(e.dir, 'entry.json'), 'utf8')).files).sort()).toEqual(['data.npy', 'ids.npy']);
  }, 120_000);

  it('written before its files were recorded (no "files" in entry.json) is taken as it is', async () => {
    const { cache, entry } = cacheWithCopy('unrecorded');
    const { files: _files, ...rec } = JSON.parse(readFileSync(join(entry, 'entry.json'), 'utf8'));
    writeFileSync(join(entry, 'entry.json'), JSON.stringify(rec));
    const { e, said } = await ensure(cache);
    expect(e).toMatchObject({ key: fresh.key, computed: false });
    expect(said).toEqual([]);
  }, 120_000);

  it('is computed again when its ids.npy holds one id too few', async () => {
    const { cache, entry } = cacheWithCopy('short-ids');
    await writeNpy(join(entry, 'ids.npy'), ids.slice(1), [ids.length - 1]);
    const { e, said } = await ensure(cache);
    expect(said).toEqual([
      `shared features entry ${entry} is damaged (ids.npy: int32 [${ids.length - 1}], expected int32 [${ids.length}] ` +
        `(entry.json: ${ids.length} images of shape [${fresh.shape.join(', ')}])): computing it again`,
    ]);
    expectComputedAgain(cache, e);
  }, 120_000);

  it('of a newer brainlatent (version 2) is refused, naming entry.json and its version, and left untouched', async () => {
    const { cache, entry } = cacheWithCopy('newer');
    const rec = JSON.parse(readFileSync(join(entry, 'entry.json'), 'utf8'));
    const text = JSON.stringify({ ...rec, version: 2, more: 'a field of version 2' });
    writeFileSync(join(entry, 'entry.json'), text);
    const err = await ensure(cache).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(FormatError);
    expect((err as FormatError).message).toBe(
      `${join(entry, 'entry.json')}: version 2, written by a newer brainlatent; this one reads version 1. The shared features entry is kept as it is: ` +
        `use that brainlatent, or another cache folder than ${cache} (a batch's is <out>/<subject>/cache/features)`,
    );
    expect(err).toMatchObject({ path: join(entry, 'entry.json'), field: 'version' });
    expect(readFileSync(join(entry, 'entry.json'), 'utf8')).toBe(text);
    expect(readFileSync(join(entry, 'data.npy')).equals(readFileSync(fresh.data))).toBe(true);
    expect(readdirSync(cache)).toEqual([fresh.key]);
  }, 120_000);

  it('that this process may not read (entry.json mode 000) is refused, naming the file, and nothing is computed', async (ctx) => {
    if (process.getuid?.() === 0) ctx.skip(); // (root reads it all the same)
    const { cache, entry } = cacheWithCopy('denied');
    chmodSync(join(entry, 'entry.json'), 0o000);
    try {
      const err = await ensure(cache).catch((x: unknown) => x);
      expect(err).toBeInstanceOf(FileAccessError);
      expect(err).toMatchObject({ errno: 'EACCES', path: join(entry, 'entry.json') });
      expect((err as Error).message).toBe(
        `${join(entry, 'entry.json')}: permission denied; the shared features entry ${entry} is kept as it is, not computed again: ` +
          `its owner can make it readable (chmod -R a+rX ${entry}), or use another cache folder`,
      );
    } finally {
      chmodSync(join(entry, 'entry.json'), 0o644);
    }
    expect(readdirSync(cache)).toEqual([fresh.key]);
  }, 120_000);

  it('whose entry.json reads with an I/O error (EIO) is refused, naming the file, and nothing is computed', async () => {
    const { cache, entry } = cacheWithCopy('eio');
    const err = await ensure(cache).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(FileAccessError);
    expect(err).toMatchObject({ errno: 'EIO' });
    expect((err as Error).message).toBe(`${join(entry, 'entry.json')}: EIO: i/o error, read; the shared features entry ${entry} is kept as it is, not computed again: try again, or use another cache folder`);
    expect(readdirSync(cache)).toEqual([fresh.key]);
  }, 120_000);

  it('in a cache folder this user may not enter is refused naming the folder, not an entry that may not be there', async () => {
    const { cache } = cacheWithCopy('noenter');
    const err = await ensure(cache).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(FileAccessError);
    expect(err).toMatchObject({ errno: 'EACCES', path: cache });
    expect((err as Error).message).toBe(
      `${cache}: this user cannot enter the shared features cache folder (EACCES), so its entry ${fresh.key} cannot be looked up: its owner can open it to this user, or use another cache folder`,
    );
    expect(readdirSync(cache)).toEqual([fresh.key]);
  }, 120_000);

  it('damaged, in a read-only cache folder, with no folder given for uncached features: refused before its computation, and left as it is', async () => {
    const { cache, entry, why } = await cacheWithHalfData('erofs');
    const err = await ensure(cache).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(FileAccessError);
    expect(err).toMatchObject({ errno: 'EROFS', path: entry });
    // (with a folder for them, the features are computed uncached: sharedFeaturesUncached.test.ts)
    expect((err as Error).message).toBe(
      `shared features entry ${entry} is damaged (${why}) and could not be replaced: the cache folder is read-only to this user (${cache} is on a read-only file system), ` +
        `so nothing was computed (no folder was given for features computed uncached); ask whoever owns ${cache} (uid ${statSync(cache).uid}) to remove it, ` +
        `or point the batch manifest's out at a writable folder`,
    );
    // nothing computed (no computed.log), no lock tried, the entry as it was
    expect(readdirSync(cache)).toEqual([fresh.key]);
  }, 120_000);
});
