/**
 * Old NSD extraction cache entries: every change of a source file or of the options wrote a new entry beside the old
 * one, kept for good (GBs each for real NSD). Now extractNsd removes, after writing an entry, the entries made from
 * an earlier version of a file it has just read (never loadable again), in any cache folder; encode's and
 * reconstruct's extract stage also empties a run folder's own cache (<out>/cache) of entries its config no longer
 * uses; a cache folder named in the config keeps them. Every removal is named, with its size.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Command } from 'commander';
import { printCacheRemovals } from '../../ts/cli/commands/reconstruct.js';
import { registerNsdCommand } from '../../ts/cli/commands/nsd.js';
import { resolveEncodeConfig } from '../../ts/config/encode.js';
import { HOST_TAG } from '../../ts/io/atomicWrite.js';
import { encodeStages } from '../../ts/encoding/encode.js';
import { extractStageCacheUpkeep } from '../../ts/nsd/cache.js';
import { extractNsd } from '../../ts/nsd/extract.js';
import { betasPath, roiPath } from '../../ts/nsd/paths.js';
import type { StageReport } from '../../ts/pipeline/stageRunner.js';
import { stderrOf } from '../helpers/cli.js';
import { makeMiniNsd } from './mini.js';

let mini: Awaited<ReturnType<typeof makeMiniNsd>>;
let root: string;
beforeAll(async () => {
  mini = await makeMiniNsd();
  root = mini.root;
});
afterAll(() => mini?.cleanup());

const entries = (dir: string) => readdirSync(dir).sort();
const touch = (p: string, secondsAhead: number) => utimesSync(p, new Date(), new Date(Date.now() + secondsAhead * 1000));

describe('extractNsd: entries replaced by a new one go', () => {
  it('after writing an entry, those made from an earlier version of a file it read are removed and named; the others stay', async () => {
    const cacheDir = join(mini.tmp, 'cache-replaced');
    const early = (more: object = {}) => extractNsd({ root, subject: 1, roi: 'streams:early', cacheDir, ...more });
    const a = await early();
    const b = await early({ zscore: 'train' });
    const c = await early({ sessions: '1' });
    // an entry of a mask file that is gone since (a root not mounted looks the same): its sources are missing, not changed
    const mask = join(mini.tmp, 'early-mask.nii.gz');
    copyFileSync(roiPath(root, 1, 'streams'), mask);
    const d = await extractNsd({ root, subject: 1, roi: mask, sessions: '1', cacheDir });
    rmSync(mask);
    mkdirSync(join(cacheDir, 'notes'));
    mkdirSync(join(cacheDir, 'subj01_early_0123456789abcdef0123'));
    const before = entries(cacheDir);
    expect(before).toHaveLength(6);
    expect(a.removedFromCache).toEqual([]);

    // session 2's betas rewritten (re-downloaded): a and b read the earlier file, c and d did not read it
    const s2 = betasPath(root, 1, 2, 'hdf5');
    touch(s2, 5);
    const again = await early();
    expect(again.fromCache).toBe(false);
    const gone = [a, b].map((e) => join(cacheDir, `subj01_streams-early_${e.manifest.key}`)).sort();
    expect(again.removedFromCache!.map((r) => r.path).sort()).toEqual(gone);
    for (const r of again.removedFromCache!) {
      expect(r.why).toBe(`made from an earlier ${s2}, which has changed since (it can never be loaded again)`);
      // the five arrays and the manifest
      expect(r.bytes).toBeGreaterThan(a.train.data.byteLength);
    }
    const kept = [c, d].map((e) => before.find((n) => n.endsWith(`_${e.manifest.key}`))!);
    expect(entries(cacheDir)).toEqual(['notes', 'subj01_early_0123456789abcdef0123', `subj01_streams-early_${again.manifest.key}`, ...kept].sort());
    // c still loads (nothing it read changed), and no temporary is left
    expect((await early({ sessions: '1' })).fromCache).toBe(true);
    expect(readdirSync(cacheDir).filter((n) => n.startsWith('.'))).toEqual([]);
    // a load from the cache removes nothing
    expect((await early()).removedFromCache).toBeUndefined();
  });

  it('an entry a live process is loading (its hold file, as cache prune honours) is left for a later upkeep, and said to be', async () => {
    const cacheDir = join(mini.tmp, 'cache-held');
    const early = (more: object = {}) => extractNsd({ root, subject: 1, roi: 'streams:early', cacheDir, ...more });
    const a = await early({ sessions: '1-2' });
    const name = `subj01_streams-early_${a.manifest.key}`;
    // held by this (live) process; a dead process's hold would be ignored
    const hold = join(cacheDir, `.${name}.hold-${HOST_TAG}-${process.pid}-0badf00d`);
    writeFileSync(hold, '');
    const s2 = betasPath(root, 1, 2, 'hdf5');
    touch(s2, 10);
    const again = await early({ sessions: '1-2', zscore: 'train' });
    expect(again.removedFromCache).toEqual([]);
    // (cache prune's words for an entry it keeps: 'kept <entry>: being loaded by pid N')
    expect(again.keptInCache).toEqual([{ path: join(cacheDir, name), why: `being loaded by pid ${process.pid}` }]);
    expect(existsSync(join(cacheDir, name))).toBe(true);
    rmSync(hold);
    const third = await early({ sessions: '1-2', zscore: 'session' });
    expect(third.removedFromCache!.map((r) => r.path)).toEqual([join(cacheDir, name)]);
    expect(third.keptInCache).toEqual([]);
    expect(existsSync(join(cacheDir, name))).toBe(false);
  });

  it("the extract stage's upkeep names each entry it had to keep once, though each extraction's upkeep walks the whole folder", async () => {
    // (reconstruct's stage extracts z and c: each upkeep saw both held entries, and the stage said each twice)
    const cacheDir = join(mini.tmp, 'cache-held-twice');
    const extract = (roi: string, more: object = {}) => extractNsd({ root, subject: 1, roi, cacheDir, sessions: '1-2', ...more });
    const first = [await extract('streams:early'), await extract('streams:ventral')];
    const names = first.map((x, i) => `subj01_streams-${i === 0 ? 'early' : 'ventral'}_${x.manifest.key}`);
    const holds = names.map((n) => join(cacheDir, `.${n}.hold-${HOST_TAG}-${process.pid}-0badf00d`));
    for (const h of holds) writeFileSync(h, '');
    touch(betasPath(root, 1, 2, 'hdf5'), 20);
    const again = [await extract('streams:early', { zscore: 'train' }), await extract('streams:ventral', { zscore: 'train' })];
    for (const x of again) expect(x.keptInCache!.map((k) => k.path).sort()).toEqual(names.map((n) => join(cacheDir, n)).sort());
    const upkeep = await extractStageCacheUpkeep(null, again);
    expect(upkeep.kept).toEqual(names.map((n) => ({ path: join(cacheDir, n), why: `being loaded by pid ${process.pid}` })));
    // one a later extraction's upkeep removed is not said to be kept
    const gone = { path: join(cacheDir, names[0]), bytes: 1, why: 'replaced' };
    const later = { ...again[1], keptInCache: [], removedFromCache: [gone] };
    expect((await extractStageCacheUpkeep(null, [again[0], later])).kept.map((k) => k.path)).toEqual([join(cacheDir, names[1])]);
    for (const h of holds) rmSync(h);
  });

  it('nsd extract names each removed entry and its size on stderr', async () => {
    const cacheDir = join(mini.tmp, 'cache-cli');
    const args = ['nsd', 'extract', '--root', root, '--subject', '1', '--roi', 'streams:early', '--cache', cacheDir];
    const run = (out: string) => {
      const program = new Command().exitOverride();
      registerNsdCommand(program);
      return program.parseAsync(['node', 'brainlatent', ...args, '--out', join(mini.tmp, out)]);
    };
    expect(await stderrOf(() => run('x1'))).not.toMatch(/removed/);
    const [old] = entries(cacheDir);
    const s1 = betasPath(root, 1, 1, 'hdf5');
    touch(s1, 10);
    const printed = await stderrOf(() => run('x2'));
    expect(printed).toMatch(new RegExp(`removed extraction cache entry ${join(cacheDir, old)} \\(\\d+\\.\\d kB\\): made from an earlier ${s1}, which has changed since`));
    expect(entries(cacheDir)).toHaveLength(1);
    expect(entries(cacheDir)).not.toContain(old);
  });
});

describe("the extract stage: a run folder's own cache keeps what its config reads", () => {
  const config = (out: string, nsd: object) =>
    resolveEncodeConfig({ out, nsd: { root, subject: 1, ...nsd }, featureSets: [{ name: 'f', kind: 'file', path: join(mini.tmp, 'f.npy') }] });
  const extract = async (c: ReturnType<typeof config>) => (await encodeStages(c).find((s) => s.id === 'extract')!.run({ progress: () => undefined })).summary!;

  it("another config's entry in <out>/cache goes when the stage runs for a new config; a named cacheDir keeps it", async () => {
    const out = join(mini.tmp, 'run-own');
    const first = await extract(config(out, { zscore: 'session' }));
    expect(first.cacheRemoved).toBeUndefined();
    const [old] = entries(join(out, 'cache'));
    const second = await extract(config(out, { zscore: 'none' }));
    expect(second.cacheRemoved).toEqual([
      { path: join(out, 'cache', old), bytes: expect.any(Number), why: "the run's config no longer uses it (a run folder's own cache keeps what its config reads)" },
    ]);
    expect(entries(join(out, 'cache'))).toHaveLength(1);
    expect(entries(join(out, 'cache'))).not.toContain(old);
    // the same config again: a load from the cache, nothing removed
    expect((await extract(config(out, { zscore: 'none' }))).cacheRemoved).toBeUndefined();

    const shared = join(mini.tmp, 'shared-cache');
    await extract(config(join(mini.tmp, 'run-a'), { zscore: 'session', cacheDir: shared }));
    const other = await extract(config(join(mini.tmp, 'run-a'), { zscore: 'none', cacheDir: shared }));
    expect(other.cacheRemoved).toBeUndefined();
    expect(entries(shared)).toHaveLength(2);
    expect(existsSync(join(mini.tmp, 'run-a', 'cache'))).toBe(false);
  });

  it('encode and reconstruct print what their extract stage removed, and what it had to keep, once, when it ran', async () => {
    const removed = [{ path: '/runs/a/cache/subj01_nsdgeneral_0123456789abcdef0123', bytes: 1.7e9, why: "the run's config no longer uses it" }];
    const kept = [{ path: '/runs/a/cache/subj01_nsdgeneral_00000000000000000000', why: 'this user cannot delete its files (its folder: EACCES); its owner can remove it' }];
    const stages: StageReport[] = [
      { stage: 'extract', status: 'ran', seconds: 1, summary: { cacheRemoved: removed, cacheKept: kept } },
      { stage: 'extract', status: 'skipped', seconds: 0, summary: { cacheRemoved: removed, cacheKept: kept } },
      { stage: 'extract.c', status: 'ran', seconds: 1, summary: { cacheKept: kept } },
      { stage: 'fit.z', status: 'ran', seconds: 1, summary: {} },
    ];
    const printed = await stderrOf(async () => printCacheRemovals(stages));
    expect(printed).toBe(
      "extract: removed extraction cache entry /runs/a/cache/subj01_nsdgeneral_0123456789abcdef0123 (1.7 GB): the run's config no longer uses it\n" +
        'extract: kept extraction cache entry /runs/a/cache/subj01_nsdgeneral_00000000000000000000: this user cannot delete its files (its folder: EACCES); its owner can remove it\n' +
        'extract.c: kept extraction cache entry /runs/a/cache/subj01_nsdgeneral_00000000000000000000: this user cannot delete its files (its folder: EACCES); its owner can remove it\n',
    );
  });
});
