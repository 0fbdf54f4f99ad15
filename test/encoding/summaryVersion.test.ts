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
  it('a newer one is refused naming the file and the versions read; version 2 is read', async () => {
    const out = tempDir('bl-enc-version-');
    const file = join(out, 'encoding.json');
    const maps = [{ kind: 'r', featureSet: 'z', file: 'maps/z.nii.gz', mosaic: 'mosaics/z.png', label: 'z', description: 'held-out r of z' }];
    writeFileSync(file, JSON.stringify({ format: 'brainlatent-encoding', version: 3, maps, featureSets: [], banded: [] }));
    const e = (await readMapRecords({ out } as EncodeConfig).catch((x: unknown) => x)) as FormatError;
    expect(e).toBeInstanceOf(FormatError);
    expect(e.message).toBe(`${file}: version 3; this brainlatent reads encoding.json of version 1 or 2 (run the maps stage again: encode --force)`);
    expect(e.field).toBe('version');
    writeFileSync(file, JSON.stringify({ format: 'brainlatent-encoding', version: 2, maps, featureSets: [], banded: [] }));
    expect(await readMapRecords({ out } as EncodeConfig)).toEqual(maps);
  });
});
