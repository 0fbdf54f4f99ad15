/**
 * U-Net copies that earlier builds wrote to the OS temp folder (this build makes its copy in memory: see
 * unetCopies.ts) are removed at the start of every encode run, not only when a run exposes the U-Net's layers
 * again: before, a run without U-Net features (or one resumed past them) never reached the clean-up and a killed
 * run's copy (GBs for an export with its weights inside) stayed. A dead process's copy goes; a live process's and
 * another host's stay; the run itself leaves nothing there.
 */
import { existsSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { encode } from '../../ts/encoding/encode.js';
import { writeNpy } from '../../ts/io/npy.js';
import { osTmp, restoreTmpdir } from '../helpers/osTmp.js';
import { pidTaggedCopies } from '../helpers/pidTaggedCopies.js';
import { makeWorld, type World } from './world.js';

let world: World;
beforeAll(async () => {
  world = await makeWorld();
}, 120_000);
afterAll(() => world?.cleanup());
afterEach(restoreTmpdir);

describe('U-Net copies left by earlier builds', () => {
  it('are removed at the start of an encode run without U-Net features: a dead process\'s, not a live one\'s', async () => {
    // features from a file: the run never loads the U-Net
    const ids = Int32Array.from({ length: 2000 }, (_, i) => i + 1);
    const features = join(world.tmp, 'f.npy'), idsPath = join(world.tmp, 'f-ids.npy');
    await writeNpy(features, Float32Array.from({ length: ids.length * 3 }, (_, i) => Math.sin(i * 0.7)), [ids.length, 3]);
    await writeNpy(idsPath, ids, [ids.length]);

    const dir = osTmp(world.tmp, 'os-tmp');
    const { dead, live, otherHost, deadAgain } = pidTaggedCopies(dir);

    const r = await encode({ out: join(world.tmp, 'run'), nsd: { root: world.nsd.root, subject: 1, zscore: 'none' }, featureSets: [{ name: 'f', kind: 'file', path: features, ids: idsPath }], noiseCeiling: 'none' });
    expect(r.stages.every((s) => s.status === 'ran')).toBe(true);
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(join(live, 'model.onnx'))).toBe(true);
    expect(existsSync(join(otherHost, 'model.onnx'))).toBe(true);
    // and the run left nothing of its own there
    expect(readdirSync(dir).sort()).toEqual([basename(live), basename(otherHost)].sort());

    // a resumed run (every stage skipped) too
    const again = deadAgain();
    const resumed = await encode({ out: join(world.tmp, 'run'), nsd: { root: world.nsd.root, subject: 1, zscore: 'none' }, featureSets: [{ name: 'f', kind: 'file', path: features, ids: idsPath }], noiseCeiling: 'none' });
    expect(resumed.stages.every((s) => s.status === 'skipped')).toBe(true);
    expect(existsSync(again)).toBe(false);
    expect(readdirSync(dir).sort()).toEqual([basename(live), basename(otherHost)].sort());
  }, 300_000);
});
