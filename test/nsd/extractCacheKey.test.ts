/**
 * The extraction cache's key holds the label values a named region stands for: the region 'streams:early' is the
 * voxels of its volume with the values its atlas's .ctab gives 'early', and a .ctab renumbered picks others from the
 * same volume. The key had the volume's identity only, so the cached extraction of the old voxels came back (and a
 * reconstruct or encode run skipped every later stage, even with --force, which keeps the cache). Review s34-f.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { extractNsd } from '../../ts/nsd/extract.js';
import { ctabPath } from '../../ts/nsd/paths.js';
import { makeMiniNsd } from './mini.js';

let mini: Awaited<ReturnType<typeof makeMiniNsd>>;
beforeAll(async () => {
  mini = await makeMiniNsd();
});
afterAll(() => mini?.cleanup());

describe('the extraction cache', () => {
  it("is keyed by the region's label values: a renumbered .ctab extracts its new voxels", async () => {
    const root = mini.root;
    const cacheDir = join(mini.tmp, 'cache');
    const opts = { root, subject: 1, roi: 'streams:early', sessions: '1', cacheDir };
    const before = await extractNsd(opts);
    const ventral = await extractNsd({ ...opts, roi: 'streams:ventral' });
    expect((await extractNsd(opts)).fromCache).toBe(true);
    // the atlas's names swapped: 'early' is now the value the built-in table gives 'ventral'
    mkdirSync(dirname(ctabPath(root, 'streams')), { recursive: true });
    writeFileSync(ctabPath(root, 'streams'), '0 Unknown 0 0 0 0\n5 early 255 0 0 0\n1 ventral 0 255 0 0\n');
    const after = await extractNsd(opts);
    expect(after.fromCache).toBeFalsy();
    expect(after.voxels.length).toBe(ventral.voxels.length);
    expect(after.voxels).not.toEqual(before.voxels);
    expect((await extractNsd(opts)).fromCache).toBe(true);
  });
});
