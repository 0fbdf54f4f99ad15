/**
 * A batch's run folders say what computed each stage: every job records the versions of the process that ran it
 * (brainlatent, Node, host, BLAS, the engine threads its worker gave it, the ONNX Runtime its models ran on) in its
 * stage's marker (an img2img shard's in its own; a features stage linked from the shared z and c, the entries'), and
 * run.json lists them per stage. Before, a batch's run.json had Node, the platform and the runner only. A batch run
 * again with other threads keeps the record of the jobs that computed what it skips.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runBatch } from '../../ts/batch/runBatch.js';
import { reconstruct } from '../../ts/pipeline/reconstruct.js';
import { THREADS_ENV } from '../../ts/batch/jobThreads.js';
import type { DemoWorld } from '../../ts/demo/world.js';
import { buildInfo } from '../../ts/native/buildInfo.js';
import { nativeSync } from '../../ts/native/call.js';
import type { RunManifest } from '../../ts/pipeline/runFolder.js';
import { resolveOrtLibrary } from '../../ts/sd/native.js';
import { batchWorld, encodeTemplate, reconTemplate, singleConfig } from './world.js';

const dir = mkdtempSync(join(tmpdir(), 'bl-batch-versions-'));
let world: DemoWorld;
beforeAll(async () => {
  world = await batchWorld(dir, [1]);
}, 600_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const out = join(dir, 'runs');
const manifest = () => ({
  name: 'v',
  out,
  nsd: { root: world.nsdRoot },
  subjects: [1],
  analyses: [
    // (ONNX Runtime's default threads in both: their z and c are one shared computation)
    { name: 'recon', kind: 'reconstruct' as const, config: reconTemplate(world, 0), shards: { images: 4, seeds: 1 } },
    { name: 'enc', kind: 'encode' as const, config: encodeTemplate(world) },
  ],
});
const runJson = (analysis: string) => JSON.parse(readFileSync(join(out, 'subj01', analysis, 'run.json'), 'utf8')) as RunManifest<unknown>;
const onnxruntimeNodeVersion = (createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string }).version;
const withThreads = (n: number) => ({ concurrency: 2, env: { ...process.env, [THREADS_ENV]: String(n) } });

describe("a batch's record of what computed each stage", () => {
  it('each stage, shard and shared entry names the process that computed it, with the threads its jobs were given', async () => {
    const report = await runBatch(manifest(), withThreads(3));
    expect(report.jobs.filter((j) => j.state !== 'done').map((j) => `${j.id}: ${j.state} ${j.reason ?? ''}`)).toEqual([]);
    const ort = nativeSync((b) => b.ortLoad(resolveOrtLibrary()));
    const ranOrt = { onnxruntime: ort.version, onnxruntimeLibrary: ort.libraryPath };

    const recon = runJson('recon');
    // the folder's claim (the extract job's process), as a single-process run's
    expect(recon.versions).toMatchObject({ blas: buildInfo().blas, engineThreads: '3', hostname: hostname(), runner: 'brainlatent batch', brainlatent: expect.any(String) });
    const sv = recon.stageVersions!;
    expect(sv.same).toMatchObject({ engineThreads: '3', hostname: hostname(), blas: buildInfo().blas, node: process.version });
    expect(sv.notRecorded).toBeUndefined();
    const shards = readdirSync(join(out, 'subj01', 'recon', 'stages', 'img2img.shards')).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();
    expect(shards).toHaveLength(4);
    expect(Object.keys(sv.stages).sort()).toEqual(
      ['extract', 'features[z]', 'features[c]', 'decoders', 'zonly', ...shards.map((s) => `img2img[${s}]`), 'evaluate', 'report'].sort(),
    );
    // the models ran in the shared features' jobs, the z-only images and the shards; nowhere else
    for (const id of ['features[z]', 'features[c]', 'zonly', ...shards.map((s) => `img2img[${s}]`)]) expect(sv.stages[id], id).toEqual(ranOrt);
    for (const id of ['extract', 'decoders', 'report']) expect(sv.stages[id], id).toEqual({ onnxruntime: 'not used' });
    // the evaluation's feature networks, on onnxruntime-node's JavaScript API
    expect(sv.stages.evaluate).toEqual({ onnxruntimeNode: onnxruntimeNodeVersion });
    // each shard's own marker holds its record
    const shard = JSON.parse(readFileSync(join(out, 'subj01', 'recon', 'stages', 'img2img.shards', `${shards[0]}.json`), 'utf8'));
    expect(shard.ranWith).toMatchObject({ engineThreads: '3', hostname: hostname(), ...ranOrt });

    const enc = runJson('enc').stageVersions!;
    expect(enc.same).toMatchObject({ engineThreads: '3', hostname: hostname() });
    expect(enc.stages['embed[z]']).toEqual(ranOrt);
    expect(enc.stages['embed[c]']).toEqual(ranOrt);
    expect(enc.stages['fit.z']).toEqual({ onnxruntime: 'not used' });
  }, 900_000);

  it('run again with other threads: what it skipped keeps its record; a stage it reran has its own', async () => {
    rmSync(join(out, 'subj01', 'recon', 'stages', 'report.json'));
    const again = await runBatch(manifest(), withThreads(1));
    expect(again.jobs.filter((j) => j.state === 'done' && j.analysis !== null).map((j) => j.id)).toEqual(['v.subj01.recon.report']);
    const sv = runJson('recon').stageVersions!;
    expect(sv.same.engineThreads).toBeUndefined();
    expect(sv.stages.report).toEqual({ engineThreads: '1', onnxruntime: 'not used' });
    expect(sv.stages.decoders).toEqual({ engineThreads: '3', onnxruntime: 'not used' });
    expect(sv.stages['features[z]']).toMatchObject({ engineThreads: '3' });
    // the encoding's run.json, every job of it skipped, is as the first batch left it
    expect(runJson('enc').stageVersions!.same).toMatchObject({ engineThreads: '3' });
  }, 900_000);

  it('a single-process reconstruct records the same per stage: each stage that ran the model, not only the one that loaded it', async () => {
    const r = await reconstruct(singleConfig(world, 1, join(dir, 'single'), 0));
    const m = JSON.parse(readFileSync(join(r.out, 'run.json'), 'utf8')) as RunManifest<unknown>;
    const ort = nativeSync((b) => b.ortLoad(resolveOrtLibrary()));
    const ranOrt = { onnxruntime: ort.version, onnxruntimeLibrary: ort.libraryPath };
    expect(m.versions).toMatchObject({ ...ranOrt, onnxruntimeNode: onnxruntimeNodeVersion, engineThreads: String(buildInfo().threads) });
    const sv = m.stageVersions!;
    expect(sv.same).toMatchObject({ hostname: hostname(), engineThreads: String(buildInfo().threads) });
    // (the model is loaded once, by the features stage; the z-only and img2img stages ask for it again)
    for (const id of ['features', 'zonly', 'img2img']) expect(sv.stages[id], id).toEqual(ranOrt);
    for (const id of ['extract', 'decoders', 'report']) expect(sv.stages[id], id).toEqual({ onnxruntime: 'not used' });
    expect(sv.stages.evaluate).toEqual({ onnxruntimeNode: onnxruntimeNodeVersion });
  }, 600_000);
});
