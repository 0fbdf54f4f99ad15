/**
 * A run that fails midway says so in its run.json. Before, run.json kept what the run wrote as it started: `versions`
 * without the ONNX Runtime its stages had run on, no `stageVersions` though stages had finished (each with its
 * `ranWith` in its marker), and nothing of the failure — the same file as a run still in progress. Now it records
 * `failed` (the stage, the error's class and message, when), `stageVersions` of the stages that finished before it
 * (not the markers an earlier run left of the failed stage and those after it), and the failed process's `versions`;
 * a batch's job records the same, and a job of that stage that is done later drops it. Served by the service, the
 * error's paths are hidden as every served run file's are.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { planBatch, planNodes } from '../../ts/batch/graph.js';
import { resolveManifest } from '../../ts/batch/manifest.js';
import { runNode } from '../../ts/batch/runNode.js';
import { encode } from '../../ts/encoding/encode.js';
import { CancelledError } from '../../ts/errors.js';
import { writeNpy } from '../../ts/io/npy.js';
import { nativeSync } from '../../ts/native/call.js';
import { reconstruct } from '../../ts/pipeline/reconstruct.js';
import type { RunManifest } from '../../ts/pipeline/runFolder.js';
import { resolveOrtLibrary } from '../../ts/sd/native.js';
import { hiddenInJson, RootFolder } from '../../ts/server/rootPaths.js';
import { batchWorld, singleConfig } from '../batch/world.js';
import { makeWorld, type World } from '../encoding/world.js';

let world: World;
let features: string;
let idsPath: string;
beforeAll(async () => {
  world = await makeWorld();
  const ids = Int32Array.from({ length: 2000 }, (_, i) => i + 1);
  features = join(world.tmp, 'f.npy');
  idsPath = join(world.tmp, 'f-ids.npy');
  await writeNpy(features, Float32Array.from({ length: ids.length * 3 }, (_, i) => Math.sin(i * 0.7)), [ids.length, 3]);
  await writeNpy(idsPath, ids, [ids.length]);
}, 120_000);
afterAll(() => world?.cleanup());

const manifest = (out: string) => JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as RunManifest<unknown>;
const encodeConfig = (out: string) => ({ out, nsd: { root: world.nsd.root, subject: 1, zscore: 'none' as const }, featureSets: [{ name: 'f', kind: 'file' as const, path: features, ids: idsPath }], noiseCeiling: 'none' as const });
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

describe("a failed run's run.json", () => {
  it('encode failing in its maps stage: failed (stage, error, when), the finished stages\' records, versions; cleared by the run that finishes', async () => {
    const out = join(world.tmp, 'failed');
    mkdirSync(out, { recursive: true });
    // (what the maps stage makes a folder of is a file: mkdir fails, after extract, ceiling and the fit)
    writeFileSync(join(out, 'maps'), 'in the way');
    const e = await encode(encodeConfig(out)).catch((x: unknown) => x);
    expect((e as Error).message).toBe(`EEXIST: file already exists, mkdir '${join(out, 'maps')}'`);
    const m = manifest(out);
    expect(m.failed).toEqual({ stage: 'maps', error: `Error: EEXIST: file already exists, mkdir '${join(out, 'maps')}'`, at: expect.stringMatching(ISO) });
    // (before: the run's start's versions, no onnxruntime, and no stageVersions)
    expect(m.versions).toMatchObject({ onnxruntime: 'not used' });
    expect(Object.keys(m.stageVersions!.stages)).toEqual(['extract', 'ceiling', 'fit.f']);
    expect(m.stageVersions!.same).toMatchObject({ hostname: hostname(), onnxruntime: 'not used', node: process.version });
    // served by the service: its paths as every served run file's (root-relative), the host hidden
    const root = new RootFolder(world.tmp);
    const served = JSON.parse(hiddenInJson(readFileSync(join(out, 'run.json'), 'utf8'), (t) => root.hidden(t))) as RunManifest<unknown>;
    expect(served.failed?.error).toBe(`Error: EEXIST: file already exists, mkdir 'failed/maps'`);
    expect(served.stageVersions?.same.hostname).toBe('<server host>');

    rmSync(join(out, 'maps'));
    const r = await encode(encodeConfig(out));
    const done = manifest(out);
    expect(done.failed).toBeUndefined();
    expect(Object.keys(done.stageVersions!.stages)).toEqual(r.stages.map((s) => s.stage));
  }, 300_000);

  it('a resumed run failing again: only the stages before the failed one, not the markers an earlier run left of it and after it', async () => {
    const out = join(world.tmp, 'resumed');
    await encode(encodeConfig(out));
    // the maps folder replaced by a file: maps runs again, and fails; report's marker (an earlier run's) is still there
    rmSync(join(out, 'maps'), { recursive: true });
    writeFileSync(join(out, 'maps'), 'in the way');
    await expect(encode(encodeConfig(out))).rejects.toThrow('EEXIST');
    const m = manifest(out);
    expect(m.failed).toMatchObject({ stage: 'maps' });
    expect(Object.keys(m.stageVersions!.stages)).toEqual(['extract', 'ceiling', 'fit.f']);
  }, 300_000);

  it("a batch's job failing records it; the stage's job done later drops it", async () => {
    const out = join(world.tmp, 'batch');
    const plan = planNodes(
      await planBatch(
        resolveManifest({
          name: 'fails',
          out,
          nsd: { root: world.nsd.root },
          subjects: [1],
          analyses: [{ name: 'enc', kind: 'encode', config: { nsd: { zscore: 'none' }, featureSets: [{ name: 'f', kind: 'file', path: features, ids: idsPath }], noiseCeiling: 'none' } }],
        }),
      ),
    );
    const job = (stage: string) => plan.find((n) => n.id === `fails.subj01.enc.${stage}`)!;
    const ctl = { progress: () => undefined, depsRan: true };
    for (const s of ['extract', 'ceiling', 'fit.f']) expect((await runNode(job(s), ctl)).status).toBe('done');
    const run = join(out, 'subj01', 'enc');
    writeFileSync(join(run, 'maps'), 'in the way');
    await expect(runNode(job('maps'), ctl)).rejects.toThrow('EEXIST');
    const m = manifest(run);
    expect(m.failed).toEqual({ stage: 'maps', error: `Error: EEXIST: file already exists, mkdir '${join(run, 'maps')}'`, at: expect.stringMatching(ISO) });
    expect(Object.keys(m.stageVersions!.stages)).toEqual(['extract', 'ceiling', 'fit.f']);
    // (the batch's versions: its extract job's process, kept)
    expect(m.versions).toMatchObject({ runner: 'brainlatent batch' });
    rmSync(join(run, 'maps'));
    expect((await runNode(job('maps'), ctl)).status).toBe('done');
    const done = manifest(run);
    expect(done.failed).toBeUndefined();
    expect(Object.keys(done.stageVersions!.stages)).toEqual(['extract', 'ceiling', 'fit.f', 'maps']);
  }, 300_000);

  it('reconstruct stopped in its decoders: the stop recorded, with the ONNX Runtime its features stage ran on so far', async () => {
    const dir = join(world.tmp, 'recon');
    const demo = await batchWorld(dir, [1]);
    const out = join(dir, 'run');
    const ac = new AbortController();
    const e = await reconstruct(singleConfig(demo, 1, out), { signal: ac.signal, onProgress: (p) => p.stage === 'decoders' && p.fraction > 0 && ac.abort() }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CancelledError);
    const m = manifest(out);
    expect(m.failed).toEqual({ stage: 'decoders', error: `CancelledError: ${(e as Error).message}`, at: expect.stringMatching(ISO) });
    const ort = nativeSync((b) => b.ortLoad(resolveOrtLibrary()));
    // (before: the versions of the run's start, with no ONNX Runtime though the features stage ran the VAE and text encoder)
    expect(m.versions).toMatchObject({ onnxruntime: ort.version, onnxruntimeLibrary: ort.libraryPath });
    expect(Object.keys(m.stageVersions!.stages)).toEqual(['extract', 'features']);
    expect({ ...m.stageVersions!.same, ...m.stageVersions!.stages.features }).toMatchObject({ onnxruntime: ort.version });
  }, 300_000);
});
