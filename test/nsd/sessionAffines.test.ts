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

import { readNsdDesign } from '../../ts/nsd/expdesign.js';
import { extractNsd, extractionProblems } from '../../ts/nsd/extract.js';
import { planNsdSessions } from '../../ts/nsd/sessionPlan.js';
import { writeHdf5 } from '../../ts/io/hdf5.js';
import { betasPath, roiPath } from '../../ts/nsd/paths.js';
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

// An HDF5 session stored as (X, Y, Z, trials) reads as another grid: the refusal blamed the mask, naming a grid no
// file has ("--roi: the mask … is on a 20×24×16 grid but subject 1's betas are on 60×16×24"), or, where X does not
// divide the design's trials (NSD's 30,000 for X = 81), the trial count (review s44).
describe("HDF5 betas in another layout than NSD's (trials, Z, Y, X)", () => {
  it('are named as such, with the dataset shape, by the preflights and the extraction; a mask of another grid still names both grids and the shape', async () => {
    const nsd = await synthNsd({ out: join(dir, 'nsd-h5'), grid: [11, 10, 8], designSessions: 3, sessions: 1, trialsPerSession: 60, sharedImages: 10, imageSize: 16, formats: ['hdf5'], seed: 5 });
    const file = betasPath(nsd.root, 1, 1, 'hdf5');
    await writeHdf5(file, [{ name: 'betas', data: new Int16Array(11 * 10 * 8 * 60), shape: [11, 10, 8, 60] }]);
    const layout = `${file}: its dataset 'betas' has shape (11, 10, 8, 60): the 11×10×8 grid of subject 1's ${roiPath(nsd.root, 1, 'nsdgeneral')} then 60 volumes, stored as (X, Y, Z, trials); expected NSD's HDF5 layout (trials, Z, Y, X) (transpose it, or use the session's .nii.gz)`;
    const problems = await extractionProblems({ root: nsd.root, subject: 1, roi: 'nsdgeneral', format: 'hdf5' });
    expect(problems.map((p) => [p.option, p.error.message])).toEqual([['sessions', layout]]);
    const design = await readNsdDesign(nsd.root);
    expect((await planNsdSessions({ root: nsd.root, subject: 1, sessions: null, format: 'hdf5' }, design)).problems).toEqual([`nsd.sessions: ${layout}`]);
    await expect(extractNsd({ root: nsd.root, subject: 1, roi: 'nsdgeneral', format: 'hdf5' })).rejects.toThrow(layout);
    // another grid altogether: the mask and the grids, with the shape the grid was read from
    await writeHdf5(file, [{ name: 'betas', data: new Int16Array(60 * 4 * 4 * 4), shape: [60, 4, 4, 4] }]);
    const other = await extractionProblems({ root: nsd.root, subject: 1, roi: 'nsdgeneral', format: 'hdf5' });
    expect(other.map((p) => p.error.message)).toEqual([
      `the mask ${roiPath(nsd.root, 1, 'nsdgeneral')} is on a 11×10×8 grid but subject 1's betas (${file}, its dataset 'betas' of shape (60, 4, 4, 4) read as NSD's (trials, Z, Y, X)) are on 4×4×4; expected a mask on the subject's grid`,
    ]);
  });
});
