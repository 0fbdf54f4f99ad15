import { describe, expect, it } from 'vitest';

import { alphaGridNote, log10Alphas } from '../../ts/encoding/alphaMaps.js';
import { bandedMapKey, mapFile } from '../../ts/encoding/mapFiles.js';
import { figureVolume, mapDisplay } from '../../ts/encoding/report.js';

// The alphas chosen per voxel and a joint model's held-out R² had no maps; these are their names, keys and displays.
describe('the maps of what the fits chose', () => {
  it('are named after the feature set or joint model, keeping the joint model its +', () => {
    expect(mapFile({ kind: 'alpha', featureSet: 'z' })).toEqual({ file: 'maps/z_log10-alpha.nii.gz', mosaic: 'mosaics/z_log10-alpha.png' });
    expect(mapFile({ kind: 'banded-alpha', banded: 'z+c' }).file).toBe('maps/z+c_log10-alpha.nii.gz');
    expect(mapFile({ kind: 'banded-r2', banded: 'z+c' }).file).toBe('maps/z+c_r2.nii.gz');
    expect(mapFile({ kind: 'banded-r2-without', banded: 'z+c', space: 'c' }).file).toBe('maps/z+c_r2-without-c.nii.gz');
    expect(mapFile({ kind: 'band-weight', banded: 'z+c', space: 'z' }).file).toBe('maps/z+c_gamma-z.nii.gz');
    // the maps from before keep their names
    expect(mapFile({ kind: 'unique', banded: 'z+c', space: 'z' }).file).toBe('maps/z+c_unique-z.nii.gz');
    expect(mapFile({ kind: 'r-over-sqrt-nc', featureSet: 'z' }).file).toBe('maps/z_r-over-sqrt-nc.nii.gz');
  });

  it("have keys in a joint model's map list", () => {
    expect(['banded-r', 'banded-r2', 'banded-alpha', 'shared'].map((kind) => bandedMapKey({ kind: kind as 'banded-r' }))).toEqual(['r', 'r2', 'alpha', 'shared']);
    expect(bandedMapKey({ kind: 'banded-r2-without', space: 'z' })).toBe('r2-without-z');
    expect(bandedMapKey({ kind: 'band-weight', space: 'c' })).toBe('gamma-c');
    expect(() => bandedMapKey({ kind: 'alpha' })).toThrow(/'alpha' map is not a joint model's/);
  });

  it('say how many voxels chose an end of the alpha grid', () => {
    const grid = [0.1, 1, 10, 100];
    const chosen = Float32Array.from([100, 100, 10, 0.1, 1, NaN]);
    expect(alphaGridNote(chosen, grid)).toBe('grid 1e-1 … 1e2 (4 alphas); 2 of 5 voxels at its largest alpha, 1 at its smallest');
    expect(Array.from(log10Alphas(chosen)).map((v) => Math.round(v * 1e5) / 1e5)).toEqual([2, 2, 1, -1, 0, NaN]);
  });

  it('are drawn over the whole range: log10 alpha in blue below alpha 1, held-out R² signed at |R²| ≥ 0.01, γ up to 1', () => {
    const positive = mapDisplay('alpha', Float32Array.from([1, 2, 5, NaN]), 40);
    expect(positive).toMatchObject({ signed: false, vmax: 5, threshold: 0, quantity: 'log10 α' });
    const below = mapDisplay('banded-alpha', Float32Array.from([-1, 3, NaN]), 40);
    expect(below).toMatchObject({ signed: true, vmax: 3, threshold: 0 });
    expect(below.thresholdNote).toMatch(/blue: alpha below 1/);
    const r2 = mapDisplay('banded-r2', Float32Array.from([-0.3, 0.2, 0.5]), 40);
    expect(r2).toMatchObject({ signed: true, threshold: 0.01, quantity: 'held-out R²' });
    expect(r2.thresholdNote).toMatch(/not floored/);
    expect(mapDisplay('band-weight', Float32Array.from([0.1, 0.4]), 40)).toMatchObject({ signed: false, vmax: 1, quantity: 'γ' });
  });
});

// r/√NC was drawn wherever the ceiling passed 1%: noise voxels with a small ceiling reached 2.6, the bar ran to 1.33
// and scattered bright voxels lay outside visual cortex (review s45)
describe('the r/√NC figure', () => {
  it('is drawn where its set\'s r passes the r maps\' threshold, on a bar that ends at 1; its map keeps every value', () => {
    const d = mapDisplay('r-over-sqrt-nc', Float32Array.from([0.5, 2.58, 1.2, NaN]), 20);
    expect(d).toMatchObject({ signed: false, vmax: 1, threshold: 0 });
    expect(d.thresholdNote).toBe(
      "the figure shows where the noise ceiling is above 1% of variance and r ≥ 0.38 (the r maps' threshold), the map and the viewer every voxel with a ceiling above 1%; the bar ends at 1, the ceiling",
    );
    expect(mapDisplay('r-over-sqrt-nc', Float32Array.from([0.5]), 20, { threshold: 0.2 }).thresholdNote).toMatch(/ r ≥ 0\.20 /);
    const rVolume = Float32Array.from([0.6, 0.2, 0.5, NaN]);
    const r = { kind: 'r' as const, featureSet: 'z', volume: rVolume, display: mapDisplay('r', rVolume, 20) };
    const ratio = { kind: 'r-over-sqrt-nc' as const, featureSet: 'z', volume: Float32Array.from([0.7, 2.58, 1.2, NaN]) };
    const other = { kind: 'r' as const, featureSet: 'c', volume: Float32Array.from([0, 0, 0, 0]), display: mapDisplay('r', new Float32Array(4), 20) };
    expect(Array.from(figureVolume(ratio, [other, r]))).toEqual([Math.fround(0.7), NaN, Math.fround(1.2), NaN]);
    // (the other maps are drawn as they are)
    expect(figureVolume(r, [r])).toBe(rVolume);
  });
});
