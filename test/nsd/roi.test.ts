/** Region masks: hemisphere atlases take their atlas's labels; a file of several volumes is no mask. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MissingFileError, ShapeError } from '../../ts/errors.js';
import { writeNifti } from '../../ts/io/nifti.js';
import { maskFromVolume } from '../../ts/io/voxelMask.js';
import { ctabPath, roiPath } from '../../ts/nsd/paths.js';
import { loadRegionMask } from '../../ts/nsd/roi.js';

const tmp = mkdtempSync(join(tmpdir(), 'bl-roi-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const grid = [4, 3, 2] as const;
/** Label v at voxel v (0..7), -1 beyond: each label one voxel, at its own index. */
const labels = Int16Array.from({ length: 24 }, (_, i) => (i < 8 ? i : -1));

async function writeRoi(path: string, dims: number[], data: Int16Array): Promise<void> {
  mkdirSync(dirname(path), { recursive: true });
  await writeNifti(path, { dims, datatype: 'int16' }, data);
}

describe('hemisphere atlases (lh.streams, rh.prf-visualrois)', () => {
  it('take the label names of their atlas: its .ctab (NSD ships none per hemisphere), else the built-in table', async () => {
    const root = join(tmp, 'nsd');
    await writeRoi(roiPath(root, 1, 'lh.streams'), [...grid], labels);
    await writeRoi(roiPath(root, 1, 'rh.prf-visualrois'), [...grid], labels);
    // without any .ctab: the built-in tables (streams early = 1; prf-visualrois V1 = V1v + V1d = 1, 2)
    expect(Array.from((await loadRegionMask(root, 1, 'lh.streams:early')).mask.indices)).toEqual([1]);
    expect(Array.from((await loadRegionMask(root, 1, 'rh.prf-visualrois:V1,hV4')).mask.indices)).toEqual([1, 2, 7]);
    // streams.mgz.ctab, as NSD ships it, renumbered here so that its use shows
    expect(ctabPath(root, 'lh.streams')).toBe(ctabPath(root, 'streams'));
    mkdirSync(dirname(ctabPath(root, 'streams')), { recursive: true });
    writeFileSync(ctabPath(root, 'streams'), '0 Unknown 0 0 0 0\n5 early 255 0 0 0\n6 ventral 0 255 0 0\n');
    const early = await loadRegionMask(root, 1, 'lh.streams:early,ventral');
    expect(early.values).toEqual([5, 6]);
    expect(Array.from(early.mask.indices)).toEqual([5, 6]);
  });
});

describe('a region mask is one volume', () => {
  it('a 4-D file of several volumes is refused naming the file and its shape; one of a single volume is read', async () => {
    const four = join(tmp, 'masks', 'four.nii.gz');
    await writeRoi(four, [...grid, 3], Int16Array.from({ length: 72 }, (_, i) => (i % 24 === 5 ? 1 : 0)));
    const e = await loadRegionMask(tmp, 1, four).then(() => null, (x: Error) => x);
    expect(e).toBeInstanceOf(ShapeError);
    expect(e!.message).toBe(`${four}: dims 4×3×2×3 hold 3 volumes; a region mask is one volume (X×Y×Z, or X×Y×Z×1)`);
    // an atlas volume too
    const root = join(tmp, 'nsd4d');
    await writeRoi(roiPath(root, 1, 'streams'), [...grid, 2], Int16Array.from({ length: 48 }, (_, i) => i % 24));
    await expect(loadRegionMask(root, 1, 'streams:early')).rejects.toThrow(`${roiPath(root, 1, 'streams')}: dims 4×3×2×2 hold 2 volumes`);
    const one = join(tmp, 'masks', 'one.nii.gz');
    await writeRoi(one, [...grid, 1], Int16Array.from({ length: 24 }, (_, i) => (i === 5 || i === 9 ? 1 : 0)));
    expect(Array.from((await loadRegionMask(tmp, 1, one)).mask.indices)).toEqual([5, 9]);
  });

  it('maskFromVolume refuses values of more than one volume (it took the first)', () => {
    expect(() => maskFromVolume(new Float32Array(48).fill(1), [...grid], (v) => v > 0, 'm.nii.gz')).toThrow(
      new ShapeError('m.nii.gz: volume has 48 values, grid 4×3×2 needs 24 (2 volumes; a mask is one)'),
    );
  });
});

describe('an atlas that is not there', () => {
  // `--roi V1` was refused naming only the missing V1.nii.gz (review s45)
  it('lists the atlases the subject has, and the atlas whose label the name is', async () => {
    const root = join(tmp, 'nsd-hint');
    await writeRoi(roiPath(root, 1, 'prf-visualrois'), [...grid], labels);
    await writeRoi(roiPath(root, 1, 'streams'), [...grid], labels);
    const refusal = (spec: string) => loadRegionMask(root, 1, spec).then(() => { throw new Error('expected a refusal'); }, (e: unknown) => e as Error);
    const here = ' (atlases here: prf-visualrois, streams; a region is ATLAS or ATLAS:LABEL)';
    expect((await refusal('V1')).message).toBe(`region V1: atlas V1 not found: its volume ${roiPath(root, 1, 'V1')} does not exist; did you mean prf-visualrois:V1?${here}`);
    expect((await refusal('ventral')).message).toMatch(/; did you mean streams:ventral\? \(atlases here: /);
    expect((await refusal('foo')).message).toBe(`region foo: atlas foo not found: its volume ${roiPath(root, 1, 'foo')} does not exist${here}`);
  });

  it('is refused naming its volume (and the .ctab its label names needed), not as an unknown label', async () => {
    const root = join(tmp, 'nsd-no-floc');
    const volume = roiPath(root, 1, 'floc-faces');
    const ctab = ctabPath(root, 'floc-faces');
    const refusal = (spec: string) => loadRegionMask(root, 1, spec).then(() => { throw new Error('expected a refusal'); }, (e: unknown) => e as Error);
    const both = await refusal('floc-faces:FFA-1');
    expect(both).toBeInstanceOf(MissingFileError);
    expect(both.message).toBe(`region floc-faces:FFA-1: atlas floc-faces not found: its volume ${volume} and its label names ${ctab} do not exist`);
    // label numbers (or the whole atlas) need no names: the volume alone is missing
    for (const spec of ['floc-faces:2', 'floc-faces']) {
      expect((await refusal(spec)).message).toBe(`region ${spec}: atlas floc-faces not found: its volume ${volume} does not exist`);
    }
    // the volume there, its .ctab not: the names are what is missing, and numbers still work
    await writeRoi(volume, [...grid], labels);
    const names = await refusal('floc-faces:FFA-1');
    expect(names).toBeInstanceOf(MissingFileError);
    expect(names.message).toBe(
      `region floc-faces:FFA-1: no label names for floc-faces: ${ctab} does not exist (and floc-faces is not one of the atlases with built-in names: ` +
        'nsdgeneral, streams, prf-visualrois); give label numbers (floc-faces:1,2) or add the .ctab',
    );
    expect(Array.from((await loadRegionMask(root, 1, 'floc-faces:2')).mask.indices)).toEqual([2]);
    // an atlas with built-in names, without its .ctab: a name not among them says where the names came from
    await writeRoi(roiPath(root, 1, 'streams'), [...grid], labels);
    expect((await refusal('streams:FFA-1')).message).toBe(
      `region streams:FFA-1: no label "FFA-1" in streams; known labels: early, midventral, midlateral, midparietal, ventral, lateral, parietal (built-in names: ${ctabPath(root, 'streams')} does not exist)`,
    );
  });
});
