/**
 * A batch's shared-features job computes its entry for the images each analysis's features stage then reads: with
 * nsd.testImages set, the test images the extract stage keeps (the N smallest 73k ids, selectTestImages), not the
 * first N test rows. It took the first N rows, so the entry went unused and each analysis computed its own. (The jobs
 * run in worker processes on dist/: compile before running this.)
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { BatchManifest } from '../../ts/batch/manifest.js';
import { runBatch } from '../../ts/batch/runBatch.js';
import type { DemoWorld } from '../../ts/demo/world.js';
import { extractNsd } from '../../ts/nsd/extract.js';
import { resolveConfig } from '../../ts/pipeline/config.js';
import { extractOptions } from '../../ts/pipeline/stages.js';
import { batchWorld, reconTemplate } from './world.js';

const dir = mkdtempSync(join(tmpdir(), 'bl-batch-subset-'));
let world: DemoWorld;

beforeAll(async () => {
  world = await batchWorld(dir, [1]);
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const N = 3;

/** Two reconstructions of subject 1 with the same features (one shared z and c job) and N of its test images. */
function manifest(out: string): BatchManifest {
  const tpl = reconTemplate(world, 0) as { img2img: Record<string, unknown> };
  const config = { ...tpl, nsd: { testImages: N }, img2img: { ...tpl.img2img, seeds: 1, steps: 4, rule: 'diffusers' } };
  return {
    name: 'subset',
    out,
    nsd: { root: world.nsdRoot },
    subjects: [1],
    analyses: [
      { name: 'a', kind: 'reconstruct', config, shards: { images: 8, seeds: 1 } },
      { name: 'b', kind: 'reconstruct', config: { ...config, img2img: { ...config.img2img, seed: 7 } }, shards: { images: 8, seeds: 1 } },
    ],
  };
}

describe('shared features with nsd.testImages', () => {
  it("are computed once, for the test images the extract stage keeps (the N smallest ids), and each analysis links that entry", async () => {
    // the world's test rows are not in id order: the first N rows are not the N smallest ids (else this tests nothing)
    const probe = resolveConfig({ out: join(dir, 'probe'), nsd: { root: world.nsdRoot, subject: 1 }, model: { dir: world.modelDir } });
    const rows = Array.from((await extractNsd({ ...extractOptions(probe, 'z'), cacheDir: undefined })).testImageIds);
    const smallest = [...rows].sort((a, b) => a - b).slice(0, N);
    expect(rows.slice(0, N).sort((a, b) => a - b)).not.toEqual(smallest);

    const out = join(dir, 'batch');
    const report = await runBatch(manifest(out), { concurrency: 2 });
    expect(report.jobs.filter((j) => j.state !== 'done').map((j) => `${j.id}: ${j.state} ${j.reason ?? ''}`)).toEqual([]);
    // one computation of z and one of c, by the shared jobs (the log of the subject's features cache)
    const log = readFileSync(join(out, 'subj01', 'cache', 'features', 'computed.log'), 'utf8').trim().split('\n');
    expect(log.map((l) => l[0]).sort()).toEqual(['c', 'z']);
    for (const analysis of ['a', 'b']) {
      const folder = join(out, 'subj01', analysis);
      expect(JSON.parse(readFileSync(join(folder, 'data', 'image_ids.json'), 'utf8')).test).toEqual(smallest);
      // the analysis's features stage linked the shared entries, computing none of its own
      const marker = JSON.parse(readFileSync(join(folder, 'stages', 'features.json'), 'utf8'));
      expect(marker.summary.computedHere).toEqual([]);
      expect(Object.values(marker.summary.sharedFeatures).sort()).toEqual(log.map((l) => l.split(' ')[0]).sort());
    }
  }, 600_000);
});
