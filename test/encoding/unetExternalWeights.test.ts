/**
 * U-Net layer features on a U-Net whose weights are external, as every real float32 SD 1.x export's are (its
 * U-Net is over 2 GB): the float32 SD 1.x fixture (ts/sd/sd1Fixture.ts, narrow), with unet/weights.pb. The U-Net
 * with layers exposed used to be a copy of model.onnx in the temp folder with weights.pb symlinked beside it, which
 * ONNX Runtime 1.30 refuses ("External data path escapes model directory"): the layer check (preflight, `sd
 * layers`) and the features stage failed on every such export. Now the modified graph is loaded from memory and
 * ONNX Runtime reads weights.pb from the U-Net's own folder.
 */
import { readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { unetLayerFeatures, type Embeddings } from '../../ts/encoding/features.js';
import { checkUnetLayers, exposeUnetLayers, listUnetLayers, withExposedUnet } from '../../ts/encoding/unetLayers.js';
import { OnnxModel, unetFeatures } from '../../ts/sd/OnnxModel.js';
import { writeSd1Fixture } from '../../ts/sd/sd1Fixture.js';
import { osTmp as osTmpIn, restoreTmpdir } from '../helpers/osTmp.js';

let tmp = '';
let dir = '';
/** The last Conv (conv_out: out_sample is its Identity) and an inner Conv of the fixture's U-Net. */
let convOut = '';
let inner = '';
const CROSS = 48;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'bl-unet-external-'));
  dir = join(tmp, 'sd1');
  await writeSd1Fixture(dir, { config: { blockOut: [32, 64, 64, 64], groups: 8, heads: 4, timeDim: 64, crossDim: CROSS } });
  const convs = (await listUnetLayers(dir)).filter((l) => l.opType === 'Conv');
  convOut = convs[convs.length - 1].name;
  inner = convs[Math.floor(convs.length / 2)].name;
}, 120_000);
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});
afterEach(restoreTmpdir);

const osTmp = (name: string) => osTmpIn(tmp, name);

/**
 * What is in a temp folder besides ONNX Runtime 1.30's own files: its telemetry (1DS SDK) writes .ses and
 * mat-debug-<pid>.log to the OS temp folder when the runtime starts in a process.
 */
const leftIn = (d: string) => readdirSync(d).filter((n) => !/^(\.ses|mat-debug-\d+\.log)$/.test(n));

const filled = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 12.9898 + i * 78.233) * 0.9);

describe('U-Net layers of a U-Net with external weights (float32 SD 1.x fixture)', () => {
  it('its weights are external (the case under test)', () => {
    expect(statSync(join(dir, 'unet', 'weights.pb')).size).toBeGreaterThan(40 * statSync(join(dir, 'unet', 'model.onnx')).size);
  });

  it('the layer check loads and runs it with the layers exposed, and leaves nothing in the temp folder', async () => {
    const t = osTmp('check');
    const check = await checkUnetLayers(dir, [inner, convOut], { imageSize: 64, timestep: 500 });
    expect(check.problem).toBeNull();
    expect(check.layers.map((l) => [l.name, l.opType, l.dtype, l.problem])).toEqual([
      [inner, 'Conv', 'float32', null],
      [convOut, 'Conv', 'float32', null],
    ]);
    expect(leftIn(t)).toEqual([]);
  });

  it("an exposed layer equals the unmodified U-Net's output where they are the same tensor", async () => {
    const sample = { data: filled(2 * 4 * 8 * 8, 1), shape: [2, 4, 8, 8] };
    const cond = { data: filled(2 * 77 * CROSS, 2), shape: [2, 77, CROSS] };
    const inputs = { sample, timestep: 321, cond };
    const plain = await OnnxModel.load(join(dir, 'unet', 'model.onnx'), { intraOpThreads: 1 });
    let ref: Float32Array;
    try {
      ref = (await unetFeatures(plain, inputs, ['out_sample'])).out_sample.data;
    } finally {
      plain.dispose();
    }
    const out = await withExposedUnet(dir, [inner, convOut], (m) => unetFeatures(m, inputs, [inner, convOut, 'out_sample']), { intraOpThreads: 1 });
    // out_sample is the Identity of the last Conv: the exposed Conv output is the U-Net's own output
    expect(out[convOut].shape).toEqual([2, 4, 8, 8]);
    expect(Array.from(out[convOut].data)).toEqual(Array.from(out.out_sample.data));
    // the same weights read from the same weights.pb, on one thread: the same values, to the bit
    expect(Array.from(out.out_sample.data)).toEqual(Array.from(ref));
    expect(Math.max(...Array.from(ref, Math.abs))).toBeGreaterThan(1e-3);
    expect(out[inner].shape[0]).toBe(2);
  });

  it('the features stage gives one table per layer × timestep, and leaves nothing in the temp folder', async () => {
    const t = osTmp('features');
    const n = 3;
    const e: Embeddings = {
      ids: Int32Array.from({ length: n }, (_, i) => 5 + i),
      z: { data: filled(n * 4 * 8 * 8, 3), rows: n, cols: 4 * 8 * 8 },
      c: { data: filled(n * 77 * CROSS, 4), rows: n, cols: 77 * CROSS },
      zShape: [4, 8, 8],
      cShape: [77, CROSS],
    };
    const spec = { name: 'u', kind: 'unet' as const, layers: [convOut], timesteps: [201, 801], pool: 2, seed: 0 };
    const tables = await unetLayerFeatures(dir, spec, e, { batch: 2 });
    expect(tables.map((x) => x.name)).toEqual([`u:${convOut}@t201`, `u:${convOut}@t801`]);
    for (const x of tables) {
      expect([x.x.rows, x.x.cols]).toEqual([n, 4 * 2 * 2]);
      expect(x.x.data.every(Number.isFinite)).toBe(true);
    }
    expect(leftIn(t)).toEqual([]);
  });

  it('the bytes held in memory are the graph only: the weights stay in weights.pb', async () => {
    const u = await exposeUnetLayers(dir, [inner, convOut]);
    const graph = statSync(join(dir, 'unet', 'model.onnx')).size;
    // model.onnx plus two output declarations
    expect(u.bytes.length).toBeGreaterThan(graph);
    expect(u.bytes.length - graph).toBeLessThan(1024);
    expect(u.weightsFolder).toBe(join(dir, 'unet'));
  });

  it('loaded from its bytes with another folder for the weights, it is an error naming the model and the file', async () => {
    const u = await exposeUnetLayers(dir, [convOut]);
    await expect(OnnxModel.fromBytes(u.bytes, { name: 'exposed U-Net', externalDataFolder: tmp, intraOpThreads: 1 })).rejects.toThrow(
      /cannot load exposed U-Net: .*weights\.pb/,
    );
    await expect(OnnxModel.fromBytes(u.bytes, { name: 'exposed U-Net', externalDataFolder: join(tmp, 'nowhere') })).rejects.toThrow(
      /OnnxModel\.fromBytes\(exposed U-Net\): externalDataFolder must be the folder of the model's external weights/,
    );
  });
});
