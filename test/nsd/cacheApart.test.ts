/**
 * extractNsd's own cacheDir is apart from what it reads: a library caller passing a cache that is the NSD root, lies
 * inside it or the subject's betas folder (links resolved) or holds them or the mask file was not protected (only
 * `nsd extract --cache` and the pipelines' checks refused it), and the extraction wrote its entry into the NSD folder
 * and its upkeep could remove from it. Now extractNsd refuses it before anything is read or written.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { InvalidArgumentError } from '../../ts/errors.js';
import { extractNsd } from '../../ts/nsd/extract.js';
import { betasDir, roiPath } from '../../ts/nsd/paths.js';
import { makeMiniNsd } from './mini.js';

let mini: Awaited<ReturnType<typeof makeMiniNsd>>;
let root: string;
beforeAll(async () => {
  mini = await makeMiniNsd();
  root = mini.root;
});
afterAll(() => mini?.cleanup());

const tail =
  ", an input; extractions write their cache entries into it and the cache's upkeep removes stale ones, so it could overwrite or delete what they read; " +
  'expected a cache folder apart from the inputs (none of them, inside none, holding none)';

async function refusal(cacheDir: string, roi = 'streams:early'): Promise<Error> {
  const e = await extractNsd({ root, subject: 1, roi, sessions: '1', cacheDir }).then(
    () => null,
    (err: Error) => err,
  );
  expect(e, `cacheDir ${cacheDir} was taken`).toBeInstanceOf(InvalidArgumentError);
  return e!;
}

describe('extractNsd: cacheDir apart from the inputs', () => {
  it('refuses the NSD root, a folder inside it (nothing made there) and a folder holding it', async () => {
    const listing = readdirSync(root).sort();
    expect((await refusal(root)).message).toBe(`cacheDir ${root}: is root ${root}${tail}`);
    const inside = join(root, 'cache');
    expect((await refusal(inside)).message).toBe(`cacheDir ${inside}: is inside root ${root}${tail}`);
    expect(existsSync(inside)).toBe(false);
    expect(readdirSync(root).sort()).toEqual(listing);
    expect((await refusal(mini.tmp)).message).toBe(`cacheDir ${mini.tmp}: holds root ${root}${tail}`);
  });

  it("refuses a folder inside the subject's betas folder where that is a link out of the root, and one holding the mask file", async () => {
    // the betas folder elsewhere (another disk, say), linked into the root: the cache inside its real folder
    const betas = betasDir(root, 1);
    const real = join(mini.tmp, 'betas-real');
    renameSync(betas, real);
    symlinkSync(real, betas);
    const inBetas = join(real, 'cache');
    expect((await refusal(inBetas)).message).toBe(`cacheDir ${inBetas}: is inside the betas folder of root ${betas}${tail}`);
    expect(existsSync(inBetas)).toBe(false);
    const masks = join(mini.tmp, 'masks');
    mkdirSync(masks);
    const mask = join(masks, 'early.nii.gz');
    copyFileSync(roiPath(root, 1, 'streams'), mask);
    expect((await refusal(masks, mask)).message).toBe(`cacheDir ${masks}: holds roi ${mask}${tail}`);
    expect(readdirSync(masks)).toEqual(['early.nii.gz']);
  });

  it('a cache apart from them is used', async () => {
    const cacheDir = join(mini.tmp, 'cache-apart');
    const first = await extractNsd({ root, subject: 1, roi: 'streams:early', sessions: '1', cacheDir });
    expect(first.fromCache).toBeFalsy();
    expect((await extractNsd({ root, subject: 1, roi: 'streams:early', sessions: '1', cacheDir })).fromCache).toBe(true);
  });
});
