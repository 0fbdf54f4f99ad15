/**
 * A cache prune and a load of the same entry, interleaved step by step (no timing: the prune runs the load at a
 * chosen step of its removal). Before, a prune looked for holds, found none, and renamed the entry aside a moment
 * later; a load that took its hold and found the manifest in that moment read a folder being deleted (and a
 * prune removed an entry being loaded). Now a removal marks the entry before it looks for holds and a load looks for
 * marks after taking its hold: whichever looks second sees the other, so the load reads nothing of an entry being
 * removed, and an entry a load has begun to read stays.
 */
import { existsSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { HOST_TAG } from '../../ts/io/atomicWrite.js';
import { holdForLoad, STALE_MARK_MS, type RemovalStep } from '../../ts/nsd/cache.js';
import { pruneCacheFolder } from '../../ts/nsd/cacheFolder.js';
import { extractNsd } from '../../ts/nsd/extract.js';
import type { NsdExtraction } from '../../ts/nsd/output.js';
import { makeMiniNsd } from './mini.js';

let mini: Awaited<ReturnType<typeof makeMiniNsd>>;
beforeAll(async () => {
  mini = await makeMiniNsd();
});
afterAll(() => mini?.cleanup());

const DAY = 86_400_000;
let folders = 0;

/** A cache folder with one entry, not used for 40 days (so `--older-than 30` picks it); its path and first extraction. */
async function agedEntry(): Promise<{ dir: string; entry: string; first: NsdExtraction; extract: () => Promise<NsdExtraction> }> {
  const dir = join(mini.tmp, `cache-${++folders}`);
  const extract = () => extractNsd({ root: mini.root, subject: 1, roi: 'streams:early', sessions: '1', cacheDir: dir });
  const first = await extract();
  const entry = join(dir, readdirSync(dir).find((n) => n.endsWith(`_${first.manifest.key}`))!);
  utimesSync(entry, new Date(), new Date(Date.now() - 40 * DAY));
  return { dir, entry, first, extract };
}

/** The hold and removal-mark files beside the entries. */
const announcements = (dir: string) => readdirSync(dir).filter((n) => /\.(hold|prune)-/.test(n));

describe('cache prune against a load of the same entry', () => {
  for (const step of ['checked', 'marked'] as RemovalStep[]) {
    it(`a load that starts once the prune has ${step === 'checked' ? 'looked for holds (and found none)' : 'marked the entry, before it looks for holds'} reads nothing of it; the prune removes it`, async () => {
      const { dir, entry, first, extract } = await agedEntry();
      let during: NsdExtraction | null = null;
      const r = await pruneCacheFolder(dir, {
        olderThanDays: 30,
        between: async (s) => {
          if (s === step) during = await extract();
        },
      });
      // (before: at 'checked' the load found no mark, read the entry, and the prune then deleted it under the load)
      expect(during!.fromCache).toBe(false);
      expect(during!.train.data).toEqual(first.train.data);
      expect(r.held).toEqual([]);
      expect(r.removed.map((x) => x.path)).toEqual([entry]);
      expect(announcements(dir)).toEqual([]);
    });
  }

  it('an entry a load holds (taken before the prune marked it) stays, whole, and the load reads it', async () => {
    const { dir, entry, extract } = await agedEntry();
    const release = await holdForLoad(entry);
    expect(release).not.toBeNull();
    const r = await pruneCacheFolder(dir, { olderThanDays: 30 });
    expect(r.removed).toEqual([]);
    expect(r.held).toEqual([{ path: entry, holder: `pid ${process.pid}` }]);
    expect(existsSync(join(entry, 'manifest.json'))).toBe(true);
    await release!();
    expect(announcements(dir)).toEqual([]);
    expect((await extract()).fromCache).toBe(true);
  });

  it("a mark of a killed remover is ignored and removed: this host's at once, another host's once stale; another host's fresh one is honoured", async () => {
    const { dir, entry, extract } = await agedEntry();
    const mark = (tag: string, pid: number) => join(dir, `.${basename(entry)}.prune-${tag}-${pid}-0badf00d`);
    const otherHost = HOST_TAG === '000000' ? '111111' : '000000';

    writeFileSync(mark(HOST_TAG, 999_999_999), '');
    expect((await extract()).fromCache).toBe(true);
    expect(announcements(dir)).toEqual([]);

    // a remover on another host, now: the load reads nothing and leaves the mark
    writeFileSync(mark(otherHost, 4242), '');
    expect(await holdForLoad(entry)).toBeNull();
    expect((await extract()).fromCache).toBe(false);
    expect(announcements(dir)).toEqual([basename(mark(otherHost, 4242))]);

    // the same mark older than a remover ever keeps one
    const old = new Date(Date.now() - STALE_MARK_MS - 60_000);
    utimesSync(mark(otherHost, 4242), old, old);
    expect((await extract()).fromCache).toBe(true);
    expect(announcements(dir)).toEqual([]);
  });

  it('a dry run marks nothing', async () => {
    const { dir, entry } = await agedEntry();
    const steps: RemovalStep[] = [];
    const r = await pruneCacheFolder(dir, { olderThanDays: 30, dryRun: true, between: async (s) => void steps.push(s) });
    expect(r.removed.map((x) => x.path)).toEqual([entry]);
    expect(steps).toEqual([]);
    expect(existsSync(entry)).toBe(true);
    expect(announcements(dir)).toEqual([]);
  });
});
