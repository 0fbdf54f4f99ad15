/**
 * U-Net copies that earlier builds wrote to the OS temp folder (this build makes its copy in memory: see
 * unetCopies.ts) are removed at the start of every encode run, not only when a run exposes the U-Net's layers
 * again: before, a run without U-Net features (or one resumed past them) never reached the clean-up and a killed
 * run's copy (GBs for an export with its weights inside) stayed. A dead process's copy goes; a live process's and
 * another host's stay; the run itself leaves nothing there.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { encode } from '../../ts/encoding/encode.js';
import { HOST_TAG } from '../../ts/io/atomicWrite.js';
import { writeNpy } from '../../ts/io/npy.js';
import { osTmp, restoreTmpdir } from '../helpers/osTmp.js';
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
    const child = spawnSync(process.execPath, ['-e', '']);
    expect(child.status).toBe(0);
    // the pid-tagged copies' names: brainlatent-unet-layers-<host tag>-<pid>-<mkdtemp's 6 characters>
    const copy = (pid: number, tag = HOST_TAG) => {
      const p = join(dir, `brainlatent-unet-layers-${tag}-${pid}-aB3xYz`);
      mkdirSync(p);
      writeFileSync(join(p, 'model.onnx'), 'a copy');
      return p;
    };
    const dead = copy(child.pid!);
    const live = copy(process.pid);
    const otherHost = copy(child.pid!, HOST_TAG === '000000' ? '111111' : '000000');

    const r = await encode({ out: join(world.tmp, 'run'), nsd: { root: world.nsd.root, subject: 1, zscore: 'none' }, featureSets: [{ name: 'f', kind: 'file', path: features, ids: idsPath }], noiseCeiling: 'none' });
    expect(r.stages.every((s) => s.status === 'ran')).toBe(true);
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(join(live, 'model.onnx'))).toBe(true);
    expect(existsSync(join(otherHost, 'model.onnx'))).toBe(true);
    // and the run left nothing of its own there
    expect(readdirSync(dir).sort()).toEqual([basename(live), basename(otherHost)].sort());

    // a resumed run (every stage skipped) too
    const again = copy(child.pid!);
    const resumed = await encode({ out: join(world.tmp, 'run'), nsd: { root: world.nsd.root, subject: 1, zscore: 'none' }, featureSets: [{ name: 'f', kind: 'file', path: features, ids: idsPath }], noiseCeiling: 'none' });
    expect(resumed.stages.every((s) => s.status === 'skipped')).toBe(true);
    expect(existsSync(again)).toBe(false);
    expect(readdirSync(dir).sort()).toEqual([basename(live), basename(otherHost)].sort());
  }, 300_000);
});
