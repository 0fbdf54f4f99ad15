/**
 * The preflight's check of a reconstruction's images against the free space where it writes them: a seed count
 * with zeros too many is refused before any work (more files than the file system can hold, or more bytes even at
 * deflate's best ratio), one that fits only if the images compress better than photographs is warned of.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { fieldNames } from '../../ts/config/fieldNames.js';
import { freeSpace, imageSpaceCheck, runImageOutputs, sharedSpaceCheck, type FreeSpace } from '../../ts/pipeline/outputSpace.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-output-space-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const disk = (bytes: number, files: number | null) => async (): Promise<FreeSpace> => ({ bytes, files, at: tmp, device: 1 });
const flags = fieldNames({ flags: { 'img2img.seeds': '--seeds', 'nsd.testImages': '--test-images', out: '--out' }, given: ['img2img.seeds'] });

describe('output space: the run\'s images against the free space', () => {
  it('counts each test image\'s original, z-only image and one sample per seed, as PNGs', () => {
    const o = runImageOutputs(24, 5, 512, 320);
    expect(o.files).toBe(24 * 7);
    // half the raw bytes (rows with their filter byte) plus 57 bytes of PNG framing, per file
    const raw512 = 3 * 512 * 512 + 512, raw320 = 3 * 320 * 320 + 320;
    expect(o.typicalBytes).toBe(24 * 6 * (57 + raw512 / 2) + 24 * (57 + raw320 / 2));
    expect(o.leastBytes).toBe(24 * 6 * (57 + Math.ceil(raw512 / 1032)) + 24 * (57 + Math.ceil(raw320 / 1032)));
  });

  it('refuses more files than the file system can still hold, naming the seeds, the counts and the way out', async () => {
    const images = runImageOutputs(24, 100_000_000, 128, 128);
    const r = await imageSpaceCheck(join(tmp, 'a'), images, { testImages: 24, seeds: 100_000_000, size: 128 }, flags, disk(1e15, 16_000_000));
    expect(r?.problem).toBe(
      '--seeds 100000000 for 24 test image(s) at 128 px: the run writes 2,400,000,048 image file(s) (each test image\'s original, its z-only ' +
        `image and one per seed), more files than the 16,000,000 the file system of ${join(tmp, 'a')} (not made yet: that of ${tmp}) can still hold; ` +
        'use fewer seeds (--seeds) or test images (--test-images), or another run folder (--out)',
    );
  });

  it('refuses more bytes than are free even at deflate\'s best ratio; warns where only a better ratio than photographs\' fits', async () => {
    const what = { testImages: 10, seeds: 1000, size: 512 };
    const images = runImageOutputs(10, 1000, 512, 320);
    const out = join(tmp, 'b');
    const tooFew = await imageSpaceCheck(out, images, what, fieldNames(), disk(images.leastBytes - 1, null));
    expect(tooFew?.problem).toMatch(/^img2img\.seeds 1000 for 10 test image\(s\) at 512 px: the run writes 10,020 image file\(s\) .*, at least 7\.\d+ MiB even at deflate's best compression, more than the 7\.\d+ MiB free on the file system of .*; use fewer seeds \(img2img\.seeds\) or test images \(nsd\.testImages\), or another run folder \(out\)$/);
    const tight = await imageSpaceCheck(out, images, what, fieldNames(), disk(images.typicalBytes - 1, 1e9));
    expect(tight?.problem).toBeUndefined();
    expect(tight?.warning).toMatch(/, about 3\.\d+ GiB as PNGs of photographs, more than the 3\.\d+ GiB free on .*: the run may fill it; use fewer seeds/);
    expect(await imageSpaceCheck(out, images, what, fieldNames(), disk(images.typicalBytes, 1e9))).toBeNull();
  });

  it('counts the images a resumed run already wrote as written', async () => {
    const out = join(tmp, 'resumed');
    mkdirSync(join(out, 'images'), { recursive: true });
    for (let k = 0; k < 30; k++) writeFileSync(join(out, 'images', `00001_${String(k).padStart(3, '0')}.png`), 'x');
    const images = runImageOutputs(10, 3, 64, 64); // 50 files
    const what = { testImages: 10, seeds: 3, size: 64 };
    const r = await imageSpaceCheck(out, images, what, fieldNames(), disk(1e12, 19));
    expect(r?.problem).toMatch(/the run writes 20 image file\(s\) beyond the 30 already there .*more files than the 19 the file system of/);
    expect(await imageSpaceCheck(out, images, what, fieldNames(), disk(1e12, 20))).toBeNull();
  });

  it("reads the free space of a folder not made yet from its nearest existing folder's file system", async () => {
    const s = await freeSpace(join(tmp, 'not', 'made', 'yet'));
    expect(s.at).toBe(tmp);
    expect(s.bytes).toBeGreaterThan(0);
  });

  it("reads the free space's device: a folder not made yet is on its nearest existing folder's", async () => {
    const [a, b] = [await freeSpace(tmp), await freeSpace(join(tmp, 'x', 'y'))];
    expect(b.device).toBe(a.device);
    expect(Number.isInteger(a.device)).toBe(true);
  });
});

describe('output space: runs on one file system together (a batch)', () => {
  // two file systems: /fs1 (device 1) with `fs1` free, /fs2 (device 2) with plenty
  const fs = (fs1: { bytes: number; files: number | null }) => async (path: string): Promise<FreeSpace> =>
    path.startsWith(join(tmp, 'fs1')) ? { ...fs1, at: join(tmp, 'fs1'), device: 1 } : { bytes: 1e15, files: 1e12, at: join(tmp, 'fs2'), device: 2 };
  const run = (fsName: string, name: string, seeds: number) => ({ out: join(tmp, fsName, name, 'recon'), images: runImageOutputs(10, seeds, 64, 64) });

  it('refuses runs that each fit alone and together hold more files than their file system can, naming how many and where', async () => {
    // 10 × (1 + 100) + 10 = 1,020 files each
    const runs = [run('fs1', 'subj01', 100), run('fs2', 'subj02', 100), run('fs1', 'subj03', 100)];
    const found = await sharedSpaceCheck(runs, fs({ bytes: 1e12, files: 1500 }));
    expect(found).toEqual([
      {
        runs: [0, 2],
        problem:
          `the 2 runs on the file system of ${join(tmp, 'fs1')} write 2,040 image file(s) together, more files than the 1,500 it can still hold (each run alone fits); ` +
          'use fewer seeds (img2img.seeds) or test images (nsd.testImages), or put some of the runs on another file system',
      },
    ]);
    // room for both: nothing; the runs on the other file system alone: nothing
    expect(await sharedSpaceCheck(runs, fs({ bytes: 1e12, files: 2040 }))).toEqual([]);
    expect(await sharedSpaceCheck([runs[0], runs[1]], fs({ bytes: 1e12, files: 1500 }))).toEqual([]);
  });

  it('refuses more bytes together than are free even at deflate\'s best ratio; warns where only a better ratio than photographs\' fits', async () => {
    const runs = [run('fs1', 'a', 50), run('fs1', 'b', 50)];
    const one = runs[0].images;
    const bytes = await sharedSpaceCheck(runs, fs({ bytes: 1.5 * one.leastBytes, files: null }));
    expect(bytes).toHaveLength(1);
    expect(bytes[0].problem).toMatch(/^the 2 runs on the file system of .*fs1 write 1,040 image file\(s\) together, at least [\d.]+ KiB even at deflate's best compression, more than the [\d.]+ KiB free there \(each run alone fits\); use fewer seeds/);
    const typical = await sharedSpaceCheck(runs, fs({ bytes: 1.5 * one.typicalBytes, files: null }));
    expect(typical).toEqual([{ runs: [0, 1], warning: expect.stringMatching(/ write 1,040 image file\(s\) together, about [\d.]+ MiB as PNGs of photographs, more than the [\d.]+ MiB free there: together they may fill it; use fewer seeds/) }]);
  });

  it('leaves a file system that one run alone overfills as much to that run\'s own check', async () => {
    const runs = [run('fs1', 'a', 200), run('fs1', 'b', 10)]; // 2,020 and 120 files
    expect(await sharedSpaceCheck(runs, fs({ bytes: 1e12, files: 2000 }))).toEqual([]);
    // a run alone only warned of (bytes as photographs), together more files than fit: refused
    const big = runs[0].images;
    const found = await sharedSpaceCheck(runs, fs({ bytes: big.typicalBytes * 0.9, files: 2100 }));
    expect(found.map((f) => Object.keys(f))).toEqual([['runs', 'problem']]);
  });

  it('counts the images a resumed run already wrote as written', async () => {
    const runs = [run('fs1', 'done', 100), run('fs1', 'new', 100)];
    mkdirSync(join(runs[0].out, 'images'), { recursive: true });
    for (let k = 0; k < 1000; k++) writeFileSync(join(runs[0].out, 'images', `${k}.png`), '');
    // 20 + 1,020 files left to write
    expect(await sharedSpaceCheck(runs, fs({ bytes: 1e12, files: 1039 }))).toHaveLength(1);
    expect(await sharedSpaceCheck(runs, fs({ bytes: 1e12, files: 1040 }))).toEqual([]);
  });
});
