/** The encode config: validated up front against its schema, every problem at once, before any data is read. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Command } from 'commander';
import { describe, expect, it } from 'vitest';

import { registerEncodeCommand } from '../../ts/cli/commands/encode.js';
import { resolveEncodeConfig } from '../../ts/config/encode.js';
import { ConfigError } from '../../ts/config/errors.js';
import { encode } from '../../ts/encoding/encode.js';
import { encodeExtractOptions } from '../../ts/encoding/stages.js';
import { DEFAULT_ALPHAS } from '../../ts/ridge/RidgeCV.js';
import { tempDir } from '../helpers/tempDir.js';

function problems(input: unknown, source?: string): string[] {
  try {
    resolveEncodeConfig(input, source);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

const base = { out: 'o', nsd: { root: 'nsd', subject: 1 }, model: 'sd', featureSets: [{ name: 'z', kind: 'z' }] };

describe('encode config', () => {
  it("takes the z-score's ddof, hands it to the NSD adapter, and refuses it without a z-score", () => {
    expect(encodeExtractOptions(resolveEncodeConfig({ ...base, nsd: { ...base.nsd, zscore: 'train', zscoreDdof: 0 } }))).toMatchObject({ zscore: 'train', ddof: 0 });
    expect('ddof' in encodeExtractOptions(resolveEncodeConfig(base))).toBe(false);
    expect(problems({ ...base, nsd: { ...base.nsd, zscore: 'none', zscoreDdof: 1 } }, 'e.json')).toEqual([`e.json: nsd.zscoreDdof: set, but nsd.zscore is 'none' (no z-score to apply it to)`]);
  });

  it('fills in every default from the schema, inside feature sets too', () => {
    const c = resolveEncodeConfig({ ...base, featureSets: [{ name: 'zc', kind: 'zc', strength: 0.5 }, { name: 'u', kind: 'unet', layers: ['a'], timesteps: [1] }, { name: 'f', kind: 'file', path: 'x.npy' }] });
    expect(c.nsd).toEqual({ root: 'nsd', subject: 1, roi: 'nsdgeneral', sessions: null, format: 'auto', zscore: 'session', averageTrain: true, divisor: 300, cacheDir: null, captions: null });
    expect(c.featureSets).toEqual([
      { name: 'zc', kind: 'zc', strength: 0.5, steps: 50, guidance: 5, seed: 0 },
      { name: 'u', kind: 'unet', layers: ['a'], timesteps: [1], pool: 1, seed: 0 },
      { name: 'f', kind: 'file', path: 'x.npy', ids: null },
    ]);
    expect(c.ridge).toEqual({ alphas: [...DEFAULT_ALPHAS], folds: 5, score: 'r2', route: 'auto', cvMethod: 'auto' });
    expect(c).toMatchObject({ imageSize: 512, banded: [], regions: ['streams', 'prf-visualrois'], noiseCeiling: 'auto', mosaic: {}, featureBatch: 8 });
  });

  it("bounds a zc set's guidance and seed as img2img and --guidance/--seed do, in the same words", () => {
    const zc = (o: object) => problems({ ...base, featureSets: [{ name: 'zc', kind: 'zc', strength: 0.5, ...o }] }, 'e.json');
    expect(zc({ guidance: 1e30 })).toEqual(['e.json: featureSets[0].guidance: expected a number from 0 to 100, got number 1e+30']);
    expect(zc({ guidance: -1 })).toEqual(['e.json: featureSets[0].guidance: expected a number from 0 to 100, got number -1']);
    expect(zc({ seed: 2 ** 53 })).toEqual(['e.json: featureSets[0].seed: expected an integer from 0 to 9007199254740991, got number 9007199254740992']);
  });

  it('bounds mosaic.scale, columns and slices up front (scale 1e4 failed at the maps stage, after every fit)', () => {
    const mosaic = (o: object) => problems({ ...base, mosaic: o }, 'e.json');
    expect(mosaic({ scale: 1e4 })).toEqual(['e.json: mosaic.scale: expected an integer from 1 to 16, got number 10000']);
    expect(mosaic({ columns: 1025 })).toEqual(['e.json: mosaic.columns: expected an integer from 1 to 1024, got number 1025']);
    expect(mosaic({ slices: 1e9 })).toEqual(['e.json: mosaic.slices: expected an integer from 1 to 1024, got number 1000000000']);
    expect(resolveEncodeConfig({ ...base, mosaic: { scale: 16, columns: 1024, slices: 1 } }).mosaic).toEqual({ scale: 16, columns: 1024, slices: 1 });
  });

  it('bounds featureBatch at 4096 images per call (2^31 passed, and computeFeatures refused it after the extraction)', () => {
    expect(problems({ ...base, featureBatch: 4097 }, 'e.json')).toEqual(['e.json: featureBatch: expected an integer from 1 to 4096, got number 4097']);
    expect(problems({ ...base, featureBatch: 2 ** 31 }, 'e.json')).toEqual(['e.json: featureBatch: expected an integer from 1 to 4096, got number 2147483648']);
    expect(resolveEncodeConfig({ ...base, featureBatch: 4096 }).featureBatch).toBe(4096);
  });

  it("bounds ridge.folds at RidgeCV's 2^20 (a larger count threw RidgeCV's own words from the preflight's fit plan)", () => {
    expect(problems({ ...base, ridge: { folds: 2 ** 20 + 1 } }, 'e.json')).toEqual(['e.json: ridge.folds: expected an integer from 2 to 1048576, got number 1048577']);
    expect(resolveEncodeConfig({ ...base, ridge: { folds: 2 ** 20 } }).ridge.folds).toBe(2 ** 20);
  });

  it('takes ridge.memoryBudget as a whole number of bytes, as RidgeCV does (a fraction of a byte was floored)', () => {
    const budget = (memoryBudget: unknown) => problems({ ...base, ridge: { memoryBudget } }, 'e.json');
    expect(budget(1e9 + 0.5)).toEqual(['e.json: ridge.memoryBudget: expected an integer from 1 to 1125899906842624, got number 1000000000.5']);
    expect(budget(0)).toEqual(['e.json: ridge.memoryBudget: expected an integer from 1 to 1125899906842624, got number 0']);
    expect(resolveEncodeConfig({ ...base, ridge: { memoryBudget: 2 ** 30 } }).ridge.memoryBudget).toBe(2 ** 30);
  });

  it('a null or non-object config is one clear problem (not "Cannot read properties of null")', () => {
    expect(problems(null, 'enc.json')).toEqual(['enc.json: expected an object, got null']);
    expect(problems('z', 'enc.json')).toEqual(['enc.json: expected an object, got the string "z"']);
  });

  it('wrong types are named with what was expected, not Node\'s "path must be string"', () => {
    expect(problems({ out: 1, nsd: { root: 5, subject: '1' }, model: 7, featureSets: [{ name: 'f', kind: 'file', path: 3 }] })).toEqual([
      'config.out: expected a path, got number 1',
      'config.nsd.root: expected a path, got number 5',
      'config.nsd.subject: expected an integer from 1 to 8, got the string "1"',
      'config.model: expected a path or null, got number 7',
      'config.featureSets[0].path: expected a path, got number 3',
    ]);
  });

  it('lists every problem at once: unknown keys, feature-set fields, alpha grids, names, banded sets', () => {
    expect(
      problems(
        {
          out: 'o',
          nsd: { root: 'r', subject: 1, roi: 5, zscroe: 'none' },
          featureSets: [
            { name: 'z', kind: 'z' },
            { name: 'z', kind: 'c' },
            { name: 'c', kind: 'c', extra: 1 },
            { name: 'q', kind: 'zc' },
            { name: 'u', kind: 'unt' },
            { kind: 'unet', layers: 'x', timesteps: [1000] },
          ],
          ridge: { alphas: '1e1:1e-3:x', folds: 1 },
          banded: [{ name: 'b', sets: ['z', 'q2'], alphas: '0,1' }],
          noiseCeiling: 7,
          regons: [],
        },
        'enc.json',
      ),
    ).toEqual([
      'enc.json: regons: unknown key (did you mean "regions"?); known: out, nsd, model, imageSize, featureSets, ridge, banded, regions, noiseCeiling, mosaic, featureBatch',
      'enc.json: nsd.zscroe: unknown key (did you mean "zscore"?); known: root, subject, roi, sessions, format, zscore, zscoreDdof, averageTrain, divisor, cacheDir, captions',
      'enc.json: nsd.roi: expected a region spec or a mask path, got number 5',
      'enc.json: featureSets[2].extra: unknown key; known: name, kind',
      'enc.json: featureSets[3].strength: required, expected a number in (0, 1]',
      'enc.json: featureSets[4].kind: expected one of "file", "z", "c", "zc", "unet", got the string "unt" (did you mean "unet"?)',
      'enc.json: featureSets[5].name: required, expected a string of letters, digits, _ . or -, not starting with .',
      'enc.json: featureSets[5].layers: expected an array of at least 1 item, each a non-empty string, got the string "x"',
      'enc.json: featureSets[5].timesteps[0]: expected an integer from 0 to 999, got number 1000',
      'enc.json: ridge.folds: expected an integer from 2 to 1048576, got number 1',
      'enc.json: noiseCeiling: expected "auto", "none", "estimate", or a path, got number 7',
      "enc.json: ridge.alphas: expected start:stop:count such as 1e1:1e7:10, got '1e1:1e-3:x'",
      'enc.json: featureSets[1].name: feature set name \'z\' is used twice (also by featureSets[0])',
      "enc.json: model: required by feature sets 'z', 'c', 'q', 'u' (an SD 1.x ONNX folder)",
      "enc.json: banded[0].sets[1]: banded 'b' names feature set 'q2', which is not defined (defined: z, c, q, u)",
      'enc.json: banded[0].alphas: every alpha must be finite and > 0, got 0 at position 0',
    ]);
  });

  it("names that start with a dot are refused: '..' wrote a set's fit files beside fits/ (review s35-r3)", () => {
    const c = problems({ out: 'o', nsd: { root: 'r', subject: 1 }, featureSets: [{ name: '..', kind: 'file', path: 'f.npy' }, { name: '.h', kind: 'file', path: 'g.npy' }, { name: 'a.b', kind: 'file', path: 'h.npy' }], banded: [{ name: '..', sets: ['a.b'] }] });
    expect(c.filter((l) => /not starting with \./.test(l))).toEqual([
      'config.featureSets[0].name: expected a string of letters, digits, _ . or -, not starting with ., got the string ".."',
      'config.featureSets[1].name: expected a string of letters, digits, _ . or -, not starting with ., got the string ".h"',
      'config.banded[0].name: expected a string of letters, digits, _ . + or -, not starting with ., got the string ".."',
    ]);
  });

  it('U-Net sets expand to one name per layer and timestep; banded sets may name them', () => {
    const c = resolveEncodeConfig({ ...base, featureSets: [{ name: 'u', kind: 'unet', layers: ['/a', '/b'], timesteps: [1, 2] }], banded: [{ name: 'ab', sets: ['u:/a@t1', 'u:/b@t2'] }] });
    expect(c.banded[0].sets).toEqual(['u:/a@t1', 'u:/b@t2']);
    expect(problems({ ...base, featureSets: [{ name: 'u', kind: 'unet', layers: ['/a', '/a'], timesteps: [1] }] })).toEqual([
      "config.featureSets[0].name: feature set name 'u:/a@t1' is used twice (also by featureSets[0])",
    ]);
  });

  it('encode() rejects a bad config before it reads any data', async () => {
    // the NSD root does not exist: a config problem must be reported, not a missing file
    await expect(encode({ ...base, ridge: { alphas: '1:2:0' } } as never)).rejects.toThrow(/config\.ridge\.alphas: expected an integer count >= 1, got 0/);
    await expect(encode({ ...base, nsd: { root: '/no/such/nsd', subject: 1, colour: 1 } } as never)).rejects.toBeInstanceOf(ConfigError);
  });

  it('brainlatent encode --config names the file in every problem', async () => {
    const dir = tempDir('bl-enc-cfg-');
    const file = join(dir, 'enc.json');
    writeFileSync(file, JSON.stringify({ ...base, nsd: { root: 'nsd', subject: 9 }, featureSets: [{ name: 'z', kind: 'zz' }] }));
    const program = new Command().exitOverride();
    registerEncodeCommand(program);
    const err = await program.parseAsync(['node', 'brainlatent', 'encode', '--config', file]).then(() => null, (e: unknown) => e);
    expect((err as ConfigError).problems).toEqual([
      `${file}: nsd.subject: expected an integer from 1 to 8, got number 9`,
      `${file}: featureSets[0].kind: expected one of "file", "z", "c", "zc", "unet", got the string "zz" (did you mean "z"?)`,
    ]);
    writeFileSync(file, 'null');
    const err2 = await program.parseAsync(['node', 'brainlatent', 'encode', '--config', file]).then(() => null, (e: unknown) => e);
    expect((err2 as ConfigError).problems).toEqual([`${file}: expected an object, got null`]);
  });
});
