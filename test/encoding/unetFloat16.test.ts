/**
 * float16 U-Net layers as features. The engine read float32 outputs only, so a float16 export's layers (and any
 * float16 tensor) were refused; now it converts a float16 output to float32 (exactly) and feeds a float16 input
 * from float32 (rounded to nearest even), so a float16 U-Net gives features as its float32 twin does.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { unetLayerFeatures, type Embeddings } from '../../ts/encoding/features.js';
import { checkUnetLayers, listUnetLayers, withExposedUnet } from '../../ts/encoding/unetLayers.js';
import { writeSdFixture } from '../../ts/sd/fixture.js';
import { floatToHalfBits, halfBitsToFloat } from '../../ts/sd/half.js';
import { unetFeatures } from '../../ts/sd/OnnxModel.js';
import { addSideBranches, HALF_BRANCH } from './unetSideBranches.js';

let tmp = '';
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'bl-unet-fp16-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const half = (v: number) => halfBitsToFloat(floatToHalfBits(v));

describe('float16 layers', () => {
  it("a float16 tensor comes back as float32 holding exactly ONNX Runtime's half values", async () => {
    const dir = join(tmp, 'sd');
    await writeSdFixture(dir, { unetChannels: 8, unetLayers: 1, textDim: 16 });
    const tanh = (await listUnetLayers(dir)).find((l) => l.opType === 'Tanh')!.name;
    await addSideBranches(dir, tanh);
    await withExposedUnet(
      dir,
      [tanh, HALF_BRANCH],
      async (m) => {
        expect(m.outputs.find((o) => o.name === HALF_BRANCH)!.dtype).toBe('float16');
        const sample = { data: Float32Array.from({ length: 2 * 4 * 4 * 4 }, (_, i) => Math.sin(i * 0.7)), shape: [2, 4, 4, 4] };
        const cond = { data: Float32Array.from({ length: 2 * 77 * 16 }, (_, i) => Math.cos(i * 0.3)), shape: [2, 77, 16] };
        const out = await unetFeatures(m, { sample, timestep: 500, cond }, [tanh, HALF_BRANCH]);
        const [f32, f16] = [out[tanh], out[HALF_BRANCH]];
        expect(f16.data).toBeInstanceOf(Float32Array);
        expect(f16.shape).toEqual(f32.shape);
        expect(f16.shape).toEqual([2, 8, 4, 4]);
        // the Cast rounded each value to half (nearest even); the engine widened it back without loss
        expect(Array.from(f16.data)).toEqual(Array.from(f32.data, half));
        expect(f16.data.some((v, i) => v !== f32.data[i])).toBe(true); // (half precision shows)
      },
      { intraOpThreads: 1 },
    );
  });
});

describe('a float16 U-Net export', () => {
  // the tiny fixture twice: float32, and with float16 at every float input and output (Casts at the boundaries,
  // float32 inside, ts/sd/fixture.ts io: 'float16'), so out_sample is float16 and sample, timestep and
  // encoder_hidden_states take float16
  const dir32 = () => join(tmp, 'sd32');
  const dir16 = () => join(tmp, 'sd16');
  let tanh = '';
  beforeAll(async () => {
    await writeSdFixture(dir32(), { unetChannels: 8, unetLayers: 1, textDim: 16 });
    await writeSdFixture(dir16(), { unetChannels: 8, unetLayers: 1, textDim: 16, io: 'float16' });
    tanh = (await listUnetLayers(dir16())).find((l) => l.opType === 'Tanh')!.name;
  });

  it('is fed float16 from float32 (nearest even) and its float16 output comes back exactly', async () => {
    const layers = [tanh, 'out_sample'];
    const check = await checkUnetLayers(dir16(), layers, { imageSize: 32, timestep: 500 });
    expect(check.problem).toBeNull();
    expect(check.layers.map((l) => [l.name, l.dtype, l.problem])).toEqual([[tanh, 'float32', null], ['out_sample', 'float16', null]]);

    const run = (dir: string, sample: Float32Array, cond: Float32Array) =>
      withExposedUnet(
        dir,
        [tanh],
        (m) => unetFeatures(m, { sample: { data: sample, shape: [2, 4, 4, 4] }, timestep: 500, cond: { data: cond, shape: [2, 77, 16] } }, layers),
        { intraOpThreads: 1 },
      );
    // values that half cannot hold: the engine rounds them for the float16 export
    const sample = Float32Array.from({ length: 2 * 4 * 4 * 4 }, (_, i) => Math.sin(i * 0.7) * 1.3);
    const cond = Float32Array.from({ length: 2 * 77 * 16 }, (_, i) => Math.cos(i * 0.3));
    const a = await run(dir16(), sample, cond);
    const b = await run(dir32(), sample.map(half), cond.map(half));
    // the same float32 graph on the same (rounded) inputs, then the output rounded to half
    expect(Array.from(a[tanh].data)).toEqual(Array.from(b[tanh].data));
    expect(a.out_sample.shape).toEqual([2, 4, 4, 4]);
    expect(Array.from(a.out_sample.data)).toEqual(Array.from(b.out_sample.data, half));
  });

  it('gives the float32 U-Net’s features within half precision', async () => {
    const n = 3;
    const fill = (len: number, seed: number) => Float32Array.from({ length: len }, (_, i) => Math.sin(seed + i * 0.37) * 0.8);
    const e: Embeddings = {
      ids: Int32Array.from({ length: n }, (_, i) => 10 + i),
      z: { data: fill(n * 64, 1), rows: n, cols: 64 },
      c: { data: fill(n * 77 * 16, 2), rows: n, cols: 77 * 16 },
      zShape: [4, 4, 4],
      cShape: [77, 16],
    };
    const spec = { name: 'u', kind: 'unet' as const, layers: [tanh, 'out_sample'], timesteps: [201, 801], pool: 2, seed: 0 };
    const a = await unetLayerFeatures(dir32(), spec, e, { batch: 2 });
    const b = await unetLayerFeatures(dir16(), spec, e, { batch: 2 });
    // [B, 8, 4, 4] and [B, 4, 4, 4] pooled by 2: 32 and 16 values per image, per timestep
    expect(b.map((t) => [t.name, t.x.rows, t.x.cols])).toEqual([
      [`u:${tanh}@t201`, 3, 32],
      [`u:${tanh}@t801`, 3, 32],
      ['u:out_sample@t201', 3, 16],
      ['u:out_sample@t801', 3, 16],
    ]);
    for (let k = 0; k < a.length; k++) {
      const [x, y] = [a[k].x.data, b[k].x.data];
      let err = 0;
      let norm = 0;
      for (let i = 0; i < x.length; i++) {
        err += (x[i] - y[i]) ** 2;
        norm += x[i] ** 2;
      }
      // half keeps 11 significant bits (relative error <= 2^-11 per rounding); a wrong conversion is O(1)
      expect(norm, a[k].name).toBeGreaterThan(0);
      expect(Math.sqrt(err / norm), a[k].name).toBeLessThan(5e-3);
      expect(Math.sqrt(err / norm), a[k].name).toBeGreaterThan(0); // (the inputs were rounded: not the float32 run itself)
    }
  });
});
