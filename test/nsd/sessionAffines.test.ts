/**
 * Every NIfTI session's betas must place the grid where the first session's do: the extraction reads the sessions
 * voxel by voxel as one table, and a session saved mirrored (a valid file, its affine flipped to match) or with its
 * affine shifted gave rows from other voxels, with no error (review s44: 54 of 158 training rows differed).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { extractNsd, extractionProblems } from '../../ts/nsd/extract.js';
import { betasPath } from '../../ts/nsd/paths.js';
import { synthNsd } from '../../ts/synth/nsd.js';

const dir = mkdtempSync(join(tmpdir(), 'bl-session-affines-'));
let world: { nsdRoot: string };
beforeAll(async () => {
  const nsd = await synthNsd({ out: join(dir, 'nsd'), grid: [8, 8, 8], designSessions: 3, sessions: 3, trialsPerSession: 60, sharedImages: 10, imageSize: 16, formats: ['nifti'], seed: 4 });
  world = { nsdRoot: nsd.root };
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Session `s`'s .nii.gz with `dx` mm added to its sform's (and qform's) x offset. */
function shiftSession(s: number, dx: number): string {
  const path = betasPath(world.nsdRoot, 1, s, 'nifti');
  const b = gunzipSync(readFileSync(path));
  b.writeFloatLE(b.readFloatLE(292) + dx, 292); // srow_x[3]
  b.writeFloatLE(b.readFloatLE(268) + dx, 268); // qoffset_x
  writeFileSync(path, gzipSync(b));
  return path;
}

describe("every NIfTI session's betas on the first session's grid", () => {
  it('a session whose affine is shifted by 0.5 mm is refused, naming both files, by the preflight and the extraction', async () => {
    const moved = shiftSession(3, 0.5);
    const first = betasPath(world.nsdRoot, 1, 1, 'nifti');
    const expected = `${moved}: voxel-to-world affine`;
    const problems = await extractionProblems({ root: world.nsdRoot, subject: 1, roi: 'nsdgeneral', format: 'nifti' });
    expect(problems.map((p) => p.option)).toEqual(['sessions']);
    expect(problems[0].error.message).toContain(expected);
    expect(problems[0].error.message).toContain(`of ${first} (its sform): the same voxel lies up to 0.500 mm apart in the two; expected every session's betas on one grid`);
    await expect(extractNsd({ root: world.nsdRoot, subject: 1, roi: 'nsdgeneral', format: 'nifti' })).rejects.toThrow(expected);
    // the first two sessions alone are fine; back in place, all three are
    expect(await extractionProblems({ root: world.nsdRoot, subject: 1, roi: 'nsdgeneral', format: 'nifti', sessions: [1, 2] })).toEqual([]);
    shiftSession(3, -0.5);
    expect(await extractionProblems({ root: world.nsdRoot, subject: 1, roi: 'nsdgeneral', format: 'nifti' })).toEqual([]);
  });
});
