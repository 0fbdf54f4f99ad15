/**
 * New betas of the same trials (a session re-exported, a value changed) rerun the extraction and the stages that
 * read the betas, not the features: z and c (the VAE and the text encoder over every image, the expensive part)
 * depend on the stimuli, the model and which images are used, not on the betas. A stage's marker records the set of
 * images it read (StageMarker.depKey); a session gone (or added) changes that set, and then the features run again.
 * Checked in reconstruct(), encode(), and a batch run here and through Redis, from their records of what ran.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { BatchManifest } from '../../ts/batch/manifest.js';
import type { SummaryCell } from '../../ts/batch/status.js';
import type { DemoWorld } from '../../ts/demo/world.js';
import { encode } from '../../ts/encoding/encode.js';
import { CancelledError } from '../../ts/errors.js';
import { Hdf5Reader, writeHdf5 } from '../../ts/io/hdf5.js';
import { readNpy } from '../../ts/io/npy.js';
import { betasPath } from '../../ts/nsd/paths.js';
import { loadRegionMask } from '../../ts/nsd/roi.js';
import { resolveConfig } from '../../ts/pipeline/config.js';
import { reconstruct } from '../../ts/pipeline/reconstruct.js';
import { redisAvailable, redisTestBed } from '../batch/redis.js';
import { batchWorld, encodeTemplate, reconTemplate, sharedManifest, singleConfig } from '../batch/world.js';

const dir = mkdtempSync(join(tmpdir(), 'bl-betas-change-'));
const cli = join(__dirname, '..', '..', 'dist', 'cli', 'main.js');
let world: DemoWorld;
let rois: string[];

beforeAll(async () => {
  world = await batchWorld(dir, [1]);
  const r = resolveConfig(singleConfig(world, 1, join(dir, 'x')));
  // (the encoding's region, which holds both, last)
  rois = [r.decoders.z.roi, r.decoders.c.roi, 'streams'];
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Adds 10 (3000 in the file's int16 units) to one beta of session 2's first trial in each region the runs read (the
 * z and c regions are apart; the encoding's streams hold both): one voxel each, the region's first.
 */
async function changeOneBeta(): Promise<void> {
  const file = betasPath(world.nsdRoot, 1, 2, 'hdf5');
  const r = await Hdf5Reader.open(file);
  const shape = r.shape('betas');
  const data = r.readSlab('betas') as Int16Array;
  r.close();
  const masks = await Promise.all(rois.map((roi) => loadRegionMask(world.nsdRoot, 1, roi)));
  const changed = new Set<number>();
  for (const m of masks) {
    if (m.mask.indices.some((i) => changed.has(i))) continue;
    const voxel = m.mask.indices[0];
    // (T, Z, Y, X) row-major: trial 0's volume first, x fastest, as the mask's flat indices
    data[voxel] = Math.min(32767, data[voxel] + 3000);
    changed.add(voxel);
  }
  expect(changed.size).toBe(2);
  await writeHdf5(file, [{ name: 'betas', data, shape, chunks: [shape[0], 1, 1, 1] }]);
}

/** A betas file saved again with the same numbers (`cp`, `rsync` without -t): only its time changes. */
function touchBetas(session = 3): void {
  const later = new Date(Date.now() + 60_000);
  utimesSync(betasPath(world.nsdRoot, 1, session, 'hdf5'), later, later);
}

const statuses = (stages: { stage: string; status: string }[]) => Object.fromEntries(stages.map((s) => [s.stage, s.status]));
const file = (...p: string[]) => readFileSync(join(dir, ...p));

const encodeConfig = (out: string) =>
  ({
    ...encodeTemplate(world),
    out,
    nsd: { ...(encodeTemplate(world).nsd as object), root: world.nsdRoot, subject: 1 },
    // a feature set computed from z and c by the U-Net: its stage reads only the embed stage's outputs
    featureSets: [...(encodeTemplate(world).featureSets as object[]), { name: 'zc', kind: 'zc', strength: 0.5, steps: 4 }],
  }) as Parameters<typeof encode>[0];

describe('one beta changed: the stages that read the betas run again, the features do not', () => {
  it('reconstruct: features skipped (its record untouched), extract, decoders and after with the new numbers; the dry run says why', async () => {
    const config = singleConfig(world, 1, join(dir, 'recon'));
    const first = await reconstruct(config);
    expect(first.stages.every((s) => s.status === 'ran')).toBe(true);
    const before = { features: file('recon', 'stages', 'features.json'), z: file('recon', 'features', 'z.npy'), decoder: file('recon', 'decoders', 'z.safetensors') };
    await changeOneBeta();

    const dry = await reconstruct(config, { dryRun: true });
    expect(dry.plan!.find((l) => /^run +features /.test(l))).toMatch(/\(again: extract runs; not if the images it reads are the same\)$/);
    const again = await reconstruct(config);
    expect(statuses(again.stages)).toEqual({ extract: 'ran', features: 'skipped', decoders: 'ran', zonly: 'ran', img2img: 'ran', evaluate: 'ran', report: 'ran' });
    expect(file('recon', 'stages', 'features.json')).toEqual(before.features);
    expect(file('recon', 'features', 'z.npy')).toEqual(before.z);
    // the decoders were fitted to the new betas
    expect(file('recon', 'decoders', 'z.safetensors')).not.toEqual(before.decoder);
    expect((await reconstruct(config)).stages.every((s) => s.status === 'skipped')).toBe(true);
  }, 300_000);

  it('reconstruct: a betas file saved again with the same numbers reruns the extraction alone; the dry run says the rest may be skipped', async () => {
    const config = singleConfig(world, 1, join(dir, 'recon'));
    const markers = ['features', 'decoders', 'zonly', 'img2img', 'evaluate', 'report'];
    const before = markers.map((s) => file('recon', 'stages', `${s}.json`));
    touchBetas();
    const dry = await reconstruct(config, { dryRun: true });
    expect(dry.plan!.find((l) => /^run +decoders /.test(l))).toMatch(/\(again: extract runs; not if they make the same outputs\)$/);
    const again = await reconstruct(config);
    expect(statuses(again.stages)).toEqual({ extract: 'ran', features: 'skipped', decoders: 'skipped', zonly: 'skipped', img2img: 'skipped', evaluate: 'skipped', report: 'skipped' });
    expect(markers.map((s) => file('recon', 'stages', `${s}.json`))).toEqual(before);
    expect((await reconstruct(config)).stages.every((s) => s.status === 'skipped')).toBe(true);
  }, 300_000);

  it('reconstruct: new betas, the run stopped in the decoders: the next run redoes the decoders and after, though extract is done', async () => {
    const config = singleConfig(world, 1, join(dir, 'recon'));
    const decoder = file('recon', 'decoders', 'z.safetensors');
    await changeOneBeta();
    const ac = new AbortController();
    const stopped = await reconstruct(config, { signal: ac.signal, onProgress: (p) => p.stage === 'decoders' && ac.abort() }).catch((e: unknown) => e);
    expect(stopped).toBeInstanceOf(CancelledError);
    // (the decoders' marker is of the betas before: its outputs are there, its record of what it read is not current)
    const dry = await reconstruct(config, { dryRun: true });
    expect(dry.plan!.find((l) => /^run +decoders /.test(l))).toMatch(/\(again: what it reads of extract, features changed since it ran\)$/);
    const again = await reconstruct(config);
    expect(statuses(again.stages)).toEqual({ extract: 'skipped', features: 'skipped', decoders: 'ran', zonly: 'ran', img2img: 'ran', evaluate: 'ran', report: 'ran' });
    expect(file('recon', 'decoders', 'z.safetensors')).not.toEqual(decoder);
  }, 300_000);

  it('encode: embed and the U-Net feature set skipped, the extraction, ceiling, fits and after run again', async () => {
    const config = encodeConfig(join(dir, 'enc'));
    const first = await encode(config);
    expect(first.stages.every((s) => s.status === 'ran')).toBe(true);
    const r = file('enc', 'fits', 'z', 'r.npy');
    const zc = file('enc', 'stages', 'features.zc.json');
    await changeOneBeta();

    const dry = await encode(config, { dryRun: true });
    expect(dry.plan!.find((l) => /^run +embed /.test(l))).toMatch(/\(again: extract runs; not if the images it reads are the same\)$/);
    const again = await encode(config);
    expect(statuses(again.stages)).toEqual({
      extract: 'ran', ceiling: 'ran', embed: 'skipped', 'features.zc': 'skipped',
      'fit.z': 'ran', 'fit.c': 'ran', 'fit.zc': 'ran', 'banded.z+c': 'ran', maps: 'ran', report: 'ran',
    });
    expect(file('enc', 'stages', 'features.zc.json')).toEqual(zc);
    expect(file('enc', 'fits', 'z', 'r.npy')).not.toEqual(r);
    expect((await encode(config)).stages.every((s) => s.status === 'skipped')).toBe(true);
  }, 300_000);

  // (the ceiling's 'estimate' reads the files' single trials itself: it runs on their new time too, and its values,
  // the same, leave the maps and the report as they were)
  it("encode: a betas file saved again with the same numbers reruns the extraction and the 'estimate' ceiling alone", async () => {
    const config = encodeConfig(join(dir, 'enc'));
    expect(config.noiseCeiling).toBe('estimate');
    const maps = file('enc', 'stages', 'maps.json');
    const ceiling = file('enc', 'data', 'noise_ceiling.npy');
    touchBetas();
    const dry = await encode(config, { dryRun: true });
    expect(dry.plan!.find((l) => /^run +maps /.test(l))).toMatch(/not if they make the same outputs\)$/);
    const again = await encode(config);
    expect(Object.entries(statuses(again.stages)).filter(([, s]) => s === 'ran')).toEqual([['extract', 'ran'], ['ceiling', 'ran']]);
    expect(file('enc', 'stages', 'maps.json')).toEqual(maps);
    expect(file('enc', 'data', 'noise_ceiling.npy')).toEqual(ceiling);
  }, 300_000);

  it('a session gone changes the images: the features run again, over fewer images', async () => {
    const session4 = betasPath(world.nsdRoot, 1, 4, 'hdf5');
    renameSync(session4, `${session4}.away`);
    try {
      const images = (await readNpy(join(dir, 'recon', 'features', 'image_ids.npy'))).data.length;
      const recon = await reconstruct(singleConfig(world, 1, join(dir, 'recon')));
      expect(statuses(recon.stages)).toMatchObject({ extract: 'ran', features: 'ran', decoders: 'ran' });
      expect((await readNpy(join(dir, 'recon', 'features', 'image_ids.npy'))).data.length).toBeLessThan(images);
      const enc = await encode(encodeConfig(join(dir, 'enc')));
      expect(statuses(enc.stages)).toMatchObject({ extract: 'ran', embed: 'ran', 'features.zc': 'ran', 'fit.zc': 'ran' });
    } finally {
      renameSync(`${session4}.away`, session4);
    }
  }, 300_000);
});

/** The CLI in a child process, awaited (a blocking spawn starves the test worker's messages to vitest). */
function brainlatent(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 300_000, maxBuffer: 64 << 20 }, (e, stdout, stderr) => {
      const code = (e as { code?: unknown } | null)?.code;
      resolve({ status: e ? (typeof code === 'number' ? code : null) : 0, stdout, stderr });
    });
  });
}

/** `batch run … --json`: the exit status and each cell's state, `analysis/stage` (the subject's own jobs: `-/stage`). */
async function batchRun(manifest: BatchManifest, ...flags: string[]): Promise<{ status: number | null; cells: Record<string, string>; stderr: string }> {
  const f = join(dir, `${manifest.name}.json`);
  writeFileSync(f, JSON.stringify(manifest));
  const r = await brainlatent('batch', 'run', f, '--concurrency', '2', '--json', ...flags);
  const cells = r.stdout ? (JSON.parse(r.stdout) as { summary: SummaryCell[] }).summary : [];
  return { status: r.status, cells: Object.fromEntries(cells.map((c) => [`${c.analysis ?? '-'}/${c.stage}`, c.state])), stderr: r.stderr };
}

/** What a batch run reruns after one beta changed (the subject's betas job and the analyses' stages). */
const RERUN = {
  '-/betas': 'done', '-/subject': 'done',
  'recon/extract': 'done', 'recon/features': 'skipped', 'recon/decoders': 'done', 'recon/zonly': 'done', 'recon/img2img': 'done', 'recon/evaluate': 'done', 'recon/report': 'done',
  'enc/extract': 'done', 'enc/ceiling': 'done', 'enc/embed': 'skipped', 'enc/fit.z': 'done', 'enc/fit.c': 'done', 'enc/banded.z+c': 'done', 'enc/maps': 'done', 'enc/report': 'done',
};

describe('one beta changed, in a batch', () => {
  it('here: each analysis its own features stage; both skipped, the stages after them that read the betas run', async () => {
    const m: BatchManifest = {
      name: 'own',
      out: join(dir, 'own'),
      nsd: { root: world.nsdRoot },
      subjects: [1],
      analyses: [
        { name: 'recon', kind: 'reconstruct', config: reconTemplate(world), shards: { images: 4, seeds: 1 } },
        { name: 'enc', kind: 'encode', config: encodeTemplate(world) },
      ],
    };
    const first = await batchRun(m);
    expect(first.status).toBe(0);
    expect(first.cells['recon/features']).toBe('done');
    await changeOneBeta();
    const again = await batchRun(m);
    expect(again.status).toBe(0);
    expect(again.cells).toEqual(RERUN);
    // the same numbers in a file with a new time: extracted again (and the 'estimate' ceiling, which reads the
    // files' single trials), and nothing after them runs
    touchBetas();
    const touched = await batchRun(m);
    expect(touched.status).toBe(0);
    expect(Object.entries(touched.cells).filter(([, s]) => s !== 'skipped')).toEqual([['-/betas', 'done'], ['recon/extract', 'done'], ['enc/extract', 'done'], ['enc/ceiling', 'done']]);
  }, 600_000);

  const bed = redisTestBed('bl-betas-change-redis-');
  it.skipIf(!redisAvailable)('through Redis, features shared by both analyses: the links skipped, the decoders and fits told of the extraction under them', async () => {
    const m = sharedManifest(world, 'shared', join(dir, 'shared'), [1]);
    const first = await batchRun(m, '--redis', bed.url());
    expect(first.status).toBe(0);
    expect(first.cells['recon/features']).toBe('done');
    await changeOneBeta();
    // (a batch in the queues keeps its finished jobs: the name is freed for the same manifest to run again)
    expect((await brainlatent('batch', 'cancel', 'shared', '--redis', bed.url(), '--purge')).status).toBe(0);
    const again = await batchRun(m, '--redis', bed.url());
    expect(again.status).toBe(0);
    // the shared z and c of the same images are in the cache: nothing computed
    const shared = Object.entries(again.cells).filter(([k]) => /^-\/features\.[zc]$/.test(k));
    expect(shared.map(([, s]) => s)).toEqual(['skipped', 'skipped']);
    expect(Object.fromEntries(Object.entries(again.cells).filter(([k]) => !/^-\/features\./.test(k)))).toEqual(RERUN);
  }, 600_000);
});
