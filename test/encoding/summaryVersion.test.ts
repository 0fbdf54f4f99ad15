/**
 * encoding.json is read back (for the report of a folder whose maps were listed there, before data/maps.json) in its
 * versions 1 and 2 only: a newer layout was read as version 2's (review C #11's gap, for the encode outputs).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import type { EncodeConfig } from '../../ts/config/encode.js';
import { readMapRecords } from '../../ts/encoding/stages.js';
import { FormatError } from '../../ts/errors.js';
import { tempDir } from '../helpers/tempDir.js';

describe("encoding.json's version", () => {
  it('a newer one is refused naming the file, the versions read and to upgrade; version 2 is read', async () => {
    const out = tempDir('bl-enc-version-');
    const file = join(out, 'encoding.json');
    const maps = [{ kind: 'r', featureSet: 'z', file: 'maps/z.nii.gz', mosaic: 'mosaics/z.png', label: 'z', description: 'held-out r of z' }];
    writeFileSync(file, JSON.stringify({ format: 'brainlatent-encoding', version: 3, maps, featureSets: [], banded: [] }));
    const e = (await readMapRecords({ out } as EncodeConfig).catch((x: unknown) => x)) as FormatError;
    expect(e).toBeInstanceOf(FormatError);
    // (not --force, which replaced the newer brainlatent's outputs with this one's)
    expect(e.message).toBe(`${file}: version 3; this brainlatent reads encoding.json of version 1 or 2 (written by a newer brainlatent: upgrade brainlatent to read it, or use the one that wrote it)`);
    expect(e.field).toBe('version');
    // a version no brainlatent wrote: the maps stage writes the file again
    writeFileSync(file, JSON.stringify({ format: 'brainlatent-encoding', version: 'x', maps, featureSets: [], banded: [] }));
    const odd = (await readMapRecords({ out } as EncodeConfig).catch((x: unknown) => x)) as FormatError;
    expect(odd.message).toBe(`${file}: version "x"; this brainlatent reads encoding.json of version 1 or 2 (run the maps stage again: encode --force)`);
    writeFileSync(file, JSON.stringify({ format: 'brainlatent-encoding', version: 2, maps, featureSets: [], banded: [] }));
    expect(await readMapRecords({ out } as EncodeConfig)).toEqual(maps);
  });
});
