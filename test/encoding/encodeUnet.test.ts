/**
 * U-Net features come from the engine's ONNX Runtime (OnnxModel): the feature tables equal what
 * onnxruntime-node computes on the same exposed U-Net from the same noised latents, pooled in float64.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { InvalidArgumentError } from '../../ts/errors.js';
import { computeFeatures, type FeatureTable, type ImageSource } from '../../ts/encoding/features.js';
import { exposeUnetLayers, listUnetLayers, unetSizeMismatch } from '../../ts/encoding/unetLayers.js';
import { onnx } from '../helpers/onnx.js';
import { Diffusion } from '../../ts/sd/Diffusion.js';
import { writeSdFixture } from '../../ts/sd/fixture.js';
import { nativeSync } from '../../ts/native/call.js';
import { philoxNormal } from '../../ts/sd/philox.js';

let tmp = '';
let model = '';

const SIZE = 32;
const source: ImageSource = {
  image: (id) => ({
    width: SIZE,
    height: SIZE,
    data: Uint8Array.from({ length: SIZE * SIZE * 3 }, (_, i) => (id * 37 + i * 11 + ((i * i) % 7) * 19) % 256),
  }),
  captions: (id) => [`a red circle ${id % 3 === 0 ? 'on grass' : 'at night'}`, 'a picture'],
};

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'bl-unet-features-'));
  model = join(tmp, 'sd');
  // int64 [B] timesteps (optimum ≤ 1.23): the engine feeds the declared type
  await writeSdFixture(model, { unetChannels: 8, unetLayers: 2, timestep: { dtype: 'int64', rank: 1 } });
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** float64 adaptive average pooling of [B, C, H, W] to P × P per channel. */
function poolRef(data: Float32Array, [B, C, H, W]: number[], P: number): number[] {
  const out: number[] = [];
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < C; c++) {
      for (let py = 0; py < P; py++) {
        for (let px = 0; px < P; px++) {
          const y0 = Math.floor((py * H) / P), y1 = Math.floor(((py + 1) * H) / P);
          const x0 = Math.floor((px * W) / P), x1 = Math.floor(((px + 1) * W) / P);
          let s = 0;
          for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) s += data[((b * C + c) * H + y) * W + x];
          out.push(s / ((y1 - y0) * (x1 - x0)));
        }
      }
    }
  }
  return out;
}

describe('the latent size a U-Net declares', () => {
  it('is checked against imageSize before any work (the demo world runs at its own size only)', async () => {
    expect(await unetSizeMismatch(model, 512)).toBeNull(); // symbolic height and width: any size
    const fixed = join(tmp, 'fixed');
    await mkdir(join(fixed, 'unet'), { recursive: true });
    const m = onnx.ModelProto.decode(await readFile(join(model, 'unet', 'model.onnx')));
    const dims = m.graph!.input!.find((i) => i.name === 'sample')!.type!.tensorType!.shape!.dim!;
    dims[2] = { dimValue: 16 };
    dims[3] = { dimValue: 16 };
    await writeFile(join(fixed, 'unet', 'model.onnx'), onnx.ModelProto.encode(m).finish());
    expect(await unetSizeMismatch(fixed, 128)).toBeNull();
    expect(await unetSizeMismatch(fixed, 512)).toBe(`imageSize 512 gives 64×64 latents, but ${join(fixed, 'unet', 'model.onnx')} takes sample of 16×16 only: set imageSize to 128`);
  });
});

describe('computeFeatures options', () => {
  it('batch is an integer >= 1, refused before the model loads (0 failed destructuring an empty batch, 2.5 at a fractional offset)', async () => {
    for (const batch of [0, -1, 2.5, Number.NaN]) {
      await expect(computeFeatures([{ name: 'z', kind: 'z' }], Int32Array.from([3, 8]), source, { model, batch })).rejects.toThrow(
        new InvalidArgumentError(`computeFeatures batch: expected an integer in 1..2147483647, got ${batch}`),
      );
    }
  });
});

describe('U-Net features on the engine', () => {
  it('equal onnxruntime-node on the same exposed U-Net, per layer and timestep', async () => {
    const tanh = (await listUnetLayers(model)).filter((l) => l.opType === 'Tanh').map((l) => l.name);
    const layers = [tanh[0], tanh[tanh.length - 1]];
    const ids = Int32Array.from([3, 8, 21, 40, 77]);
    const timesteps = [100, 700];
    const pool = 2;
    const seed = 7;
    const tables = await computeFeatures(
      [{ name: 'z', kind: 'z' }, { name: 'c', kind: 'c' }, { name: 'u', kind: 'unet', layers, timesteps, pool, seed }],
      ids,
      source,
      { model, batch: 2 },
    );
    const byName = new Map<string, FeatureTable>(tables.map((t) => [t.name, t]));
    const z = byName.get('z')!.x, c = byName.get('c')!.x;
    const diffusion = await Diffusion.load(model, { components: ['vae_encoder'] });
    const alphas = nativeSync((b) => b.sdAlphasCumprod(diffusion.schedule));
    diffusion.dispose();
    // onnxruntime-node on the same modified model (its bytes: the fixture's weights are inside them)
    const exposed = await exposeUnetLayers(model, layers);
    const session = await ort.InferenceSession.create(exposed.bytes, { intraOpNumThreads: 1 });
    try {
      const n = ids.length;
      const latent = [n, 4, SIZE / 8, SIZE / 8];
      const per = z.cols;
      for (const t of timesteps) {
        const a = alphas[t];
        const xt = new Float32Array(n * per);
        ids.forEach((id, i) => {
          const noise = philoxNormal(seed, id, 0, 0, per);
          for (let q = 0; q < per; q++) xt[i * per + q] = Math.sqrt(a) * z.data[i * per + q] + Math.sqrt(1 - a) * noise[q];
        });
        const ref = await session.run(
          {
            sample: new ort.Tensor('float32', xt, latent),
            timestep: new ort.Tensor('int64', new BigInt64Array(n).fill(BigInt(t)), [n]),
            encoder_hidden_states: new ort.Tensor('float32', c.data, [n, 77, c.cols / 77]),
          },
          layers,
        );
        for (const l of layers) {
          const got = byName.get(`u:${l}@t${t}`)!;
          const want = poolRef(ref[l].data as Float32Array, Array.from(ref[l].dims), pool);
          expect(got.x.rows).toBe(n);
          expect(got.x.cols * n).toBe(want.length);
          const scale = Math.max(...want.map(Math.abs));
          expect(scale).toBeGreaterThan(1e-3);
          let worst = 0;
          for (let k = 0; k < want.length; k++) worst = Math.max(worst, Math.abs(got.x.data[k] - want[k]));
          expect(worst / scale).toBeLessThan(1e-5);
        }
      }
    } finally {
      await session.release();
    }
  });
});
