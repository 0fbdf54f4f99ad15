/**
 * A batch resumed over a damaged final image: the shard that wrote it runs again (its marker records its PNGs as it
 * wrote them), then the merge and what follows; the other shards are kept. Before, the shard was skipped because its
 * PNGs existed, and the merge recorded the damaged image as the stage's.
 */
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runBatch } from '../../ts/batch/runBatch.js';
import type { DemoWorld } from '../../ts/demo/world.js';
import { reconstruct } from '../../ts/pipeline/reconstruct.js';
import { batchManifest, batchWorld, singleConfig } from './world.js';

const dir = mkdtempSync(join(tmpdir(), 'bl-damaged-shard-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let world: DemoWorld;

beforeAll(async () => {
  world = await batchWorld(dir, [1]);
}, 300_000);

describe('a batch resumed over a damaged final image', () => {
  it('reruns the one shard that wrote it, the merge and the stages after; run again, skips all', { timeout: 600_000 }, async () => {
    const out = join(dir, 'batch');
    const manifest = batchManifest(world, 'dmg', out, [1]);
    expect((await runBatch(manifest, { concurrency: 1 })).state).toBe('done');
    const folder = join(out, 'subj01', 'recon');
    const shards = join(folder, 'stages', 'img2img.shards');
    const file = readdirSync(shards).filter((f) => f.endsWith('.json')).sort()[0];
    const marker = JSON.parse(readFileSync(join(shards, file), 'utf8')) as { outputs: string[]; outputFiles: Record<string, { size: number }> };
    const sample = marker.outputs[0];
    const good = readFileSync(join(folder, sample));
    expect(marker.outputFiles[sample].size).toBe(good.length);
    writeFileSync(join(folder, sample), 'junk\n');
    const again = await runBatch(manifest, { concurrency: 1 });
    expect(again.state).toBe('done');
    const ran = again.jobs.filter((j) => j.state === 'done').map((j) => j.id);
    expect(ran).toEqual([`dmg.subj01.recon.img2img.${file.replace(/\.json$/, '')}`, 'dmg.subj01.recon.img2img', 'dmg.subj01.recon.evaluate', 'dmg.subj01.recon.report', 'dmg.subj01']);
    expect(readFileSync(join(folder, sample))).toEqual(good);
    expect((await runBatch(manifest, { concurrency: 1 })).jobs.every((j) => j.state === 'skipped')).toBe(true);
  });

  it("the merge takes its PNGs' records from the shards' markers, reading only a PNG that moved since", { timeout: 600_000 }, async () => {
    const out = join(dir, 'batch');
    const manifest = batchManifest(world, 'dmg', out, [1]);
    expect((await runBatch(manifest, { concurrency: 1 })).state).toBe('done');
    const folder = join(out, 'subj01', 'recon');
    const shards = join(folder, 'stages', 'img2img.shards');
    const file = join(shards, readdirSync(shards).filter((f) => f.endsWith('.json')).sort()[0]);
    const marker = JSON.parse(readFileSync(file, 'utf8')) as { outputs: string[]; outputFiles: Record<string, { size: number; mtimeMs: number; sha256: string }> };
    const [kept, moved] = marker.outputs;
    const sha256 = marker.outputFiles[moved].sha256;
    // a hash no read of the PNG would give: the merged marker holds it only if the merge took it unread
    const wrong = '0'.repeat(64);
    marker.outputFiles[kept].sha256 = wrong;
    writeFileSync(file, JSON.stringify(marker));
    // the other PNG the same, at another time (a copy without its times): read, and its record is the present one
    const t = statSync(join(folder, moved)).mtimeMs / 1000 + 10;
    utimesSync(join(folder, moved), t, t);
    rmSync(join(folder, 'stages', 'img2img.json'));
    const again = await runBatch(manifest, { concurrency: 1 });
    expect(again.jobs.filter((j) => j.state === 'done').map((j) => j.id)).toEqual(['dmg.subj01.recon.img2img', 'dmg.subj01.recon.evaluate', 'dmg.subj01.recon.report', 'dmg.subj01']);
    const merged = JSON.parse(readFileSync(join(folder, 'stages', 'img2img.json'), 'utf8')) as { outputs: string[]; outputFiles: Record<string, unknown> };
    expect(merged.outputFiles[kept]).toEqual({ ...marker.outputFiles[kept], sha256: wrong });
    expect(merged.outputFiles[moved]).toEqual({ size: marker.outputFiles[moved].size, mtimeMs: statSync(join(folder, moved)).mtimeMs, sha256 });
    expect(Object.keys(merged.outputFiles).sort()).toEqual([...merged.outputs].sort());
  });
});

describe('a single-process reconstruct over a batch\'s run folder with a damaged sample', () => {
  it("recomputes only the block that holds it: the merge's marker records what the stage read, as a single-process run's does", { timeout: 900_000 }, async () => {
    // (batchSize 1: img2img blocks of 4 images, so 2 blocks × 2 seeds = 4 units of the 8 test images; 4 steps, for time)
    const small = <T extends object>(c: T): T => ({ ...c, img2img: { ...(c as { img2img?: object }).img2img, batchSize: 1, steps: 4 } });
    const out = join(dir, 'batch-single');
    const manifest = batchManifest(world, 'dmgs', out, [1]);
    manifest.analyses[0].config = small(manifest.analyses[0].config);
    expect((await runBatch(manifest, { concurrency: 1 })).state).toBe('done');
    const folder = join(out, 'subj01', 'recon');
    const marker = () => JSON.parse(readFileSync(join(folder, 'stages', 'img2img.json'), 'utf8')) as { depKey?: string; inputs?: unknown; summary: Record<string, unknown> };
    const merged = marker();
    expect(merged.depKey).toMatch(/^[0-9a-f]{32}$/);
    expect(merged.inputs).toEqual([]);
    // nothing changed: a resubmitted batch runs nothing, and neither does a reconstruct of the batch's config there
    expect((await runBatch(manifest, { concurrency: 1 })).jobs.filter((j) => j.state !== 'skipped').map((j) => j.id)).toEqual([]);
    const config = JSON.parse(readFileSync(join(folder, 'run.json'), 'utf8')).config;
    const ran = async () => (await reconstruct(config)).stages.filter((s) => s.status === 'ran').map((s) => s.stage);
    expect(await ran()).toEqual([]);

    // a few bytes of seed 1's sample of the sixth test image (the second block) overwritten, its size kept
    const test = (JSON.parse(readFileSync(join(folder, 'data', 'image_ids.json'), 'utf8')) as { test: number[] }).test;
    expect(test).toHaveLength(8);
    const sample = join(folder, 'images', `${String(test[5] - 1).padStart(5, '0')}_001.png`);
    const good = readFileSync(sample);
    const fd = openSync(sample, 'r+');
    writeSync(fd, 'junk', Math.floor(good.length / 2));
    closeSync(fd);
    expect(await ran()).toEqual(['img2img', 'evaluate', 'report']);
    const rerun = marker();
    expect(rerun.summary).toMatchObject({ images: 8, seeds: 2, samplesRun: 4, reusedSamples: 12 });
    expect(readFileSync(sample)).toEqual(good);
    // the fields the single-process run recorded over the same stages are those the merge had
    expect({ depKey: rerun.depKey, inputs: rerun.inputs }).toEqual({ depKey: merged.depKey, inputs: merged.inputs });
    const fresh = (await reconstruct(small(singleConfig(world, 1, join(dir, 'single-small'))))).out;
    expect(readFileSync(join(folder, 'metrics.json'), 'utf8')).toBe(readFileSync(join(fresh, 'metrics.json'), 'utf8'));

    // a shard marker from before shards recorded their upstream key is current by its time only: the merge records no depKey
    const shards = join(folder, 'stages', 'img2img.shards');
    const file = join(shards, readdirSync(shards).filter((f) => f.endsWith('.json')).sort()[0]);
    const { upstream: _, ...old } = JSON.parse(readFileSync(file, 'utf8'));
    writeFileSync(file, JSON.stringify(old));
    rmSync(join(folder, 'stages', 'img2img.json'));
    const again = await runBatch(manifest, { concurrency: 1 });
    expect(again.jobs.filter((j) => j.state === 'done').map((j) => j.id)).toEqual(['dmgs.subj01.recon.img2img', 'dmgs.subj01.recon.evaluate', 'dmgs.subj01.recon.report', 'dmgs.subj01']);
    expect(marker().depKey).toBeUndefined();
    expect(marker().inputs).toEqual([]);
  });
});
