/**
 * The report's brain viewer reads out the file's voxel (i, j, k as in the .nii and voxels.npy) and that voxel's
 * value whatever the grid's orientation. NiiVue reorders a grid to RAS+ internally: on an LAS grid (the NSD files
 * mirrored along i) the viewer showed NiiVue's index, and looked the NaN mask up in file order at that index, so
 * in-mask voxels read "–" and voxels outside the mask read 0.000 (review rv45d).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { EncodingSummary } from '../../ts/encoding/mapFiles.js';
import { applyAffine } from '../../ts/encoding/orientation.js';
import { writeEncodingReport } from '../../ts/encoding/report.js';
import { geometryFromAffine, writeNifti } from '../../ts/io/nifti.js';
import { roiPath } from '../../ts/nsd/paths.js';
import { chromiumPath, launchBrowser, NO_BROWSER, openReport } from '../helpers/browser.js';
import { tempDir } from '../helpers/tempDir.js';

const GRID = [9, 7, 5] as const;
const S = 1.8;
/** Voxel to mm, each column the world direction of one file axis. */
const ORIENTATIONS: [string, number[][]][] = [
  ['RAS', [[S, 0, 0, -7], [0, S, 0, -5], [0, 0, S, -3], [0, 0, 0, 1]]],
  ['LAS (mirrored along i)', [[-S, 0, 0, 7], [0, S, 0, -5], [0, 0, S, -3], [0, 0, 0, 1]]],
  ['i anterior, j left, k superior', [[0, -S, 0, 6], [S, 0, 0, -8], [0, 0, S, -3], [0, 0, 0, 1]]],
  ['i posterior, j superior, k left', [[0, 0, -S, 4], [-S, 0, 0, 8], [0, S, 0, -5], [0, 0, 0, 1]]],
];

const nVox = GRID[0] * GRID[1] * GRID[2];
const voxOf = (n: number) => [n % GRID[0], Math.floor(n / GRID[0]) % GRID[1], Math.floor(n / (GRID[0] * GRID[1]))];
/** A different value in every voxel, largest at the last; NaN (no value) in a scattered fifth, as outside a mask. */
const mapValue = (i: number, j: number, k: number) => ((i + j + k) % 5 === 0 && k < GRID[2] - 1 ? NaN : (1 + i + 10 * j + 100 * k) / 1000);
const streamsLabel = (i: number, j: number) => 1 + ((i + 2 * j) % 7);

/** A run folder with one r map (and the streams atlas beside a bare NSD) on `affine`, its report written. */
async function reportOn(affine: number[][]): Promise<string> {
  const dir = tempDir('bl-viewer-orient-');
  const out = join(dir, 'run'), root = join(dir, 'nsd');
  const geometry = geometryFromAffine(affine);
  const map = new Float32Array(nVox), labels = new Int16Array(nVox);
  for (let n = 0; n < nVox; n++) {
    const [i, j, k] = voxOf(n);
    map[n] = mapValue(i, j, k);
    labels[n] = streamsLabel(i, j);
  }
  mkdirSync(join(out, 'maps'), { recursive: true });
  await writeNifti(join(out, 'maps', 'a.nii.gz'), { dims: [...GRID], datatype: 'float32', ...geometry }, map);
  mkdirSync(join(roiPath(root, 1, 'streams'), '..'), { recursive: true });
  await writeNifti(roiPath(root, 1, 'streams'), { dims: [...GRID], datatype: 'int16', ...geometry }, labels);
  const summary: EncodingSummary = {
    format: 'brainlatent-encoding', version: 2, createdAt: new Date(0).toISOString(),
    config: { out, nsd: { root, subject: 1 }, regions: ['streams'] },
    subject: 1, roi: 'nsdgeneral', voxels: nVox, trainImages: 100, testImages: 50, voxelOrder: 'C', noiseCeiling: false,
    atlasesMissing: [], partitionConvention: '', featureSets: [], banded: [],
    maps: [{ kind: 'r', featureSet: 'a', file: 'maps/a.nii.gz', mosaic: 'mosaics/a.png', label: 'a', description: 'held-out r of a' }],
  };
  await writeEncodingReport(out, summary);
  return join(out, 'report.html');
}

interface Reading { vox: number[] | null; value: number | null; region: string }

describe.skipIf(!chromiumPath)(`the viewer's read-out on grids that are not RAS+${chromiumPath ? '' : ` (${NO_BROWSER})`}`, () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => browser?.close());

  it.each(ORIENTATIONS)("%s: every voxel reads as the file's (i, j, k), its value, its region, and the start agrees", async (_, affine) => {
    const { page, problems } = await openReport(browser, await reportOn(affine));
    await page.evaluate(() => (window as unknown as { brainViewer: { ready: Promise<unknown> } }).brainViewer.ready);
    const points = Array.from({ length: nVox }, (_, n) => applyAffine(affine, ...(voxOf(n) as [number, number, number])));
    // (NaN leaves the page as null)
    const read = await page.evaluate((mms) => {
      const v = (window as unknown as { brainViewer: { at(mm: number[]): { vox: number[] | null; maps: number[]; regions: { name: string }[] } } }).brainViewer;
      return mms.map((mm) => {
        const a = v.at(mm);
        return { vox: a.vox && Array.from(a.vox), value: Number.isFinite(a.maps[0]) ? a.maps[0] : null, region: a.regions[0].name };
      });
    }, points) as Reading[];
    const names = ['early', 'midventral', 'midlateral', 'midparietal', 'ventral', 'lateral', 'parietal'];
    const expected = points.map((_, n): Reading => {
      const [i, j, k] = voxOf(n);
      const v = mapValue(i, j, k);
      return { vox: [i, j, k], value: Number.isNaN(v) ? null : Math.fround(v), region: names[streamsLabel(i, j) - 1] };
    });
    expect(read).toEqual(expected);
    expect(read.filter((r) => r.value === null).length).toBeGreaterThan(40); // the NaN voxels were probed too

    // a point beyond the grid has no voxel and no value
    const beyond = applyAffine(affine, -3, 2, 2);
    expect(await page.evaluate((mm) => {
      const a = (window as unknown as { brainViewer: { at(mm: number[]): { vox: number[] | null; maps: number[] } } }).brainViewer.at(mm);
      return { vox: a.vox, value: a.maps[0] };
    }, beyond)).toEqual({ vox: null, value: NaN });

    // the viewer opens on the map's largest value, at its file voxel (the report's start.vox)
    const start = await page.locator('#viewer-config').evaluate((e) => (JSON.parse(e.textContent ?? '{}') as { start: { vox: number[] } }).start.vox);
    expect(start).toEqual([GRID[0] - 1, GRID[1] - 1, GRID[2] - 1]);
    const info = await page.locator('#voxel-info').evaluate((el: HTMLElement) => ({ ...el.dataset, text: el.textContent ?? '' }));
    expect([Number(info.i), Number(info.j), Number(info.k)]).toEqual(start);
    expect(Number(info.value)).toBe(Math.fround(mapValue(GRID[0] - 1, GRID[1] - 1, GRID[2] - 1)));
    expect(info.text).toContain(`voxel (i, j, k) = (${start.join(', ')})`);
    expect(info.text).toContain('a: 0.469 held-out r');
    expect(problems).toEqual([]);
    await page.close();
  });
});
