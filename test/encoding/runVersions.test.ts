/**
 * An encode run's run.json says what computed its results: the ONNX Runtime that ran z, c, z_c and the U-Net's layers
 * (version and library), or 'not used' where no model ran; and per stage, from the stage's own marker, the process
 * that computed it (brainlatent, Node, host, BLAS, engine threads, ONNX Runtime). Before, run.json had no ONNX Runtime
 * at all, and a resumed run's stages were credited to whatever process ran last.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { encode, encodeStages } from '../../ts/encoding/encode.js';
import { listUnetLayers } from '../../ts/encoding/unetLayers.js';
import { writeNpy } from '../../ts/io/npy.js';
import { buildInfo } from '../../ts/native/buildInfo.js';
import { nativeSync } from '../../ts/native/call.js';
import type { RunManifest } from '../../ts/pipeline/runFolder.js';
import { setThreads } from '../../ts/ridge/RidgeCV.js';
import { resolveOrtLibrary } from '../../ts/sd/native.js';
import { makeWorld, type World } from './world.js';

let world: World;
beforeAll(async () => {
  world = await makeWorld();
}, 120_000);
afterAll(() => {
  setThreads(0);
  world?.cleanup();
});

const manifest = (out: string) => JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as RunManifest<unknown>;

describe("encode's run.json", () => {
  it('with features from a file: no ONNX model ran, and it says so', async () => {
    const ids = Int32Array.from({ length: 2000 }, (_, i) => i + 1);
    const features = join(world.tmp, 'f.npy'), idsPath = join(world.tmp, 'f-ids.npy');
    await writeNpy(features, Float32Array.from({ length: ids.length * 3 }, (_, i) => Math.sin(i * 0.7)), [ids.length, 3]);
    await writeNpy(idsPath, ids, [ids.length]);
    const out = join(world.tmp, 'file');
    const r = await encode({ out, nsd: { root: world.nsd.root, subject: 1, zscore: 'none' }, featureSets: [{ name: 'f', kind: 'file', path: features, ids: idsPath }], noiseCeiling: 'none' });
    const m = manifest(out);
    expect(m.versions).toMatchObject({ onnxruntime: 'not used', blas: buildInfo().blas, engineThreads: String(buildInfo().threads) });
    expect(m.versions.onnxruntimeLibrary).toBeUndefined();
    // every stage alike: said once
    expect(m.stageVersions?.same).toMatchObject({ onnxruntime: 'not used', hostname: hostname(), engineThreads: String(buildInfo().threads), node: process.version });
    expect(Object.keys(m.stageVersions!.stages)).toEqual(r.stages.map((s) => s.stage));
    expect(Object.values(m.stageVersions!.stages).every((v) => Object.keys(v).length === 0)).toBe(true);
  }, 300_000);

  it('with z, c, z_c and U-Net features: the ONNX Runtime that ran them, per stage; a resumed run keeps each stage\'s own record', async () => {
    const all = await listUnetLayers(world.model);
    const tanh = all.filter((l) => l.opType === 'Tanh').map((l) => l.name);
    const out = join(world.tmp, 'models');
    const config = {
      out,
      nsd: { root: world.nsd.root, subject: 1, zscore: 'none' as const },
      model: world.model,
      imageSize: 64,
      featureSets: [
        { name: 'z', kind: 'z' as const },
        { name: 'c', kind: 'c' as const },
        { name: 'zc', kind: 'zc' as const, strength: 0.5, steps: 2, guidance: 1 },
        { name: 'unet', kind: 'unet' as const, layers: [tanh[0]], timesteps: [500], pool: 2 },
      ],
      ridge: { alphas: [1, 100, 10000] },
      noiseCeiling: 'none' as const,
    };
    const first = await encode(config);
    expect(first.stages.every((s) => s.status === 'ran')).toBe(true);
    // (loaded by the run: asked again, the engine names what it loaded)
    const ort = nativeSync((b) => b.ortLoad(resolveOrtLibrary()));
    const threads = String(buildInfo().threads);
    const m = manifest(out);
    expect(m.versions).toMatchObject({ onnxruntime: ort.version, onnxruntimeLibrary: ort.libraryPath, engineThreads: threads });
    const sv = m.stageVersions!;
    expect(sv.same).toMatchObject({ hostname: hostname(), engineThreads: threads, blas: buildInfo().blas, brainlatent: m.versions.brainlatent });
    const onnx = ['embed', 'features.zc', 'features.unet'];
    const ids = encodeStages(first.config).map((s) => s.id);
    expect(Object.keys(sv.stages)).toEqual(ids);
    for (const id of ids) {
      expect(sv.stages[id], id).toEqual(onnx.includes(id) ? { onnxruntime: ort.version, onnxruntimeLibrary: ort.libraryPath } : { onnxruntime: 'not used' });
    }

    // resumed with another engine thread count, the report's marker gone: only the report runs (its record is this
    // process's), the others keep the first run's; run.json's `versions` are this run's, which ran no model
    const other = buildInfo().threads + 1;
    setThreads(other);
    rmSync(join(out, 'stages', 'report.json'));
    const again = await encode(config);
    expect(again.stages.filter((s) => s.status === 'ran').map((s) => s.stage)).toEqual(['report']);
    const m2 = manifest(out);
    expect(m2.versions).toMatchObject({ onnxruntime: 'not used', engineThreads: String(other) });
    expect(m2.stageVersions!.same.engineThreads).toBeUndefined();
    expect(m2.stageVersions!.stages.report).toEqual({ engineThreads: String(other), onnxruntime: 'not used' });
    expect(m2.stageVersions!.stages['features.unet']).toEqual({ engineThreads: threads, onnxruntime: ort.version, onnxruntimeLibrary: ort.libraryPath });
    expect(m2.stageVersions!.stages['fit.z']).toEqual({ engineThreads: threads, onnxruntime: 'not used' });

    // a marker from before records were kept: listed as not recorded, not credited to anyone
    const marker = join(out, 'stages', 'maps.json');
    const { ranWith: _, ...old } = JSON.parse(readFileSync(marker, 'utf8'));
    writeFileSync(marker, JSON.stringify(old));
    await encode(config);
    const m3 = manifest(out);
    expect(m3.stageVersions!.notRecorded).toEqual(['maps']);
    expect(m3.stageVersions!.stages.maps).toBeUndefined();
  }, 300_000);
});
