/**
 * A damaged shared-features entry that this user cannot replace — its folder one this user may not delete from
 * (another user's), its move aside refused (rename: EPERM), or the cache folder read-only (a read-only mount) — stopped
 * every job that needed it ("… cannot be replaced, so nothing was computed: use another cache folder"; in a read-only
 * folder the entry's lock could not even be made), though the extraction cache in the same state extracts uncached
 * (commit 3731568). Now the entry is left as it is, and an analysis's features job computes its own features for itself,
 * uncached, into its run folder, saying why in one warning line (the entry, why it stays, whom to ask); the shared job,
 * whose computation nobody could read, computes nothing and says so.
 *
 * Permission errors are injected at the fs layer (root may write anywhere); the entry's bytes, the computations made and
 * the cache folder's files are real.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';

const inject = vi.hoisted(() => ({
  /** access() asking to write (W_OK) into one of these paths fails with its errno. */
  noWrite: new Map<string, string>(),
  /** rename() of one of these paths (moving it aside) fails with its errno, though access() allowed it. */
  rename: new Map<string, string>(),
}));

vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs/promises')>();
  const access = (async (path: string, mode?: number) => {
    const code = ((mode ?? 0) & fs.constants.W_OK) !== 0 ? inject.noWrite.get(String(path)) : undefined;
    if (code) throw Object.assign(new Error(`${code}: injected, access '${String(path)}'`), { code, syscall: 'access', path: String(path) });
    return fs.access(path, mode);
  }) as typeof fs.access;
  const rename = (async (from: string, to: string) => {
    const code = inject.rename.get(String(from));
    if (code) throw Object.assign(new Error(`${code}: injected, rename '${from}' -> '${to}'`), { code, syscall: 'rename', path: from, dest: to });
    return fs.rename(from, to);
  }) as typeof fs.rename;
  return { ...fs, access, rename, default: { ...fs, access, rename } };
});

const { ensureEntry, fillEntry } = await import('../../ts/batch/sharedFeatures.js');
type FeatureEntry = Awaited<ReturnType<typeof ensureEntry>>;
type FeatureRecipe = Parameters<typeof ensureEntry>[1];
const { FileAccessError } = await import('../../ts/errors.js');
const { readNpyHeader } = await import('../../ts/io/npy.js');
const { extractNsd } = await import('../../ts/nsd/extract.js');
const { resolveConfig } = await import('../../ts/pipeline/config.js');
const { extractOptions } = await import('../../ts/pipeline/stages.js');
const { batchWorld, sharedManifest } = await import('./world.js');
const { planBatch, planNodes } = await import('../../ts/batch/graph.js');
const { resolveManifest } = await import('../../ts/batch/manifest.js');
const { runNode, UNCACHED_FEATURES } = await import('../../ts/batch/runNode.js');
type DemoWorld = Awaited<ReturnType<typeof batchWorld>>;

const dir = mkdtempSync(join(tmpdir(), 'bl-entry-uncached-'));
let recipe: FeatureRecipe;
let ids: Int32Array;
/** An entry computed afresh in a cache folder of its own (each test damages a copy of it). */
let fresh: FeatureEntry;
let world: DemoWorld;

beforeAll(async () => {
  world = await batchWorld(dir, [1]);
  recipe = { part: 'z', model: world.modelDir, root: world.nsdRoot, size: 64, mode: 'mean', seed: null, noise: null, batch: 4, runtime: { provider: 'cpu', ortLibrary: null, threads: 1, memory: 'default' } };
  const probe = resolveConfig({ out: join(dir, 'probe'), nsd: { root: world.nsdRoot, subject: 1 }, model: { dir: world.modelDir } });
  ids = Int32Array.from((await extractNsd({ ...extractOptions(probe, 'z'), cacheDir: undefined })).testImageIds).sort();
  fresh = await ensureEntry(join(dir, 'fresh'), recipe, ids);
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  inject.noWrite.clear();
  inject.rename.clear();
});

let n = 0;

/** A cache folder holding a copy of the fresh entry with its data.npy cut in half, the damage it reads as, and a run folder of the caller's. */
async function damagedCache() {
  const cache = join(dir, `cache-${++n}`);
  const entry = join(cache, fresh.key);
  cpSync(fresh.dir, entry, { recursive: true });
  const h = await readNpyHeader(fresh.data);
  truncateSync(join(entry, 'data.npy'), h.dataOffset + h.dataBytes / 2);
  const damage = `data.npy: truncated .npy file: shape (${ids.length}, ${fresh.shape.reduce((a, b) => a * b, 1)}) float32 needs ${h.dataBytes} data bytes, the file holds ${h.dataBytes / 2}`;
  return { cache, entry, damage, run: join(dir, `run-${n}`, '.uncached') };
}

/** Every file under `d` with its bytes: what must be left as it was. */
function snapshot(d: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(d, { recursive: true, withFileTypes: true })) if (e.isFile()) out[join(e.parentPath, e.name)] = readFileSync(join(e.parentPath, e.name)).toString('base64');
  return out;
}

/** ensureEntry or fillEntry, counting the passes of the VAE over the images (its last progress message per pass). */
async function counted<T>(call: (progress: (f: number, m?: string) => void) => Promise<T>): Promise<{ value: T; passes: number; said: string[] }> {
  let passes = 0;
  const said: string[] = [];
  const value = await call((_f, m) => {
    if (m === `z: ${ids.length}/${ids.length} images`) passes++;
    else if (m && !m.startsWith('z: ')) said.push(m);
  });
  return { value, passes, said };
}

/** The uncached entry is the caller's: the fresh entry's bytes, under `<run>/<key>/`, with the warning. */
function expectOwnCopy(e: FeatureEntry, run: string, notCached: string): void {
  expect(e).toMatchObject({ key: fresh.key, computed: true, dir: join(run, fresh.key), shape: fresh.shape, notCached });
  for (const f of ['data.npy', 'ids.npy']) expect(readFileSync(join(e.dir, f)).equals(readFileSync(join(fresh.dir, f))), f).toBe(true);
  expect(JSON.parse(readFileSync(join(e.dir, 'entry.json'), 'utf8'))).toMatchObject({ format: 'brainlatent-shared-features', key: fresh.key, images: ids.length, ranWith: fresh.ranWith });
}

describe('a damaged shared-features entry this user cannot replace', () => {
  it("its folder one this user may not delete from (another user's): left as it is; the job computes its own, uncached, in one line", async () => {
    const c = await damagedCache();
    inject.noWrite.set(c.entry, 'EACCES');
    const before = snapshot(c.cache);
    const { value: e, passes, said } = await counted((p) => ensureEntry(c.cache, recipe, ids, p, undefined, c.run));
    // (before: FileAccessError "… cannot be replaced (this user cannot delete its files (its folder: EACCES); its owner can remove it), so nothing was computed")
    expectOwnCopy(
      e,
      c.run,
      `shared features entry ${c.entry} is damaged (${c.damage}) and could not be replaced: this user cannot delete its files (its folder: EACCES), ` +
        `so this job computed its features without caching them; ask its owner (uid ${statSync(c.entry).uid}) or whoever owns ${c.cache} to remove it`,
    );
    expect(passes).toBe(1);
    expect(said).toEqual([]);
    // the cache as it was: the damaged entry, no lock, no computed.log, no temporary
    expect(snapshot(c.cache)).toEqual(before);
    expect(readdirSync(c.cache)).toEqual([fresh.key]);
    // once it can be replaced, it is, and cached
    inject.noWrite.clear();
    const replaced = await ensureEntry(c.cache, recipe, ids, undefined, undefined, c.run);
    expect(replaced).toMatchObject({ dir: c.entry, computed: true });
    expect(replaced.notCached).toBeUndefined();
    expect(readFileSync(join(c.entry, 'data.npy')).equals(readFileSync(fresh.data))).toBe(true);
  }, 120_000);

  it('its move aside refused (rename: EPERM) where the checks allowed it: the computation is not thrown away but used uncached', async () => {
    const c = await damagedCache();
    inject.rename.set(c.entry, 'EPERM');
    const before = snapshot(c.cache);
    const { value: e, passes } = await counted((p) => ensureEntry(c.cache, recipe, ids, p, undefined, c.run));
    expectOwnCopy(
      e,
      c.run,
      `shared features entry ${c.entry} is damaged (${c.damage}) and could not be replaced: this user may not replace it (rename: EPERM), ` +
        `so this job computed its features without caching them; ask its owner (uid ${statSync(c.entry).uid}) or whoever owns ${c.cache} to remove it`,
    );
    // (one pass: the one whose publication was refused, not a second for the uncached copy)
    expect(passes).toBe(1);
    expect(snapshot(c.cache)).toEqual(before);
    expect(readdirSync(c.cache)).toEqual([fresh.key]);
  }, 120_000);

  it('any other failure of that write (ENOSPC) is thrown, as before', async () => {
    const c = await damagedCache();
    inject.rename.set(c.entry, 'ENOSPC');
    const e = await ensureEntry(c.cache, recipe, ids, undefined, undefined, c.run).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'ENOSPC', syscall: 'rename', path: c.entry });
    expect(existsSync(c.run)).toBe(false);
  }, 120_000);

  for (const [errno, why] of [['EROFS', 'is on a read-only file system'], ['EACCES', 'is not writable (permission denied)']] as const) {
    it(`in a cache folder this user may not write in (${errno}): no lock is tried, the job computes its own, uncached, saying the folder is read-only and whom to ask`, async () => {
      const c = await damagedCache();
      inject.noWrite.set(c.cache, errno);
      const before = snapshot(c.cache);
      // (before: EROFS/EACCES creating the entry's lock file in it, or the refusal above)
      const { value: e, passes } = await counted((p) => ensureEntry(c.cache, recipe, ids, p, undefined, c.run));
      expectOwnCopy(
        e,
        c.run,
        `shared features entry ${c.entry} is damaged (${c.damage}) and could not be replaced: the cache folder is read-only to this user (${c.cache} ${why}), ` +
          `so this job computed its features without caching them; ask whoever owns ${c.cache} (uid ${statSync(c.cache).uid}) to remove it, or point the batch manifest's out at a writable folder`,
      );
      expect(passes).toBe(1);
      expect(snapshot(c.cache)).toEqual(before);
      expect(readdirSync(c.cache)).toEqual([fresh.key]);
    }, 120_000);
  }

  it('an entry missing from a read-only cache folder: computed uncached, asking for the folder to be made writable', async () => {
    const cache = join(dir, `cache-${++n}`);
    mkdirSync(cache);
    const run = join(dir, `run-${n}`);
    inject.noWrite.set(cache, 'EROFS');
    const { value: e } = await counted((p) => ensureEntry(cache, recipe, ids, p, undefined, run));
    expectOwnCopy(
      e,
      run,
      `shared features entry ${join(cache, fresh.key)} could not be written: the cache folder is read-only to this user (${cache} is on a read-only file system), ` +
        `so this job computed its features without caching them; ask whoever owns ${cache} (uid ${statSync(cache).uid}) to make it writable, or point the batch manifest's out at a writable folder`,
    );
    expect(readdirSync(cache)).toEqual([]);
  }, 120_000);

  it('without a folder for uncached features (a library caller), it is refused before the computation, naming the entry and why', async () => {
    const c = await damagedCache();
    inject.noWrite.set(c.entry, 'EPERM');
    const { value: err, passes } = await counted((p) => ensureEntry(c.cache, recipe, ids, p).catch((x: unknown) => x));
    expect(err).toBeInstanceOf(FileAccessError);
    expect(err).toMatchObject({ errno: 'EPERM', path: c.entry });
    expect((err as Error).message).toBe(
      `shared features entry ${c.entry} is damaged (${c.damage}) and could not be replaced: this user cannot delete its files (its folder: EPERM), ` +
        `so nothing was computed (no folder was given for features computed uncached); ask its owner (uid ${statSync(c.entry).uid}) or whoever owns ${c.cache} to remove it`,
    );
    expect(passes).toBe(0);
    expect(readdirSync(c.cache)).toEqual([fresh.key]);
  }, 120_000);

  it("the shared job (fillEntry) computes nothing nobody could read, and says so: each analysis's features job computes its own", async () => {
    const c = await damagedCache();
    inject.noWrite.set(c.entry, 'EACCES');
    const before = snapshot(c.cache);
    const { value: got, passes } = await counted((p) => fillEntry(c.cache, recipe, ids, p));
    expect(got).toEqual({
      key: fresh.key,
      notCached:
        `shared features entry ${c.entry} is damaged (${c.damage}) and could not be replaced: this user cannot delete its files (its folder: EACCES), ` +
        `so it was not computed here: each analysis that needs it computes its own, uncached; ask its owner (uid ${statSync(c.entry).uid}) or whoever owns ${c.cache} to remove it`,
    });
    expect(passes).toBe(0);
    expect(snapshot(c.cache)).toEqual(before);
    // its move aside refused at the end: the computation made is dropped, and said to be
    inject.noWrite.clear();
    inject.rename.set(c.entry, 'EPERM');
    const late = await counted((p) => fillEntry(c.cache, recipe, ids, p));
    expect(late.passes).toBe(1);
    expect((late.value as { notCached: string }).notCached).toContain('this user may not replace it (rename: EPERM), so what this job computed was not kept: each analysis that needs it computes its own, uncached;');
    expect(readdirSync(c.cache)).toEqual([basename(c.entry)]);
    // an intact entry is filled and read as before
    inject.rename.clear();
    const ok = await fillEntry(c.cache, recipe, ids);
    expect(ok).toMatchObject({ key: fresh.key, dir: c.entry, computed: true });
  }, 120_000);
});

describe("a batch's jobs over such an entry", () => {
  it("the shared job ends with a warning, computing nothing; the analysis's features job computes its own into its run folder, links it, and says why", async () => {
    const out = join(dir, 'batch');
    const nodes = planNodes(await planBatch(resolveManifest(sharedManifest(world, 'uncached', out, [1]))));
    const byId = (id: string) => nodes.find((x) => x.id === id)!;
    const ctl = { progress: () => undefined, depsRan: true };
    // the shared z entry, computed by its job, then damaged; its folder one this user may not delete from
    const zJob = nodes.find((x) => x.work.kind === 'sharedFeatures' && x.stage === 'features.z')!;
    const cJob = nodes.find((x) => x.work.kind === 'sharedFeatures' && x.stage === 'features.c')!;
    expect(await runNode(zJob, ctl)).toMatchObject({ status: 'done', summary: { computed: 1 } });
    expect(await runNode(cJob, ctl)).toMatchObject({ status: 'done', summary: { computed: 1 } });
    const cache = join(out, 'subj01', 'cache', 'features');
    const [zKey] = readdirSync(cache).filter((f) => f.startsWith('z-'));
    const entry = join(cache, zKey);
    const intact = readFileSync(join(entry, 'data.npy'));
    const h = await readNpyHeader(join(entry, 'data.npy'));
    truncateSync(join(entry, 'data.npy'), h.dataOffset + h.dataBytes / 2);
    const damage = `data.npy: truncated .npy file: shape (${h.shape.join(', ')}) float32 needs ${h.dataBytes} data bytes, the file holds ${h.dataBytes / 2}`;
    inject.noWrite.set(entry, 'EACCES');
    const before = snapshot(cache);
    const head = `shared features entry ${entry} is damaged (${damage}) and could not be replaced: this user cannot delete its files (its folder: EACCES)`;
    const remedy = `ask its owner (uid ${statSync(entry).uid}) or whoever owns ${cache} to remove it`;

    // (before: each of these jobs failed with "… cannot be replaced, …, so nothing was computed: use another cache folder")
    const again = await runNode(zJob, ctl);
    expect(again).toMatchObject({ status: 'skipped', summary: { computed: 0, warnings: [`${head}, so it was not computed here: each analysis that needs it computes its own, uncached; ${remedy}`] } });

    const recon = join(out, 'subj01', 'recon');
    expect((await runNode(byId('uncached.subj01.recon.extract'), ctl)).status).toBe('done');
    // what an earlier attempt killed before its removal left: a whole copy of other bytes, and a half-written one
    const left = join(recon, UNCACHED_FEATURES, zKey);
    cpSync(entry, left, { recursive: true });
    writeFileSync(join(left, 'data.npy'), Buffer.from(intact).fill(0, h.dataOffset));
    mkdirSync(join(recon, UNCACHED_FEATURES, `.${zKey}.tmp-abcdef-4242-0badf00d`));
    const link = await runNode(byId('uncached.subj01.recon.features'), ctl);
    expect(link).toMatchObject({ status: 'done', summary: { computedHere: [zKey], warnings: [`${head}, so this job computed its features without caching them; ${remedy}`] } });
    // the features the entry would have given, bit for bit; the uncached copy gone once linked; the cache as it was
    expect(readFileSync(join(recon, 'features', 'z.npy')).equals(intact)).toBe(true);
    expect(existsSync(join(recon, UNCACHED_FEATURES))).toBe(false);
    expect(snapshot(cache)).toEqual(before);
    const marker = JSON.parse(readFileSync(join(recon, 'stages', 'features.json'), 'utf8'));
    expect(marker.summary).toMatchObject({ sharedFeatures: { z: zKey }, computedHere: [zKey] });
    expect(marker.ranWithParts.z).toMatchObject({ hostname: expect.any(String), onnxruntime: expect.any(String) });
  }, 300_000);
});
