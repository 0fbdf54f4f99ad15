/**
 * The img2img U-Net work a batch reports is what it ran: each shard's summary carries its evaluations (of one latent:
 * images × the engine's U-Net calls × 2 with guidance) and U-Net seconds, and the merge (the stage's marker) sums the shards
 * that ran in THIS batch only. Before, the merge summed every shard's unetSeconds, an earlier run's included, and the
 * service multiplied the whole run's estimated evaluations by it: a resumed run's rate and total were inflated.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { planBatch, planNodes, shardNodeId } from '../../ts/batch/graph.js';
import { cancelBatch } from '../../ts/batch/inspect.js';
import { runNode, shardMarkerPath, type NodeControl } from '../../ts/batch/runNode.js';
import { runBatch, toResolved, type BatchReport } from '../../ts/batch/runBatch.js';
import type { DemoWorld } from '../../ts/demo/world.js';
import { resolveConfig } from '../../ts/pipeline/config.js';
import { paths } from '../../ts/pipeline/runFolder.js';
import type { Img2ImgShard } from '../../ts/pipeline/stages.js';
import { redisAvailable, redisTestBed } from './redis.js';
import { batchManifest, batchWorld, singleConfig } from './world.js';

const { dir, url } = redisTestBed('bl-unet-work-');
let world: DemoWorld;
beforeAll(async () => {
  world = await batchWorld(dir, [1]);
}, 300_000);

// reconTemplate: 8 test images × 2 seeds, 10 steps at strength 0.8 (8 run), guidance 5 (2 passes); shards of 4 images × 1 seed
const PER_SAMPLE = 8 * 2;
const PER_SHARD = 4 * PER_SAMPLE;

const marker = (folder: string) => JSON.parse(readFileSync(paths(folder).stage('img2img'), 'utf8')) as { summary: Record<string, number> };
const shardJobs = (r: BatchReport) => r.jobs.filter((j) => j.stage === 'img2img' && j.shard !== undefined);
const SHARDS: Img2ImgShard[] = [
  { imageStart: 0, imageEnd: 4, seedStart: 0, seedEnd: 1 },
  { imageStart: 4, imageEnd: 8, seedStart: 0, seedEnd: 1 },
  { imageStart: 0, imageEnd: 4, seedStart: 1, seedEnd: 2 },
  { imageStart: 4, imageEnd: 8, seedStart: 1, seedEnd: 2 },
];

async function runTwice(name: string, options: { redis?: string }) {
  const out = join(dir, name);
  const manifest = batchManifest(world, name, out, [1]);
  const folder = join(out, 'subj01', 'recon');
  const first = await runBatch(manifest, { concurrency: 2, ...options });
  expect(first.state).toBe('done');
  // every shard ran: each its evaluations, the stage their sum
  expect(shardJobs(first).map((j) => [j.state, j.unet?.evaluations])).toEqual(Array(4).fill(['done', PER_SHARD]));
  // each shard's last progress counted its samples (none reused): what the service's rate leaves the reused ones out by
  expect(shardJobs(first).map((j) => j.count)).toEqual(Array(4).fill({ done: 4, total: 4 }));
  expect(marker(folder).summary).toMatchObject({ shards: 4, shardsRun: 4, samplesRun: 16, reusedSamples: 0, unetEvaluations: 4 * PER_SHARD });
  expect(marker(folder).summary.unetSeconds).toBeGreaterThan(0);
  // a shard's marker carries its own
  const config = resolveConfig({ ...singleConfig(world, 1, folder) });
  const shard0 = JSON.parse(readFileSync(shardMarkerPath(config, { imageStart: 0, imageEnd: 4, seedStart: 0, seedEnd: 1 }), 'utf8'));
  expect(shard0.summary).toMatchObject({ images: 4, seeds: 1, samplesRun: 4, reusedSamples: 0, unetEvaluations: PER_SHARD });
  // and names the submission that made it (the batch's name @ its submission time, or the local run's start), one for all four
  const shardMarker = (s: Img2ImgShard) => JSON.parse(readFileSync(shardMarkerPath(config, s), 'utf8')) as { submission?: string };
  const firstSubmission = shard0.submission as string;
  expect(firstSubmission).toMatch(new RegExp(`^${name}@\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z$`));
  expect(SHARDS.map((s) => shardMarker(s).submission)).toEqual(Array(4).fill(firstSubmission));

  // a resumed run: one shard's outputs are gone, the other three are done
  rmSync(shardMarkerPath(config, { imageStart: 4, imageEnd: 8, seedStart: 1, seedEnd: 2 }));
  // (through BullMQ the finished batch's jobs go first: the name then runs anew, as `batch submit` after a purge)
  if (options.redis) await cancelBatch(name, { redis: options.redis, purge: true });
  const second = await runBatch(manifest, { concurrency: 2, ...options });
  expect(second.state).toBe('done');
  expect(shardJobs(second).map((j) => [j.shard, j.state, j.unet?.evaluations])).toEqual([
    ['k0-0.i0-3', 'skipped', undefined],
    ['k0-0.i4-7', 'skipped', undefined],
    ['k1-1.i0-3', 'skipped', undefined],
    ['k1-1.i4-7', 'done', PER_SHARD],
  ]);
  const s = marker(folder).summary;
  expect(s).toMatchObject({ shards: 4, shardsRun: 1, samplesRun: 4, reusedSamples: 12, unetEvaluations: PER_SHARD });
  // its seconds are that shard's: the rate is this run's evaluations over this run's U-Net time
  expect(s.unetSeconds).toBe(second.jobs.find((j) => j.shard === 'k1-1.i4-7')!.unet!.seconds);
  // the merge job's own JobInfo repeats the sum of its shards
  expect(second.jobs.find((j) => j.stage === 'img2img' && j.shard === undefined)?.unet?.evaluations).toBe(PER_SHARD);
  // the three kept shards still name the first submission, the redone one the second's
  const secondSubmission = shardMarker(SHARDS[3]).submission as string;
  expect(secondSubmission).toMatch(new RegExp(`^${name}@`));
  expect(secondSubmission).not.toBe(firstSubmission);
  expect(SHARDS.slice(0, 3).map((s) => shardMarker(s).submission)).toEqual(Array(3).fill(firstSubmission));

  // Through BullMQ, a shard that computed its images while Redis was away could not record it; its job ran again and
  // was skipped on its marker: the merge (run here as its job would be, told no shard ran) still counts a shard whose
  // marker names its own submission as run by it
  const merge = planNodes(await planBatch(await toResolved(manifest))).find((n) => n.work.kind === 'merge')!;
  const remerge = async (ctl: Pick<NodeControl, 'ranDeps' | 'submission'>) => (await runNode(merge, { depsRan: true, progress: () => {}, ...ctl })).summary;
  expect(await remerge({ ranDeps: [], submission: secondSubmission })).toMatchObject({ shards: 4, shardsRun: 1, samplesRun: 4, reusedSamples: 12, unetEvaluations: PER_SHARD });
  expect(await remerge({ ranDeps: [], submission: firstSubmission })).toMatchObject({ shards: 4, shardsRun: 3, samplesRun: 12, reusedSamples: 4, unetEvaluations: 3 * PER_SHARD });
  // a marker from before submissions were recorded counts by its job only
  const redone = shardMarkerPath(config, SHARDS[3]);
  const { submission: _s, ...legacy } = JSON.parse(readFileSync(redone, 'utf8')) as Record<string, unknown>;
  writeFileSync(redone, JSON.stringify(legacy));
  expect(await remerge({ ranDeps: [], submission: secondSubmission })).toMatchObject({ shardsRun: 0, samplesRun: 0, unetEvaluations: 0 });
  expect(await remerge({ ranDeps: [shardNodeId(merge.id, SHARDS[3])], submission: secondSubmission })).toMatchObject({ shardsRun: 1, unetEvaluations: PER_SHARD });
}

describe('the U-Net work of a resumed batch', { timeout: 900_000 }, () => {
  it('with the local runner: counts only the shards that ran in this batch', async () => {
    await runTwice('local', {});
  });

  it.skipIf(!redisAvailable)('through BullMQ: counts only the shards that ran in this batch', async () => {
    await runTwice('queued', { redis: url() });
  });
});
