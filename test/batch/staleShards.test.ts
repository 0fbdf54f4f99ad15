import { copyFileSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { cancelBatch, waitForBatch } from '../../ts/batch/inspect.js';
import { runBatch } from '../../ts/batch/runBatch.js';
import { submitBatch } from '../../ts/batch/submit.js';
import { createWorker } from '../../ts/batch/worker.js';
import type { DemoWorld } from '../../ts/demo/world.js';
import { betasPath } from '../../ts/nsd/paths.js';
import { reconstruct } from '../../ts/pipeline/reconstruct.js';
import { redisAvailable, redisTestBed } from './redis.js';
import { batchManifest, batchWorld, singleConfig } from './world.js';

// Through BullMQ, the img2img shards are spawned by their merge job without children of their own, so nothing told
// them that the decoders and z-only images they were made from had been redone: after a betas file changed, the
// stages before img2img ran again, the shards were skipped on their old markers, and evaluate scored the new z-only
// images with the old final images. A shard's marker now names the upstream stages it was made from.

const { dir, workers, url } = redisTestBed('bl-stale-shards-');
let world: DemoWorld;

beforeAll(async () => {
  world = await batchWorld(dir, [1]);
}, 300_000);

/** Every final image of a run folder (seed samples, not the originals or the z-only images), by name. */
const finals = (folder: string) =>
  Object.fromEntries(
    readdirSync(join(folder, 'images'))
      .filter((f) => /_\d{3}\.png$/.test(f))
      .sort()
      .map((f) => [f, readFileSync(join(folder, 'images', f)).toString('base64')]),
  );

describe.skipIf(!redisAvailable)('img2img shards through BullMQ after the stages before them ran again', () => {
  it('every shard runs again, and the final images and metrics are those of a fresh single-process reconstruct', { timeout: 900_000 }, async () => {
    workers.push(await createWorker({ redis: url(), pollMs: 100 }));
    const out = join(dir, 'batch');
    const manifest = batchManifest(world, 'stale', out, [1]);
    await submitBatch(manifest, { redis: url() });
    const first = await waitForBatch('stale', { redis: url(), intervalMs: 300 });
    expect(first.state).toBe('done');
    const folder = join(out, 'subj01', 'recon');
    const before = finals(folder);
    expect(Object.keys(before)).toHaveLength(16); // 8 test images × 2 seeds

    // other data: session 1's betas become session 2's (a valid file of the same size, other values)
    copyFileSync(betasPath(world.nsdRoot, 1, 2, 'hdf5'), betasPath(world.nsdRoot, 1, 1, 'hdf5'));
    await cancelBatch('stale', { redis: url(), purge: true });
    await submitBatch(manifest, { redis: url() });
    const second = await waitForBatch('stale', { redis: url(), intervalMs: 300 });
    expect(second.state).toBe('done');
    const state = (stage: string) => second.jobs.filter((j) => j.stage === stage).map((j) => `${j.id} ${j.state}`);
    for (const stage of ['extract', 'decoders', 'zonly', 'evaluate']) expect(state(stage)).toEqual([`stale.subj01.recon.${stage} done`]);
    const shards = second.jobs.filter((j) => j.stage === 'img2img' && j.shard);
    expect(shards).toHaveLength(4);
    expect(shards.map((j) => `${j.id} ${j.state}`)).toEqual(shards.map((j) => `${j.id} done`));

    // the reference: the same analysis on the changed data, in one process, in a folder of its own
    const single = (await reconstruct(singleConfig(world, 1, join(dir, 'single')))).out;
    const after = finals(folder);
    expect(after).toEqual(finals(single));
    expect(after).not.toEqual(before);
    expect(readFileSync(join(folder, 'metrics.json'), 'utf8')).toBe(readFileSync(join(single, 'metrics.json'), 'utf8'));
  });

  it('a shard marker from before the upstream key was recorded is current only while it is newer than the upstream markers', { timeout: 300_000 }, async () => {
    const out = join(dir, 'batch');
    const manifest = batchManifest(world, 'stale', out, [1]);
    const folder = join(out, 'subj01', 'recon');
    const shards = join(folder, 'stages', 'img2img.shards');
    const file = join(shards, readdirSync(shards).filter((f) => f.endsWith('.json')).sort()[0]);
    const { upstream, ...old } = JSON.parse(readFileSync(file, 'utf8'));
    expect(upstream).toMatch(/^[0-9a-f]{32}$/);
    writeFileSync(file, JSON.stringify(old));
    // written after the z-only images: taken as current (here, with the local runner)
    const again = await runBatch(manifest, { concurrency: 1 });
    expect(again.jobs.filter((j) => j.state !== 'skipped').map((j) => j.id)).toEqual([]);
    // a z-only marker newer than it: the shard is redone, and what follows it
    const later = new Date(Date.now() + 60_000);
    utimesSync(join(folder, 'stages', 'zonly.json'), later, later);
    const third = await runBatch(manifest, { concurrency: 1 });
    const ran = third.jobs.filter((j) => j.state === 'done').map((j) => j.id);
    expect(ran).toEqual([`stale.subj01.recon.img2img.${basename(file, '.json')}`, 'stale.subj01.recon.img2img', 'stale.subj01.recon.evaluate', 'stale.subj01.recon.report', 'stale.subj01']);
    expect(JSON.parse(readFileSync(file, 'utf8')).upstream).toMatch(/^[0-9a-f]{32}$/);
  });
});
